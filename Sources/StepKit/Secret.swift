import LeanFoundation

/// A password or key. Its description, debug description and JSON encoding are always masked,
/// so string interpolation into logs, diffs, errors or reports cannot leak it. The value is
/// only reachable through `reveal()`, which the engine calls at the few points of use: bytes
/// sent on a command's stdin, bytes written into the one file meant to hold it, a database login.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, Encodable {
    /// A public label (e.g. "db-admin-password"), safe to print.
    public let label: String
    private let value: String

    public init(label: String, value: String) {
        self.label = label
        self.value = value
    }

    /// Reads a secret from a file (e.g. a 0600 file named by the inventory), trimming one trailing newline.
    public init(label: String, contentsOfFile path: String) throws {
        guard let data = FileManager.default.contents(atPath: path),
              var text = String(data: data, encoding: .utf8) else {
            throw SecretError.unreadable(label: label, path: path)
        }
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        self.init(label: label, value: text)
    }

    public static let mask = "********"

    public var description: String { "\(Secret.mask)(\(label))" }
    public var debugDescription: String { description }

    /// The real value. Call only where the value leaves the process towards its one legitimate use.
    public func reveal() -> String { value }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

public enum SecretError: Error, CustomStringConvertible {
    case unreadable(label: String, path: String)
    public var description: String {
        switch self {
        case let .unreadable(label, path): "cannot read secret \(label) from \(path): check the file exists and is readable (mode 0600, owned by you)"
        }
    }
}

/// Text made of literal parts and secrets, e.g. a config file or an SQL script.
/// `"password=\(secret)"` builds one through string interpolation. `masked` is what every
/// human- or machine-readable report shows; `revealed()` is what reaches the target.
public struct SecretText: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    public enum Part: Sendable, Hashable { case text(String), secret(Secret) }
    public var parts: [Part]

    public init(parts: [Part]) { self.parts = parts }
    public init(_ text: String) { parts = [.text(text)] }
    public init(stringLiteral value: String) { parts = [.text(value)] }

    public struct StringInterpolation: StringInterpolationProtocol {
        var parts: [Part] = []
        public init(literalCapacity: Int, interpolationCount: Int) {}
        public mutating func appendLiteral(_ literal: String) { parts.append(.text(literal)) }
        public mutating func appendInterpolation(_ secret: Secret) { parts.append(.secret(secret)) }
        public mutating func appendInterpolation<T>(_ value: T) { parts.append(.text("\(value)")) }
    }
    public init(stringInterpolation: StringInterpolation) { parts = stringInterpolation.parts }

    /// Concatenation keeps the parts (and so the masking) of both sides.
    public static func + (lhs: SecretText, rhs: SecretText) -> SecretText { SecretText(parts: lhs.parts + rhs.parts) }
    public static func += (lhs: inout SecretText, rhs: SecretText) { lhs.parts += rhs.parts }

    public var secrets: [Secret] {
        parts.compactMap { if case let .secret(s) = $0 { s } else { nil } }
    }
    public var containsSecrets: Bool { !secrets.isEmpty }

    public var masked: String {
        parts.map { switch $0 { case let .text(t): t; case let .secret(s): s.description } }.joined()
    }
    public var description: String { masked }

    public func revealed() -> String {
        parts.map { switch $0 { case let .text(t): t; case let .secret(s): s.reveal() } }.joined()
    }
}

/// Replaces every occurrence of the given secrets' values in a text by their mask.
/// The last line of defence: applied to everything a report prints (old file contents read
/// back from a host may hold a secret the runbook knows).
public struct SecretScrubber: Sendable {
    public let secrets: [Secret]
    public init(_ secrets: [Secret]) {
        // Longest first so a secret that contains another is masked whole.
        self.secrets = secrets.filter { !$0.reveal().isEmpty }.sorted { $0.reveal().count > $1.reveal().count }
    }
    public func scrub(_ text: String) -> String {
        var out = text
        for s in secrets { out = out.replacingOccurrences(of: s.reveal(), with: s.description) }
        return out
    }
}
