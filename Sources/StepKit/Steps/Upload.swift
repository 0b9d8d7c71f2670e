import LeanFoundation

/// A file or binary placed on the host byte for byte. Compared by SHA-256 first: when the
/// host already has it, nothing is sent. Sent under a temporary name and renamed. Undo puts
/// the previous version back from a copy kept on the host, or removes the file.
public struct Upload: Step {
    public let path: String
    public let payload: Payload
    public let mode: String
    public let owner: String
    public let group: String
    public let description: String
    public var bytes: Data { payload.bytes }
    public var sha256: String { payload.sha256 }

    public init(_ payload: Payload, to path: String, mode: String = "644", owner: String = "root", group: String = "root", description: String? = nil) {
        self.path = path; self.payload = payload; self.mode = FileSupport.normalizeMode(mode); self.owner = owner; self.group = group
        self.description = description ?? "upload \(path) (\(payload.bytes.count) bytes, mode \(FileSupport.normalizeMode(mode)))"
    }

    public init(_ bytes: Data, to path: String, mode: String = "644", owner: String = "root", group: String = "root", description: String? = nil) {
        self.init(Payload(bytes), to: path, mode: mode, owner: owner, group: group, description: description)
    }

    public init(contentsOf url: URL, to path: String, mode: String = "644", owner: String = "root", group: String = "root", description: String? = nil) throws {
        self.init(try Payload.mapping(file: url.path), to: path, mode: mode, owner: owner, group: group, description: description)
    }

    public var id: String { "upload:\(path)" }
    public var fingerprint: String { SHA256Digest.hex("\(path)|\(sha256)|\(mode)|\(owner)|\(group)") }
    var probe: Probe<FileState?> { FileProbe.probe(path, content: false) }
    /// The file, and the system probe's tools: the decompressors the upload may travel packed for.
    public var facts: [FactQuery] { [probe.query, SystemProbe.probe.query] }
    public var affects: FactScope { .keys(FileSupport.keys(path)) }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        var action = UploadAction(path: path, payload: payload, mode: mode, owner: owner, group: group)
        // The system probe is always there in a run (it is in `facts`); a plan from facts made
        // by hand without it sends the bytes as they are.
        if facts.has(SystemProbe.key) {
            action.compression = UploadCompression.choose(targetTools: try facts[SystemProbe.probe].tools,
                                                          localTools: UploadCompression.localTools, size: bytes.count)
        }
        let upload = Action.upload(action)
        guard let current = try facts[probe] else {
            return .change(Change(actions: [upload], diff: "+ \(path) sha256 \(sha256) (\(bytes.count) bytes)\n",
                                  undo: [.restoreFile(path: path, previous: nil)]))
        }
        guard current.kind == .file else { throw StepRefusal("\(path) is a \(current.kind.rawValue), not a file") }
        let sameContent = current.sha256 == sha256
        let sameMeta = current.mode == mode && current.owner == owner && current.group == group
        if sameContent && sameMeta { return .satisfied }
        // Binaries are not put in the journal: a copy stays on the host for rollback.
        var snapState = current; snapState.content = nil
        let (snapshot, backup) = FileSupport.snapshot(of: snapState, path: path, sensitive: true, context: context)
        if sameContent {
            return .change(Change(actions: backup + [.shell(ShellAction("set \(path) to mode \(mode), \(owner):\(group)",
                                                                        script: FileSupport.metaCommand(path: path, mode: mode, owner: owner, group: group)))],
                                  diff: "\(path): mode \(current.mode) -> \(mode), owner \(current.owner):\(current.group) -> \(owner):\(group)\n",
                                  undo: [.restoreFile(path: path, previous: snapshot)]))
        }
        return .change(Change(actions: backup + [upload],
                              diff: "~ \(path) sha256 \(current.sha256 ?? "?") (\(current.size) bytes) -> \(sha256) (\(bytes.count) bytes)\n",
                              undo: [.restoreFile(path: path, previous: snapshot)]))
    }
}

/// A command for the rare step no type covers, made idempotent by its guards: skipped when
/// `creates` exists or `unless` succeeds. Undo runs `undo` when given, else it is irreversible.
public struct GuardedCommand: Step {
    public let id: String
    public let description: String
    public let command: String
    public let creates: String?
    public let unless: String?
    public let undoCommand: String?
    /// Secrets the command reads from stdin, one per line, in order.
    public let stdinSecrets: [Secret]

    public init(id: String, _ description: String, command: String, creates: String? = nil, unless: String? = nil,
                undo: String? = nil, stdinSecrets: [Secret] = []) {
        self.id = "cmd:" + id; self.description = description; self.command = command
        self.creates = creates; self.unless = unless; self.undoCommand = undo; self.stdinSecrets = stdinSecrets
    }

    var createsProbe: Probe<Bool>? { creates.map(FileProbe.exists) }
    var unlessProbe: Probe<Bool>? { unless.map { ConditionProbe.probe($0) } }
    public var facts: [FactQuery] { [createsProbe?.query, unlessProbe?.query].compactMap { $0 } }
    public var affects: FactScope { .everything }
    public var secrets: [Secret] { stdinSecrets }
    public var reversibility: Reversibility { undoCommand == nil ? .irreversible("no undo command given for \(id)") : .reversible }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        if let p = createsProbe, try facts[p] { return .satisfied }
        if let p = unlessProbe, try facts[p] { return .satisfied }
        var script = command
        if let creates {
            script = "( \(command) ) || exit $?\n[ -e \(Shell.quote(creates)) ] || { echo \(Shell.quote("the command ran but did not create \(creates)")) >&2; exit 1; }"
        }
        let guardText = [creates.map { "\($0) does not exist" }, unless.map { "`\($0)` fails" }].compactMap { $0 }.joined(separator: " and ")
        return .change(Change(actions: [.shell(ShellAction("run: \(command)", script: script, stdinSecrets: stdinSecrets))],
                              diff: "run `\(command)`" + (guardText.isEmpty ? " (no guard: runs every time)" : " because \(guardText)") + "\n",
                              undo: [undoCommand.map { .runScript(summary: "undo \(id): \($0)", script: $0) } ?? .irreversible(reason: "no undo command given for \(id)")]))
    }
}
