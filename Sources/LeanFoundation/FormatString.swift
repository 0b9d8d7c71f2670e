/// `String(format:)` for the printf conversions ccrun's messages use, without Foundation's
/// locale machinery: `%d %i %u` (integers), `%x %X` (hex), `%f` (fixed point), `%s %@`
/// (a value's description) and `%%`, with the `-` and `0` flags, a width and a precision.
/// `%f` rounds the exact binary value as printf does. Anything else is an error
/// in the format string, a programmer's mistake: it is printed as written, never crashes.
extension String {
    @_disfavoredOverload
    public init(format: String, _ arguments: Any...) {
        self = PrintfFormat.render(format, arguments)
    }
}

/// The formatter behind `String(format:)`.
public enum PrintfFormat {
    public static func render(_ format: String, _ arguments: [Any]) -> String {
        var out = ""
        var next = arguments.makeIterator()
        var chars = Array(format)[...]
        while let c = chars.popFirst() {
            guard c == "%" else { out.append(c); continue }
            var spec = Spec()
            let start = chars
            while let f = chars.first, f == "-" || f == "0" {
                if f == "-" { spec.leftAlign = true } else { spec.zeroPad = true }
                chars.removeFirst()
            }
            while let d = chars.first, let v = d.wholeNumberValue, d.isASCII { spec.width = spec.width * 10 + v; chars.removeFirst() }
            if chars.first == "." {
                chars.removeFirst()
                var p = 0
                while let d = chars.first, let v = d.wholeNumberValue, d.isASCII { p = p * 10 + v; chars.removeFirst() }
                spec.precision = p
            }
            while let l = chars.first, l == "l" || l == "h" || l == "z" || l == "q" { chars.removeFirst() }
            guard let conversion = chars.popFirst() else { out += "%" + String(start); break }
            switch conversion {
            case "%": out.append("%")
            case "d", "i", "u": out += spec.pad(integerText(next.next(), radix: 10, uppercase: false), numeric: true)
            case "x": out += spec.pad(integerText(next.next(), radix: 16, uppercase: false), numeric: true)
            case "X": out += spec.pad(integerText(next.next(), radix: 16, uppercase: true), numeric: true)
            case "f", "F": out += spec.pad(fixed(doubleValue(next.next()), digits: spec.precision ?? 6), numeric: true)
            case "s", "@": out += spec.pad(next.next().map { String(describing: $0) } ?? "", numeric: false)
            default: out += "%" + String(start[..<chars.startIndex])
            }
        }
        return out
    }

    /// `value` with `digits` decimals, as printf's `%.Nf`: the exact binary value rounded, an exact
    /// tie to even; "nan", "inf", "-inf", and "-0.0" for a negative value that rounds to zero.
    public static func fixed(_ value: Double, digits: Int) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        let sign = value.sign == .minus ? "-" : ""
        let magnitude = abs(value)
        let digits = max(0, digits)
        guard magnitude < 9.0e15, digits <= 20 else {
            // No fractional bits left (or more decimals than the exact path holds): integer digits.
            let whole = magnitude.rounded(.toNearestOrEven)
            let text = whole < 1.8e19 ? String(UInt64(whole)) : String(describing: whole)
            return sign + text + (digits > 0 ? "." + String(repeating: "0", count: digits) : "")
        }
        // magnitude = significand * 2^exponent exactly; scaled = significand * 10^digits.
        let significand = UInt128(magnitude.significandBitPattern | (magnitude.isNormal ? 1 << 52 : 0))
        let exponent = Int(magnitude.isNormal ? magnitude.exponentBitPattern : 1) - 1075
        var power: UInt128 = 1
        for _ in 0..<digits { power *= 10 }
        let scaled = significand * power
        var units: UInt128
        if exponent >= 0 {
            units = scaled << UInt128(exponent)
        } else if -exponent >= 128 {
            units = 0
        } else {
            let shift = UInt128(-exponent)
            units = scaled >> shift
            let remainder = scaled - (units << shift)
            let half = UInt128(1) << (shift - 1)
            if remainder > half || (remainder == half && units & 1 == 1) { units += 1 }
        }
        var text = String(units)
        if digits > 0 {
            if text.count <= digits { text = String(repeating: "0", count: digits - text.count + 1) + text }
            text.insert(".", at: text.index(text.endIndex, offsetBy: -digits))
        }
        return sign + text
    }

    private struct Spec {
        var leftAlign = false, zeroPad = false, width = 0
        var precision: Int?

        func pad(_ text: String, numeric: Bool) -> String {
            guard text.count < width else { return text }
            let fill = width - text.count
            if leftAlign { return text + String(repeating: " ", count: fill) }
            if zeroPad && numeric {
                let negative = text.hasPrefix("-")
                return (negative ? "-" : "") + String(repeating: "0", count: fill) + (negative ? String(text.dropFirst()) : text)
            }
            return String(repeating: " ", count: fill) + text
        }
    }

    private static func integerText(_ value: Any?, radix: Int, uppercase: Bool) -> String {
        switch value {
        case let v as Int: return String(v, radix: radix, uppercase: uppercase)
        case let v as Int32: return String(v, radix: radix, uppercase: uppercase)
        case let v as Int64: return String(v, radix: radix, uppercase: uppercase)
        case let v as Int16: return String(v, radix: radix, uppercase: uppercase)
        case let v as Int8: return String(v, radix: radix, uppercase: uppercase)
        case let v as UInt: return String(v, radix: radix, uppercase: uppercase)
        case let v as UInt64: return String(v, radix: radix, uppercase: uppercase)
        case let v as UInt32: return String(v, radix: radix, uppercase: uppercase)
        case let v as UInt16: return String(v, radix: radix, uppercase: uppercase)
        case let v as UInt8: return String(v, radix: radix, uppercase: uppercase)
        case let v as Double: return String(Int64(v), radix: radix, uppercase: uppercase)
        case let v?: return String(describing: v)
        case nil: return ""
        }
    }

    private static func doubleValue(_ value: Any?) -> Double {
        switch value {
        case let v as Double: return v
        case let v as Float: return Double(v)
        case let v as Int: return Double(v)
        case let v as Int32: return Double(v)
        case let v as Int64: return Double(v)
        case let v as UInt64: return Double(v)
        case let v as UInt32: return Double(v)
        default: return 0
        }
    }
}
