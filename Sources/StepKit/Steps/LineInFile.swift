import Foundation

/// How lines of a file are matched to the desired line: by a key, so that a changed line
/// replaces the old one instead of being appended a second time.
public enum LineKey: Sendable, Hashable {
    /// The Nth whitespace-separated field (0-based): fstab's mount point is field 1, exports' path field 0.
    case field(Int)
    /// Everything before the first occurrence of a separator, e.g. "=" for `KEY=value` files.
    case prefix(before: String)
    /// The whole line.
    case wholeLine

    public static let fstabMountPoint = LineKey.field(1)
    public static let exportPath = LineKey.field(0)

    /// The key of `line`; nil for comments, blank lines and lines too short to have one.
    public func key(of line: Substring) -> String? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty || trimmed.hasPrefix("#") { return nil }
        switch self {
        case let .field(n):
            let f = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" })
            return n < f.count ? String(f[n]) : nil
        case let .prefix(sep):
            guard let r = trimmed.range(of: sep) else { return nil }
            return trimmed[..<r.lowerBound].trimmingCharacters(in: .whitespaces)
        case .wholeLine:
            return trimmed
        }
    }
}

/// Keyed line editing, the one implementation behind `LineInFile`, `Mount`'s fstab line and the
/// NFS exports: each wanted line replaces the line(s) with its key, or is appended when none has
/// it; a key never ends up on two lines. Comments, blank lines and lines of other keys are kept
/// as they are. Pure text in, text out, so every caller gets the same answer to "what would change?"
public enum LineEditor {
    /// The new text, or nil when `text` already satisfies the request (then nothing is written,
    /// not even a missing final newline).
    public static func edit(_ text: String, line: String, key: LineKey, present: Bool) -> String? {
        guard let wantedKey = key.key(of: Substring(line)) else { return nil }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        let matches = lines.indices.filter { key.key(of: lines[$0]) == wantedKey }
        if present {
            if matches.count == 1, lines[matches[0]] == Substring(line) { return nil }
            var out = lines.map(String.init)
            if let first = matches.first {
                out[first] = line
                for i in matches.dropFirst().reversed() { out.remove(at: i) }
            } else {
                out.append(line)
            }
            return out.joined(separator: "\n") + "\n"
        } else {
            if matches.isEmpty { return nil }
            var out = lines.map(String.init)
            for i in matches.reversed() { out.remove(at: i) }
            return out.isEmpty ? "" : out.joined(separator: "\n") + "\n"
        }
    }

    /// Every line of `lines` present, in order (a file of several keyed lines, as /etc/exports);
    /// nil when all already are.
    public static func edit(_ text: String, lines: [String], key: LineKey) -> String? {
        var current: String?
        for line in lines {
            if let next = edit(current ?? text, line: line, key: key, present: true) { current = next }
        }
        return current
    }
}

/// A line present in (or absent from) a file, matched by key. Undo restores the file's
/// previous bytes (or removes the file if the run created it).
public struct LineInFile: Step {
    public let path: String
    public let line: String
    public let key: LineKey
    public let present: Bool
    public let description: String
    /// Mode and owner for a file this step has to create.
    public let newFileMode: String

    public init(_ path: String, line: String, key: LineKey, present: Bool = true, newFileMode: String = "644", description: String? = nil) {
        self.path = path; self.line = line; self.key = key; self.present = present
        self.newFileMode = FileSupport.normalizeMode(newFileMode)
        self.description = description ?? (present ? "line in \(path): \(line)" : "no line keyed \(key.key(of: Substring(line)) ?? line) in \(path)")
    }

    public var id: String { "line:\(path):\(key.key(of: Substring(line)) ?? line)" }
    var probe: Probe<FileState?> { FileProbe.probe(path, content: true) }
    public var facts: [FactQuery] { [probe.query] }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        let current = try facts[probe]
        if let current, current.kind != .file { throw StepRefusal("\(path) is a \(current.kind.rawValue), not a file") }
        if let current, current.content == nil {
            throw StepRefusal("\(path) is larger than \(FileProbe.contentLimit) bytes: not edited line by line")
        }
        let oldText = current.flatMap { $0.content }.map { String(decoding: $0, as: UTF8.self) } ?? ""
        if current == nil && !present { return .satisfied }
        guard let newText = LineEditor.edit(oldText, line: line, key: key, present: present) else { return .satisfied }
        let upload = Action.upload(UploadAction(path: path, text: SecretText(newText), mode: current?.mode ?? newFileMode,
                                                owner: current?.owner ?? "root", group: current?.group ?? "root"))
        let diff = FileSupport.diff(old: current?.content, new: newText, path: path, scrubber: SecretScrubber([]))
        guard let current else {
            return .change(Change(actions: [upload], diff: diff, undo: [.restoreFile(path: path, previous: nil)]))
        }
        let (snapshot, backup) = FileSupport.snapshot(of: current, path: path, sensitive: false, context: context)
        return .change(Change(actions: backup + [upload], diff: diff, undo: [.restoreFile(path: path, previous: snapshot)]))
    }
}
