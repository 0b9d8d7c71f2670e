import LeanFoundation
#if canImport(Glibc)
import Glibc
#endif

/// One line of a run's journal (JSON Lines). Written before (`intent`, with undo data) and
/// after (`done`) every apply, on the target and locally. Holds no secret: undo data is built
/// from `UndoAction`, whose file contents are only those of secret-free files.
public struct JournalRecord: Codable, Sendable, Hashable {
    public enum Kind: String, Codable, Sendable {
        case run, intent, done, finished, undone, rolledBack
    }
    public var kind: Kind
    public var runId: String
    public var host: String
    public var at: String
    public var runbook: String?
    public var mode: String?
    public var stepId: String?
    /// The step's position in its runbook; for an engine whose steps are several calls
    /// (CloudAPI), the call's number in the run, so each call's intent and undone match up.
    public var index: Int?
    public var fingerprint: String?
    public var description: String?
    public var undo: [UndoAction]?
    /// Undo data of an engine StepKit does not know (CloudAPI's `CloudUndo`), as JSON.
    public var externalUndo: String?
    public var status: String?

    public init(kind: Kind, runId: String, host: String, runbook: String? = nil, mode: String? = nil, stepId: String? = nil,
                index: Int? = nil, fingerprint: String? = nil, description: String? = nil, undo: [UndoAction]? = nil,
                externalUndo: String? = nil, status: String? = nil) {
        self.kind = kind; self.runId = runId; self.host = host; self.at = JournalRecord.timestamp()
        self.runbook = runbook; self.mode = mode; self.stepId = stepId; self.index = index
        self.fingerprint = fingerprint; self.description = description; self.undo = undo; self.externalUndo = externalUndo; self.status = status
    }

    /// ISO 8601 UTC with milliseconds: 2026-12-06T04:59:16.847Z.
    static func timestamp() -> String { UTCTime(Date()).format(date: "-", separator: "T", time: ":") }

    public func jsonLine() throws -> Data {
        let e = JSONEncoder(); e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var d = try e.encode(self); d.append(0x0A); return d
    }

    public static func parse(_ data: Data) -> [JournalRecord] {
        let d = JSONDecoder()
        return data.split(separator: 0x0A).compactMap { try? d.decode(JournalRecord.self, from: Data($0)) }
    }
}

/// New run ids sort by time: 20261125T120301.042Z-3f9a0c1d. Milliseconds, because runs made in
/// the same second (a quick repair after an apply) must still sort in order: rollback and
/// resume pick "the last run" by this order.
public enum RunID {
    public static func make(date: Date = Date()) -> String {
        UTCTime(date).format(date: "", separator: "T", time: "") + "-" + UUID().uuidString.prefix(8).lowercased()
    }
}

/// A UTC time broken down by the C library. Foundation's date formatters load ICU's calendar and
/// time zone data on first use (a few milliseconds per process), and every run stamps its id and
/// its journal records; these fixed formats need none of it.
struct UTCTime {
    var year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millisecond = 0

    init(_ date: Date) {
        // Whole milliseconds first, as Foundation (ICU) counts them, then split.
        let ms = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var whole = time_t(ms >= 0 ? ms / 1000 : (ms - 999) / 1000)
        millisecond = Int(ms - Int64(whole) * 1000)
        var parts = tm()
        gmtime_r(&whole, &parts)
        year = Int(parts.tm_year) + 1900; month = Int(parts.tm_mon) + 1; day = Int(parts.tm_mday)
        hour = Int(parts.tm_hour); minute = Int(parts.tm_min); second = Int(parts.tm_sec)
    }

    /// `<yyyy><d><MM><d><dd><separator><HH><t><mm><t><ss>.<SSS>Z`
    func format(date d: String, separator: String, time t: String) -> String {
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let ms = millisecond < 10 ? "00\(millisecond)" : millisecond < 100 ? "0\(millisecond)" : "\(millisecond)"
        return "\(year)\(d)\(two(month))\(d)\(two(day))\(separator)\(two(hour))\(t)\(two(minute))\(t)\(two(second)).\(ms)Z"
    }
}

/// What a journal says about one run on one host.
public struct RunHistory: Sendable {
    public var records: [JournalRecord]
    public init(_ records: [JournalRecord]) { self.records = records }

    public var runId: String? { records.first?.runId }
    public var runbook: String? { records.first(where: { $0.runbook != nil })?.runbook }
    public var isFinished: Bool { records.contains { $0.kind == .finished } }
    public var isRolledBack: Bool { records.contains { $0.kind == .rolledBack } }
    public var hasIntents: Bool { records.contains { $0.kind == .intent } }
    public var doneSteps: Set<String> { Set(records.filter { $0.kind == .done }.compactMap(\.stepId)) }
    public var undoneSteps: Set<String> { Set(records.filter { $0.kind == .undone }.compactMap(\.stepId)) }
    /// The first intent per step: its undo data describes the state before the run touched it,
    /// even when the step was retried after a resume.
    public var firstIntents: [JournalRecord] {
        var seen = Set<String>(); var out: [JournalRecord] = []
        for r in records where r.kind == .intent { if let s = r.stepId, seen.insert(s).inserted { out.append(r) } }
        return out
    }
    public func firstIntent(for stepId: String) -> JournalRecord? { firstIntents.first { $0.stepId == stepId } }

    /// The first step the interrupted run applied (or began to) that `runbook` no longer has as
    /// it was: its id is gone, or its parameters' fingerprint differs from the one journalled
    /// with its intent. Nil when the runbook is the one the run began with (records from before
    /// fingerprints were journalled are taken on trust).
    public func changedStep(in runbook: Runbook) -> RunbookChanged? {
        guard let runId, let host = records.first?.host else { return nil }
        for intent in firstIntents {
            guard let id = intent.stepId, let recorded = intent.fingerprint else { continue }
            let step = runbook.steps.first { $0.id == id }
            if step?.fingerprint != recorded {
                return RunbookChanged(host: host, runId: runId, runbook: runbook.name, stepId: id,
                                      stepDescription: intent.description, removed: step == nil)
            }
        }
        return nil
    }

    /// Merges two copies of a journal (target and local), keeping each record once, in time order.
    public static func merged(_ a: [JournalRecord], _ b: [JournalRecord]) -> RunHistory {
        var seen = Set<JournalRecord>(); var out: [JournalRecord] = []
        for r in (a + b).sorted(by: { $0.at < $1.at }) where seen.insert(r).inserted { out.append(r) }
        return RunHistory(out)
    }
}

/// `resume` refused: a step the interrupted run applied is not in the runbook as it was. Going on
/// would mix two runbooks in one run (steps done under the old parameters counted as done under
/// the new ones, undo data of the old), so the operator chooses.
public struct RunbookChanged: Error, Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let runId: String
    public let runbook: String
    public let stepId: String
    /// The step as the journal describes it (secret-free).
    public let stepDescription: String?
    /// The step is no longer in the runbook at all (else its parameters changed).
    public let removed: Bool

    public var description: String {
        let step = "step \(stepId)" + (stepDescription.map { " (\($0))" } ?? "")
        return "cannot resume run \(runId) on \(host): the \(runbook) runbook changed since the run was interrupted: \(step) "
            + (removed ? "is no longer in it" : "has other parameters than when the run applied it")
            + ". Either restore the runbook (inventory, options, files) as it was and resume, or undo the interrupted run with "
            + "`ccrun rollback \(host)` and apply the changed runbook as a new run."
    }
}

/// The controller's copy of the journals: `<dir>/<host>/<run-id>.jsonl`. Records that must
/// survive a crash before the engine goes on (an intent, before its change) are fsync'd; the
/// others are flushed by the next fsync of the same file, and losing them costs nothing but a
/// re-check (a lost `done` is found applied on resume, a lost `finished` makes resume a no-op).
public struct LocalJournal: Sendable {
    public let directory: URL
    public init(directory: URL) { self.directory = directory }

    /// $CCRUN_STATE_DIR, else $XDG_STATE_HOME/ccrun, else ~/.local/state/ccrun.
    public static func defaultDirectory() -> URL {
        let env = ProcessInfo.processInfo.environment
        if let d = env["CCRUN_STATE_DIR"], !d.isEmpty { return URL(fileURLWithPath: d) }
        if let x = env["XDG_STATE_HOME"], !x.isEmpty { return URL(fileURLWithPath: x).appendingPathComponent("ccrun") }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".local/state/ccrun")
    }

    static func safe(_ name: String) -> String { name.replacingOccurrences(of: "/", with: "_") }

    func file(host: String, runId: String) -> URL {
        directory.appendingPathComponent(Self.safe(host)).appendingPathComponent(Self.safe(runId) + ".jsonl")
    }

    /// Appends a record; with `sync` (the default) it is on disk when this returns. An fsync
    /// costs 5-15 ms here, so the engine asks for it only where the write-ahead rule needs it.
    public func append(_ record: JournalRecord, sync: Bool = true) throws {
        let url = file(host: record.host, runId: record.runId)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        if !FileManager.default.fileExists(atPath: url.path) {
            FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let h = try FileHandle(forWritingTo: url)
        defer { try? h.close() }
        try h.seekToEnd()
        try h.write(contentsOf: record.jsonLine())
        if sync { try h.synchronize() }
    }

    public func history(host: String, runId: String) -> RunHistory {
        RunHistory(JournalRecord.parse((try? Data(contentsOf: file(host: host, runId: runId))) ?? Data()))
    }

    /// The newest run recorded for a host before `runId` (run ids sort by time); reads one file.
    public func latestRun(host: String, before runId: String) -> RunHistory? {
        let dir = directory.appendingPathComponent(Self.safe(host))
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        let current = Self.safe(runId) + ".jsonl"
        guard let name = names.filter({ $0.hasSuffix(".jsonl") && $0 < current }).max() else { return nil }
        let history = RunHistory(JournalRecord.parse((try? Data(contentsOf: dir.appendingPathComponent(name))) ?? Data()))
        return history.runId == nil ? nil : history
    }

    /// All runs recorded for a host, newest first.
    public func runs(host: String) -> [RunHistory] {
        let dir = directory.appendingPathComponent(Self.safe(host))
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".jsonl") }.sorted(by: >).map {
            RunHistory(JournalRecord.parse((try? Data(contentsOf: dir.appendingPathComponent($0))) ?? Data()))
        }.filter { $0.runId != nil }
    }
}

/// The controller's copies of a host's answers that have an `AnswerSource` (the package lists):
/// `<state dir>/<host>/cached-answers.json`, beside the host's journal. A cache: a file that is
/// missing, unreadable or damaged only means the host computes its answers again.
public struct FactCache: Sendable {
    let file: URL
    public init(journal: LocalJournal, host: String) {
        file = journal.directory.appendingPathComponent(LocalJournal.safe(host)).appendingPathComponent("cached-answers.json")
    }

    public func load() -> [String: CachedAnswer] {
        guard let data = try? Data(contentsOf: file) else { return [:] }
        return (try? JSONDecoder().decode([String: CachedAnswer].self, from: data)) ?? [:]
    }

    /// Merges `fresh` into the file (written whole, then renamed, so a reader never sees half of it).
    public func store(_ fresh: [String: CachedAnswer]) {
        guard !fresh.isEmpty else { return }
        var all = load()
        all.merge(fresh) { _, new in new }
        guard let data = try? JSONEncoder().encode(all) else { return }
        let dir = file.deletingLastPathComponent()
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let temporary = dir.appendingPathComponent(".cached-answers.\(UUID().uuidString)")
        guard FileManager.default.createFile(atPath: temporary.path, contents: data, attributes: [.posixPermissions: 0o600]) else { return }
        if rename(temporary.path, file.path) != 0 { try? FileManager.default.removeItem(at: temporary) }
    }
}

/// The target's copy: `/var/lib/ccrun/journal/<run-id>.jsonl`, appended through the host and
/// fsync'd there (`sync FILE`) before the engine goes on.
public struct TargetPaths: Sendable {
    public let stateDirectory: String
    public init(stateDirectory: String = "/var/lib/ccrun") { self.stateDirectory = stateDirectory }
    public var lock: String { stateDirectory + "/lock" }
    public var journalDirectory: String { stateDirectory + "/journal" }
    public func journal(_ runId: String) -> String { journalDirectory + "/\(runId).jsonl" }
    public func backupDirectory(_ runId: String) -> String { stateDirectory + "/backup/\(runId)" }
    public var lastRun: String { stateDirectory + "/last-run" }

    /// A script fragment appending one record given inline (journal records hold no secret, so
    /// they may travel in the script), used to fold journal writes into a step's own scripts.
    public func appendInlineScript(runId: String, line: Data) -> String {
        let j = Shell.quote(journal(runId)), d = Shell.quote(journalDirectory)
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .newlines)
        return "{ umask 077; mkdir -p \(d) && printf '%s\\n' \(Shell.quote(text)) >> \(j) && sync \(j) && printf '%s\\n' \(Shell.quote(runId)) > \(Shell.quote(lastRun)); } || { echo 'cannot write the journal \(journal(runId))' >&2; exit 97; }"
    }

    /// A script appending the records on stdin to the run's journal and syncing it.
    public func appendScript(runId: String) -> String {
        let j = Shell.quote(journal(runId)), d = Shell.quote(journalDirectory)
        return "umask 077; mkdir -p \(d) && cat >> \(j) && sync \(j) && printf '%s\\n' \(Shell.quote(runId)) > \(Shell.quote(lastRun))"
    }
}
