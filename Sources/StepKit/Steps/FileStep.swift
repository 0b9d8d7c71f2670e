import Foundation

/// A file with exactly this content, mode and owner. Written under a temporary name and
/// renamed; the plan shows a unified diff (secrets masked); undo puts back the previous bytes,
/// mode and owner, or removes the file if the run created it. With `validate`, the new copy must
/// pass that command first (e.g. `haproxy -c -f %s`), or the old file stays.
public struct File: Step {
    public let path: String
    public let content: SecretText
    public let mode: String
    public let owner: String
    public let group: String
    public let description: String
    /// The check the new content must pass before it replaces the file (`%s`: the new copy).
    public let validate: String?

    public init(_ path: String, content: SecretText, mode: String = "644", owner: String = "root", group: String = "root",
                validate: String? = nil, description: String? = nil) {
        self.path = path; self.content = content; self.mode = FileSupport.normalizeMode(mode)
        self.owner = owner; self.group = group; self.validate = validate
        self.description = description ?? "file \(path) (mode \(FileSupport.normalizeMode(mode)), \(owner):\(group))"
    }

    public var id: String { "file:\(path)" }
    var probe: Probe<FileState?> { FileProbe.probe(path, content: true) }
    public var facts: [FactQuery] { [probe.query] }
    public var affects: FactScope { .keys(FileSupport.keys(path)) }
    public var secrets: [Secret] { content.secrets }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        let current = try facts[probe]
        let wanted = Data(content.revealed().utf8)
        let scrubber = SecretScrubber(secrets)
        let upload = Action.upload(UploadAction(path: path, text: content, mode: mode, owner: owner, group: group, validate: validate))
        guard let current else {
            return .change(Change(actions: [upload],
                                  diff: FileSupport.diff(old: nil, new: content.revealed(), path: path, scrubber: scrubber),
                                  undo: [.restoreFile(path: path, previous: nil)]))
        }
        guard current.kind == .file else {
            throw StepRefusal("\(path) is a \(current.kind.rawValue), not a file: remove it by hand if it should become one")
        }
        let sameContent = current.sha256 == SHA256Digest.hex(wanted)
        let sameMeta = current.mode == mode && current.owner == owner && current.group == group
        if sameContent && sameMeta { return .satisfied }
        let (snapshot, backupActions) = FileSupport.snapshot(of: current, path: path, sensitive: content.containsSecrets, context: context)
        if sameContent {
            let cmd = FileSupport.metaCommand(path: path, mode: mode, owner: owner, group: group)
            return .change(Change(actions: backupActions + [.shell(ShellAction("set \(path) to mode \(mode), \(owner):\(group)", script: cmd,
                                                                               affects: .keys(FileSupport.keys(path))))],
                                  diff: "\(path): mode \(current.mode) -> \(mode), owner \(current.owner):\(current.group) -> \(owner):\(group)\n",
                                  undo: [.restoreFile(path: path, previous: snapshot)]))
        }
        // A file holding secrets may hold an *old* secret the runbook no longer knows: its old
        // lines are never shown.
        var diff = content.containsSecrets
            ? "content of \(path) changes (sha256 \(current.sha256 ?? "?") -> \(SHA256Digest.hex(wanted))); the file holds secrets, so its lines are not shown\n"
            : FileSupport.diff(old: current.content, new: content.revealed(), path: path, scrubber: scrubber)
        if !sameMeta { diff += "\(path): mode \(current.mode) -> \(mode), owner \(current.owner):\(current.group) -> \(owner):\(group)\n" }
        return .change(Change(actions: backupActions + [upload], diff: diff, undo: [.restoreFile(path: path, previous: snapshot)]))
    }
}
