/// A set of Unicode scalars, as far as ccrun uses Foundation's CharacterSet: the whitespace and
/// newline sets to trim by, and explicit sets (`charactersIn:`) to trim or percent-encode by.
public struct CharacterSet: Sendable {
    private let test: @Sendable (Unicode.Scalar) -> Bool

    private init(_ test: @escaping @Sendable (Unicode.Scalar) -> Bool) { self.test = test }

    /// Exactly the scalars of `string`.
    public init(charactersIn string: String) {
        let members = Set(string.unicodeScalars)
        test = { members.contains($0) }
    }

    public func contains(_ scalar: Unicode.Scalar) -> Bool { test(scalar) }

    /// Horizontal whitespace: space, tab and the other Unicode space separators (Zs).
    public static let whitespaces = CharacterSet { $0 == "\t" || $0.properties.generalCategory == .spaceSeparator }
    /// Line breaks: U+000A-000D, U+0085, U+2028, U+2029.
    public static let newlines = CharacterSet { (0x0A...0x0D).contains($0.value) || $0.value == 0x85 || $0.value == 0x2028 || $0.value == 0x2029 }
    public static let whitespacesAndNewlines = CharacterSet { whitespaces.contains($0) || newlines.contains($0) }
}

extension StringProtocol {
    /// The text without leading and trailing scalars of `set`.
    @_disfavoredOverload
    public func trimmingCharacters(in set: CharacterSet) -> String { PlainText.trimming(String(self), set) }

    /// The first occurrence of `target`, as Foundation's `range(of:)` without options.
    @_disfavoredOverload
    public func range<T: StringProtocol>(of target: T) -> Range<Index>? {
        guard !target.isEmpty else { return nil }
        return firstRange(of: target)
    }

    /// UTF-8 bytes outside `allowed` as %XX (upper-case hex), as Foundation's
    /// `addingPercentEncoding(withAllowedCharacters:)` for an ASCII `allowed` set.
    @_disfavoredOverload
    public func addingPercentEncoding(withAllowedCharacters allowed: CharacterSet) -> String? {
        PlainText.percentEncoding(String(self), allowed: allowed)
    }

    /// Every occurrence of `target` replaced by `replacement`, left to right, without overlaps.
    @_disfavoredOverload
    public func replacingOccurrences<T: StringProtocol, R: StringProtocol>(of target: T, with replacement: R) -> String {
        PlainText.replacingOccurrences(in: String(self), of: String(target), with: String(replacement))
    }

    /// Padded with `pad` or cut to `length` characters, as Foundation's `padding(toLength:withPad:startingAt:)`.
    @_disfavoredOverload
    public func padding<T: StringProtocol>(toLength length: Int, withPad pad: T, startingAt start: Int) -> String {
        PlainText.padding(String(self), toLength: length, withPad: String(pad), startingAt: start)
    }
}

extension String {
    /// The path without its last component, as NSString's `deletingLastPathComponent`.
    @_disfavoredOverload
    public var deletingLastPathComponent: String { PlainText.deletingLastPathComponent(self) }

    /// The last path component, as NSString's `lastPathComponent`.
    @_disfavoredOverload
    public var lastPathComponent: String { PlainText.lastPathComponent(self) }
}

/// The implementations behind the extensions, by names of their own: tests, which import full
/// Foundation too (whose overloads win there), compare these with Foundation's.
public enum PlainText {
    public static func trimming(_ text: String, _ set: CharacterSet) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !set.contains($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !set.contains($0) })!
        return String(scalars[first...last])
    }

    /// An empty `target` leaves the text as it is (as Foundation does).
    public static func replacingOccurrences(in text: String, of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return text }
        return text.replacing(target, with: replacement)
    }

    /// `pad` repeats from its character `start`; fixed-width report columns.
    public static func padding(_ text: String, toLength length: Int, withPad pad: String, startingAt start: Int) -> String {
        let characters = Array(text)
        if characters.count >= length { return String(characters.prefix(length)) }
        let padCharacters = Array(pad)
        guard !padCharacters.isEmpty else { return text }
        var out = text
        for i in 0..<(length - characters.count) { out.append(padCharacters[(start + i) % padCharacters.count]) }
        return out
    }

    public static func percentEncoding(_ text: String, allowed: CharacterSet) -> String {
        var out = ""
        for byte in text.utf8 {
            if byte < 0x80, allowed.contains(Unicode.Scalar(byte)) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return out
    }

    /// "/a/b" gives "/a", "/a" gives "/", "b" gives "", trailing slashes ignored.
    public static func deletingLastPathComponent(_ path: String) -> String {
        var path = Substring(path)
        while path.count > 1 && path.hasSuffix("/") { path = path.dropLast() }
        guard let slash = path.lastIndex(of: "/") else { return "" }
        var parent = path[..<slash]
        while parent.count > 1 && parent.hasSuffix("/") { parent = parent.dropLast() }
        return parent.isEmpty ? "/" : String(parent)
    }

    /// "/a/b/" gives "b", "/" gives "/".
    public static func lastPathComponent(_ path: String) -> String {
        var path = Substring(path)
        while path.count > 1 && path.hasSuffix("/") { path = path.dropLast() }
        guard path != "/", let slash = path.lastIndex(of: "/") else { return String(path) }
        return String(path[path.index(after: slash)...])
    }
}

extension Data {
    /// The first occurrence of `bytes`, as Foundation's `Data.range(of:)` without options.
    @_disfavoredOverload
    public func range(of bytes: Data) -> Range<Index>? {
        guard !bytes.isEmpty else { return nil }
        return firstRange(of: bytes)
    }
}

extension Error {
    /// The error's own text: `errorDescription` for a `LocalizedError`, else its description
    /// (Foundation's fallback, "The operation could not be completed", names nothing).
    @_disfavoredOverload
    public var localizedDescription: String {
        (self as? any LocalizedError)?.errorDescription ?? String(describing: self)
    }
}
