import Foundation

/// A shell script an action runs on the target. Secrets never appear in `script`: they are
/// written, one per line, to the script's stdin, where the script reads them
/// (`IFS= read -r CCRUN_SECRET_1`).
public struct ShellAction: Sendable, Hashable {
    public var summary: String
    public var script: String
    public var stdinSecrets: [Secret]
    /// The facts the command may change, when the step that plans it knows them (`mount /srv`:
    /// the mounts); nil: it may change anything the step's `affects` says.
    public var affects: FactScope?
    public init(_ summary: String, script: String, stdinSecrets: [Secret] = [], affects: FactScope? = nil) {
        self.summary = summary; self.script = script; self.stdinSecrets = stdinSecrets; self.affects = affects
    }
}

/// Bytes to place at a path with mode and owner: sent under a temporary name, chowned,
/// chmoded, then renamed over the path, so readers never see a half-written file.
///
/// A payload with a known SHA-256 (an `Upload`) is also checked on the target before the rename
/// and its digest recorded in the target's digest cache (`FileProbe.digestCacheDirectory`), so
/// the next probe of the unchanged file need not hash it again. Such a payload may travel packed
/// (`compression`): it lands at `wirePath` and is unpacked to `temporaryPath` before that check.
public struct UploadAction: Sendable, Hashable {
    public var path: String
    public var content: SecretText?
    public var bytes: Data?
    public var expectedSHA256: String?
    /// How the bytes travel; nil: as they are. Only with `expectedSHA256`, which checks the unpacking.
    public var compression: UploadCompression?
    public var mode: String
    public var owner: String
    public var group: String
    /// A command that must accept the new copy before it replaces `path` (`%s` stands for the
    /// copy's path), as Ansible's `validate`: a configuration the program would refuse never
    /// replaces the one it runs with. Run on the target after the bytes landed, before the rename.
    public var validate: String?

    public init(path: String, text: SecretText, mode: String, owner: String, group: String, validate: String? = nil) {
        self.path = path; content = text; bytes = nil; self.mode = mode; self.owner = owner; self.group = group
        self.validate = validate
    }
    public init(path: String, bytes: Data, mode: String, owner: String, group: String) {
        self.path = path; content = nil; self.bytes = bytes; self.mode = mode; self.owner = owner; self.group = group
    }
    public init(path: String, payload: Payload, mode: String, owner: String, group: String) {
        self.init(path: path, bytes: payload.bytes, mode: mode, owner: owner, group: group)
        expectedSHA256 = payload.sha256
    }
    public func payload() -> Data { bytes ?? Data((content?.revealed() ?? "").utf8) }
    /// The bytes as sent: packed with `compression` on this machine (by the run's `packer`), else
    /// the payload itself.
    public func wirePayload(packer: UploadPacker) async throws -> Data {
        guard let packing, let expectedSHA256 else { return payload() }
        return try await packer.pack(payload(), sha256: expectedSHA256, with: packing)
    }
    /// `compression` when it applies: only a payload whose digest is checked after unpacking.
    public var packing: UploadCompression? { expectedSHA256 == nil ? nil : compression }
    public var temporaryPath: String { Self.temporaryPath(for: path) }
    /// Where the bytes land on the target: `temporaryPath`, with the codec's suffix when packed.
    public var wirePath: String { temporaryPath + (packing?.fileSuffix ?? "") }
    /// Every temporary copy an upload to `path` may leave: unpacked, and packed by each codec.
    public static func temporaryPaths(for path: String) -> [String] {
        let t = temporaryPath(for: path)
        return [t] + UploadCompression.allCases.map { t + $0.fileSuffix }
    }
    /// Where the bytes for `path` land before the rename (a run killed mid-upload leaves it).
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).ccrun-tmp").path
    }
    /// The command run after the bytes landed at `temporaryPath`.
    public var finishScript: String {
        let t = Shell.quote(temporaryPath), p = Shell.quote(path)
        var install = "chown \(Shell.quote(owner + ":" + group)) \(t) && chmod \(mode) \(t) && mv -f \(t) \(p)"
        if let validate {
            // The checker's own words say what is wrong; the old file stays in place.
            let command = validate.replacingOccurrences(of: "%s", with: t)
            install = """
                if ! ccrun_out=$(\(command) 2>&1); then rm -f \(t); \
                echo \(Shell.quote("`\(validate.replacingOccurrences(of: "%s", with: "NEW"))` refused the new \(path); nothing was replaced:")) >&2; \
                printf '%s\\n' "$ccrun_out" >&2; exit 1; fi
                \(install)
                """
        }
        guard let expected = expectedSHA256 else { return install }
        // Unpacked with umask 077: the copy is chmoded only once its digest is checked.
        let unpack = packing.map { c in
            let w = Shell.quote(wirePath)
            return "(umask 077; \(c.unpackCommand) < \(w) > \(t)) && rm -f \(w) || { rm -f \(w) \(t); echo "
                + Shell.quote("cannot unpack the \(c.rawValue) copy of \(path) on the host; nothing was replaced") + " >&2; exit 1; }\n"
        } ?? ""
        return unpack + """
            s=$(sha256sum < \(t) | cut -d' ' -f1)
            if [ "$s" != \(expected) ]; then rm -f \(t); echo \(Shell.quote("the copy of \(path) on the host has a different SHA-256 than the one sent; nothing was replaced")) >&2; exit 1; fi
            \(install) || exit $?
            \(FileProbe.recordDigestScript(path: path, sha256: "\"$s\""))
            """
    }
    public var masksContent: Bool { content?.containsSecrets ?? false }
}

/// A script run against a database from the controller through MariaDB Connector/C.
public struct SQLAction: Sendable, Hashable {
    public var endpoint: DatabaseEndpoint
    public var script: SecretText
    public init(endpoint: DatabaseEndpoint, script: SecretText) { self.endpoint = endpoint; self.script = script }
}

/// One thing apply does. A plan is a list of these; apply executes exactly them.
public enum Action: Sendable, Hashable {
    case shell(ShellAction)
    case upload(UploadAction)
    case sql(SQLAction)

    /// The facts this action may change; nil when it does not say (a command of unknown effect,
    /// SQL). An upload changes exactly its file.
    public var affects: FactScope? {
        switch self {
        case let .shell(a): a.affects
        case let .upload(u): .keys(FileSupport.keys(u.path))
        case .sql: nil
        }
    }

    /// Human-readable, secret-free line for reports.
    public var summary: String {
        switch self {
        case let .shell(a): a.summary
        case let .upload(u): "write \(u.path) (\(u.payload().count) bytes\(u.packing.map { ", \($0.rawValue)-packed" } ?? ""), mode \(u.mode), \(u.owner):\(u.group))"
        case let .sql(s): "run SQL on \(s.endpoint): \(s.script.masked.prefix(200))"
        }
    }

    /// The command lines as the target sees them (secrets masked). Host-free tests compare these.
    public var commands: [String] {
        switch self {
        case let .shell(a): [a.script]
        case let .upload(u):
            ["upload \(u.payload().count) bytes sha256=\(u.expectedSHA256 ?? SHA256Digest.hex(u.payload()))"
                + (u.packing.map { " \($0.rawValue)-packed" } ?? "") + " to \(u.wirePath) mode \(u.mode)", u.finishScript]
        case let .sql(s): ["sql \(s.endpoint): \(s.script.masked)"]
        }
    }
}

/// What previous state looked like, captured before apply, so rollback can put it back.
public struct FileSnapshot: Codable, Sendable, Hashable {
    public var mode: String
    public var owner: String
    public var group: String
    public var sha256: String?
    /// Content inline (base64) for small, secret-free files.
    public var contentBase64: String?
    /// Or a copy kept on the target (large files, files holding secrets: never in the journal).
    public var backupPath: String?
    public init(mode: String, owner: String, group: String, sha256: String?, contentBase64: String?, backupPath: String?) {
        self.mode = mode; self.owner = owner; self.group = group; self.sha256 = sha256
        self.contentBase64 = contentBase64; self.backupPath = backupPath
    }
}

/// Undo data recorded in the journal *before* a step applies. Never holds a secret.
public enum UndoAction: Codable, Sendable, Hashable {
    /// Put a file back as it was; `previous == nil` means the run created it: remove it.
    case restoreFile(path: String, previous: FileSnapshot?)
    /// The run created this directory: remove it (only if empty of anything else).
    case removeDirectory(path: String)
    /// The run changed a directory's mode/owner.
    case restoreDirectory(path: String, mode: String, owner: String, group: String)
    /// Purge what the host has now that it did not have before (the package and what it pulled in).
    case purgePackages(manager: PackageManager, requested: [String], installedBefore: [String])
    /// The run mounted this: unmount it.
    case unmount(mountPoint: String)
    /// A user-supplied undo command.
    case runScript(summary: String, script: String)
    /// A user-supplied undo SQL script (secret-free) against a database named by endpoint.
    case runSQL(endpoint: String, script: String)
    /// Cannot be undone; rollback reports it.
    case irreversible(reason: String)

    public var summary: String {
        switch self {
        case let .restoreFile(p, prev): prev == nil ? "remove \(p) (created by the run)" : "restore \(p) (mode \(prev!.mode), \(prev!.owner):\(prev!.group))"
        case let .removeDirectory(p): "remove directory \(p)"
        case let .restoreDirectory(p, m, o, g): "restore \(p) to mode \(m), \(o):\(g)"
        case let .purgePackages(m, r, _): "purge \(r.joined(separator: " ")) and what it pulled in (\(m.rawValue))"
        case let .unmount(p): "unmount \(p)"
        case let .runScript(s, _): s
        case let .runSQL(e, _): "run undo SQL on \(e)"
        case let .irreversible(r): "IRREVERSIBLE: \(r)"
        }
    }
}

/// A step's answer to "what would you do on this host?"
public enum Plan: Sendable {
    case satisfied
    case change(Change)
    /// The state cannot be known until an earlier step applies (e.g. a service a package creates).
    case dependsOnEarlierChange(String)

    public var change: Change? { if case let .change(c) = self { c } else { nil } }
    public var isSatisfied: Bool { if case .satisfied = self { true } else { false } }
}

public struct Change: Sendable {
    public var actions: [Action]
    /// A unified diff (files) or a short description of the difference; secrets masked.
    public var diff: String?
    public var undo: [UndoAction]
    public init(actions: [Action], diff: String? = nil, undo: [UndoAction]) {
        self.actions = actions; self.diff = diff; self.undo = undo
    }
    public var commands: [String] { actions.flatMap(\.commands) }

    /// What applying this change may alter, derived from its actions, so that a step's idea of
    /// its effects cannot drift from what it actually does; nil when an action does not say
    /// (then the engine uses the step's `affects`).
    public var affects: FactScope? {
        var scope = FactScope.keys([])
        for action in actions {
            guard let a = action.affects else { return nil }
            scope = scope.union(a)
        }
        return scope
    }
}

/// Whether a step's effect can be taken back.
public enum Reversibility: Sendable, Hashable {
    case reversible
    case irreversible(String)
}

/// What the engine tells a step while planning.
public struct PlanContext: Sendable {
    /// True when an earlier step of this run would change (dry-run) something this step's facts
    /// describe: its facts are then the state *before* that change.
    public var earlierChangePending: Bool
    /// Where large or secret-bearing previous contents are copied on the target for undo.
    public var backupDirectory: String
    public init(earlierChangePending: Bool = false, backupDirectory: String = "/var/lib/ccrun/backup/RUN") {
        self.earlierChangePending = earlierChangePending; self.backupDirectory = backupDirectory
    }
}

/// A step of a runbook: a value that names the facts it needs and computes, from them,
/// one plan. Apply executes exactly the plan's actions (check and apply share one path, so a
/// dry-run cannot lie); the undo data in the plan is journalled before apply.
public protocol Step: Sendable {
    /// Stable identifier, unique within a runbook (journal key).
    var id: String { get }
    /// Reads like the guide's line.
    var description: String { get }
    /// The probes this step's plan reads.
    var facts: [FactQuery] { get }
    /// What applying it may change (re-probed afterwards; later dry-run plans marked), when its
    /// plan's actions do not say (`Change.affects`) or it waits for an earlier change. Default:
    /// everything, which is never wrong, only slower (the facts are probed again).
    var affects: FactScope { get }
    var reversibility: Reversibility { get }
    /// Secrets this step carries, so reports can scrub them from anything read back.
    var secrets: [Secret] { get }
    /// A hash of the parameters (secrets excluded), journalled with each intent: `resume` refuses
    /// a run whose applied steps are no longer in the runbook as they were (`RunbookChanged`).
    var fingerprint: String { get }
    func plan(_ facts: FactSet, context: PlanContext) throws -> Plan
}

public extension Step {
    var affects: FactScope { .everything }
    var reversibility: Reversibility { .reversible }
    var secrets: [Secret] { [] }
    var fingerprint: String { SHA256Digest.hex(String(describing: self)) }
    /// Facts with the system facts every step may consult.
    var allFacts: [FactQuery] { [SystemProbe.probe.query] + facts }
}

/// A step refused to plan: the host is in a state it will not touch without being told.
public struct StepRefusal: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ message: String) { description = message }
}
