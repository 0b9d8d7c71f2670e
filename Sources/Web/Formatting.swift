#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Escaping for HTML text and attribute values.
enum HTML {
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// Percent-encoding for a query-string value.
    static func queryValue(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: " "): out += "+"
            default:
                let hex = Array("0123456789ABCDEF")
                out += "%" + String(hex[Int(b >> 4)]) + String(hex[Int(b & 15)])
            }
        }
        return out
    }
}

/// A minimal JSON writer: the API's values are flat and few, and this keeps ids as strings
/// (they exceed JavaScript's 2^53) without a Codable detour.
indirect enum JSONText: CustomStringConvertible, Sendable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case null
    case array([JSONText])
    case object([(String, JSONText)])

    static func optional(_ s: String?) -> JSONText { s.map { .string($0) } ?? .null }
    static func optional(_ i: Int64?) -> JSONText { i.map { .int($0) } ?? .null }

    var description: String {
        var out = ""
        write(to: &out)
        return out
    }

    func write(to out: inout String) {
        switch self {
        case .string(let s): Self.quote(s, into: &out)
        case .int(let i): out += String(i)
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let members):
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += "," }
                Self.quote(key, into: &out)
                out += ":"
                value.write(to: &out)
            }
            out += "}"
        }
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            // Never let `</script>` or `<!--` close an inline script that embeds JSON.
            case "<": out += "\\u003c"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if c.value < 0x20 {
                    let hex = String(c.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        out += "\""
    }
}

/// Zero-padded decimal numbers for dates and clocks.
enum Digits {
    static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}

/// Wall-clock times (ms since the epoch), shown in UTC: the archive is laid out in UTC too, and
/// a repository serves viewers in many time zones.
struct UTCDate: Sendable, Hashable, Comparable {
    var year: Int, month: Int, day: Int

    init(year: Int, month: Int, day: Int) { (self.year, self.month, self.day) = (year, month, day) }

    init(milliseconds: Int64) {
        let parts = UTCDate.breakDown(milliseconds)
        self.init(year: Int(parts.tm_year) + 1900, month: Int(parts.tm_mon) + 1, day: Int(parts.tm_mday))
    }

    /// `YYYY-MM-DD`.
    init?(_ text: String) {
        let parts = text.split(separator: "-")
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
              (1970...9999).contains(y), (1...12).contains(m), (1...31).contains(d) else { return nil }
        self.init(year: y, month: m, day: d)
    }

    var text: String { Digits.pad(Int64(year), 4) + "-" + Digits.pad(Int64(month), 2) + "-" + Digits.pad(Int64(day), 2) }

    /// Midnight UTC of this day, in ms.
    var startMilliseconds: Int64 {
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        return Int64(timegm(&parts)) * 1000
    }

    var nextDayStartMilliseconds: Int64 { startMilliseconds + 86_400_000 }

    static func < (a: UTCDate, b: UTCDate) -> Bool { (a.year, a.month, a.day) < (b.year, b.month, b.day) }

    static func breakDown(_ ms: Int64) -> tm {
        var t = time_t(ms >= 0 ? ms / 1000 : (ms &- 999) / 1000)
        var parts = tm()
        gmtime_r(&t, &parts)
        return parts
    }

    /// `YYYY-MM-DD HH:MM:SS` UTC.
    static func dateTime(_ ms: Int64) -> String {
        let p = breakDown(ms)
        return UTCDate(milliseconds: ms).text + " " + Digits.pad(Int64(p.tm_hour), 2) + ":" + Digits.pad(Int64(p.tm_min), 2) + ":" + Digits.pad(Int64(p.tm_sec), 2)
    }

    /// `HH:MM` UTC.
    static func clock(_ ms: Int64) -> String {
        let p = breakDown(ms)
        return Digits.pad(Int64(p.tm_hour), 2) + ":" + Digits.pad(Int64(p.tm_min), 2)
    }

    /// ISO 8601, e.g. `2026-11-25T12:00:00.123Z`, for the JSON API.
    static func iso(_ ms: Int64) -> String {
        let p = breakDown(ms)
        let frac = ((ms % 1000) + 1000) % 1000
        return UTCDate(milliseconds: ms).text + "T" + Digits.pad(Int64(p.tm_hour), 2) + ":" + Digits.pad(Int64(p.tm_min), 2)
            + ":" + Digits.pad(Int64(p.tm_sec), 2) + "." + Digits.pad(frac, 3) + "Z"
    }
}
