/// A parsed INI file: `[section]` headers and `key = value` lines, `#` or `;` comments.
///
/// Deliberately tiny (the deployment guide's `/etc/ccr/db.ini` style): no escapes, no
/// multi-line values. Every value remembers its line so that configuration errors can say
/// `file:line` and the operator can go straight to it.
public struct IniFile: Sendable {
    public struct Entry: Sendable {
        public var value: String
        public var line: Int
    }

    /// Where the text came from, for messages ("/etc/ccr/ccr.conf").
    public let source: String
    /// section name (lowercased; "" before the first header) -> key (lowercased) -> entry
    public private(set) var sections: [String: [String: Entry]] = [:]

    public init(text: String, source: String) throws(IniError) {
        self.source = source
        var section = ""
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else {
                    throw .syntax(source: source, line: lineNumber, "section header must look like [name]")
                }
                section = String(line.dropFirst().dropLast()).trimmingWhitespace().lowercased()
                if sections[section] == nil { sections[section] = [:] }
                continue
            }
            guard let eq = line.firstIndex(of: "=") else {
                throw .syntax(source: source, line: lineNumber, "expected `key = value`")
            }
            let key = String(line[..<eq]).trimmingWhitespace().lowercased()
            var value = String(line[line.index(after: eq)...]).trimmingWhitespace()
            guard !key.isEmpty else { throw .syntax(source: source, line: lineNumber, "missing key before `=`") }
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            if sections[section]?[key] != nil {
                throw .syntax(source: source, line: lineNumber, "`\(key)` is set twice in [\(section)]")
            }
            sections[section, default: [:]][key] = Entry(value: value, line: lineNumber)
        }
    }

    public func entry(_ section: String, _ key: String) -> Entry? { sections[section]?[key] }

    public func string(_ section: String, _ key: String) -> String? { entry(section, key)?.value }

    public func int(_ section: String, _ key: String, in range: ClosedRange<Int>) throws(IniError) -> Int? {
        guard let e = entry(section, key) else { return nil }
        guard let v = Int(e.value), range.contains(v) else {
            throw .badValue(source: source, line: e.line, key: "\(section).\(key)",
                            "expected a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return v
    }

    public func double(_ section: String, _ key: String, in range: ClosedRange<Double>) throws(IniError) -> Double? {
        guard let e = entry(section, key) else { return nil }
        guard let v = Double(e.value), range.contains(v) else {
            throw .badValue(source: source, line: e.line, key: "\(section).\(key)",
                            "expected a number from \(range.lowerBound) to \(range.upperBound)")
        }
        return v
    }

    /// Keys present in the file that the program does not know: almost always a typo, and a
    /// typo in a production config should stop the start, not be ignored. Only the sections in
    /// `known` (and keys before any section) are checked: the file is shared by `ccr serve`,
    /// `ccr web` and `ccr watchdog`, and each reads its own sections.
    public func unknownKeys(known: [String: Set<String>]) -> [(String, Entry)] {
        var out: [(String, Entry)] = []
        for (section, keys) in sections where section.isEmpty || known[section] != nil {
            for (key, entry) in keys where !(known[section]?.contains(key) ?? false) {
                out.append(("\(section.isEmpty ? "" : "[\(section)] ")\(key)", entry))
            }
        }
        return out.sorted { $0.1.line < $1.1.line }
    }
}

public enum IniError: Error, Sendable, CustomStringConvertible {
    case syntax(source: String, line: Int, String)
    case badValue(source: String, line: Int, key: String, String)
    case unknownKey(source: String, line: Int, key: String)

    public var description: String {
        switch self {
        case .syntax(let source, let line, let message): "\(source):\(line): \(message)"
        case .badValue(let source, let line, let key, let message): "\(source):\(line): \(key): \(message)"
        case .unknownKey(let source, let line, let key): "\(source):\(line): unknown setting \(key) (a typo?)"
        }
    }
}

extension StringProtocol {
    /// Without spaces, tabs and carriage returns at either end (also for the tuner server's program names).
    public func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
