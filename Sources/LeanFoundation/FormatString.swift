/// `String(format:)` for the printf conversions ccrun's messages use, without Foundation's
/// locale machinery: `%d %i %u` (integers), `%x %X` (hex), `%f` (fixed point), `%s %@`
/// (a value's description) and `%%`, with the `-` and `0` flags, a width and a precision.
/// `%f` rounds half away from zero at the precision (printf rounds the binary value; for the
/// timings and sizes shown here the two agree except on exact ties). Anything else is an error
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

    /// `value` with `digits` decimals, rounded half away from zero; "nan", "inf", "-inf" as printf.
    public static func fixed(_ value: Double, digits: Int) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        let negative = value < 0 || (value == 0 && value.sign == .minus)
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded(.toNearestOrAwayFromZero)
        var text: String
        if scaled < 9.0e15 {
            // Exact in an integer: every digit is right.
            let whole = UInt64(scaled)
            var digitsText = String(whole)
            if digits > 0 {
                if digitsText.count <= digits { digitsText = String(repeating: "0", count: digits - digitsText.count + 1) + digitsText }
                digitsText.insert(".", at: digitsText.index(digitsText.endIndex, offsetBy: -digits))
            }
            text = digitsText
        } else {
            // Beyond 2^53 a Double has no fractional digits left: its integer text, zero decimals.
            let whole = abs(value).rounded()
            text = whole < 1.8e19 ? String(UInt64(whole)) : String(describing: whole)
            if digits > 0 { text += "." + String(repeating: "0", count: digits) }
        }
        let isZero = !text.contains(where: { $0 != "0" && $0 != "." })
        return (negative && !isZero ? "-" : "") + text
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
