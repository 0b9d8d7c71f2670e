import LeanFoundation

/// What happened to one undo action.
public struct UndoReport: Codable, Sendable {
    public enum State: String, Codable, Sendable { case undone, irreversible, failed, skipped }
    public var stepId: String
    public var summary: String
    public var state: State
    public var message: String?
    /// Set when `state` is `failed`: why, as a kind a script can switch on.
    public var failure: Failure? = nil
}

/// `ccrun rollback` on one host.
public struct RollbackReport: Codable, Sendable {
    public var host: String
    public var runId: String?
    public var items: [UndoReport]
    /// What stopped the rollback on this host before or between its undo steps.
    public var failure: Failure?
    /// What happened besides the undo steps, e.g. a dead run's lock taken over.
    public var notes: [String] = []
    public init(host: String, runId: String?, items: [UndoReport], failure: Failure?, notes: [String] = []) {
        self.host = host; self.runId = runId; self.items = items; self.failure = failure; self.notes = notes
    }
    /// The failure message, if the rollback stopped on this host.
    public var error: String? { failure?.message }
    public var failed: Bool { failure != nil || items.contains { $0.state == .failed } }
    public var irreversible: [UndoReport] { items.filter { $0.state == .irreversible } }
}

/// `ccrun rollback --json`: one document for every host named (docs/json.md, docs/schemas/ccrun.rollback-1.json).
public struct RollbackRunReport: Codable, Sendable, JSONDocument {
    public static let schemaVersion = "ccrun.rollback/1"
    public var schema: String = RollbackRunReport.schemaVersion
    public var hosts: [RollbackReport]
    public init(hosts: [RollbackReport]) { self.hosts = hosts }
    public var exitCode: Int32 { hosts.contains(where: \.failed) ? 1 : 0 }
}

/// Undoes a run's changes on one host in reverse order, from the undo data journalled before
/// each apply. Each step's undo is journalled as `undone`, so an interrupted rollback can be
/// run again without undoing anything twice.
public struct Rollback: Sendable {
    public let options: RunOptions
    /// Resolves a database endpoint named in the journal (the password is not there).
    public let databases: @Sendable (String) -> DatabaseEndpoint?

    public init(options: RunOptions, databases: @escaping @Sendable (String) -> DatabaseEndpoint? = { _ in nil }) {
        self.options = options; self.databases = databases
    }

    /// The newest run on this host that changed something and was not rolled back:
    /// from the local journal, else from the target's own journal.
    public static func latestRun(on host: any RemoteHost, journal: LocalJournal?, target: TargetPaths) async -> RunHistory? {
        if let local = journal?.runs(host: host.name).first(where: { $0.hasIntents && !$0.isRolledBack }) {
            // merge with the target's copy, which may know more (done records after a local crash)
            let remote = (try? await host.readFile(target.journal(local.runId!))).map(JournalRecord.parse) ?? []
            return RunHistory.merged(local.records, remote)
        }
        let listing = try? await host.run("ls -1 \(Shell.quote(target.journalDirectory)) 2>/dev/null | sort -r", stdin: nil, timeout: .seconds(30))
        for name in (listing?.stdoutText ?? "").split(separator: "\n") where name.hasSuffix(".jsonl") {
            guard let data = try? await host.readFile(target.journalDirectory + "/" + name) else { continue }
            let h = RunHistory(JournalRecord.parse(data))
            if h.hasIntents && !h.isRolledBack { return h }
        }
        return nil
    }

    public func run(on host: any RemoteHost, history: RunHistory) async -> RollbackReport {
        guard let runId = history.runId else { return RollbackReport(host: host.name, runId: nil, items: [], failure: Failure(.refused, "no run to roll back")) }
        var items: [UndoReport] = []
        let paths = options.target
        let owner = options.owner ?? LockOwner.current(runId: "rollback-" + runId)
        let lock = TargetLock(paths: paths, owner: owner)
        let jOptions = RunOptions(mode: .apply, runId: runId, target: paths, journal: options.journal, sql: options.sql)
        var notes: [String] = []
        do {
            let out = try await host.run(lock.acquireScript, stdin: nil, timeout: options.probeTimeout)
            let parsed = TargetLock.parse(out.stdoutText)
            if !parsed.acquired {
                guard let info = parsed.info else { throw HostError.protocolError(host: host.name, detail: "cannot create \(paths.lock)") }
                notes.append(try await lock.takeOver(info, on: host, timeout: options.probeTimeout))
            }
        } catch {
            return RollbackReport(host: host.name, runId: runId, items: [], failure: Failure(error, scrubber: SecretScrubber([])), notes: notes)
        }
        defer { Task { _ = try? await host.run(lock.releaseScript, stdin: nil, timeout: .seconds(30)) } }

        let done = history.undoneSteps
        var failure: Failure?
        for intent in history.firstIntents.reversed() {
            guard let stepId = intent.stepId else { continue }
            if done.contains(stepId) {
                items.append(UndoReport(stepId: stepId, summary: intent.description ?? stepId, state: .skipped, message: "already undone"))
                continue
            }
            var stepFailed = false
            for undo in intent.undo ?? [] {
                if case let .irreversible(reason) = undo {
                    items.append(UndoReport(stepId: stepId, summary: undo.summary, state: .irreversible, message: reason))
                    continue
                }
                do {
                    try await execute(undo, on: host)
                    items.append(UndoReport(stepId: stepId, summary: undo.summary, state: .undone, message: nil))
                } catch {
                    let why = Failure(error, scrubber: SecretScrubber([]))
                    items.append(UndoReport(stepId: stepId, summary: undo.summary, state: .failed, message: why.message, failure: why))
                    stepFailed = true
                    break
                }
            }
            if stepFailed {
                failure = Failure(items.last?.failure?.kind ?? .internal, "rollback stopped at \(stepId); fix the cause and run `ccrun rollback` again")
                break
            }
            let rec = JournalRecord(kind: .undone, runId: runId, host: host.name, stepId: stepId, status: "undone")
            try? jOptions.journal?.append(rec)
            _ = try? await host.run(paths.appendScript(runId: runId), stdin: try rec.jsonLine(), timeout: options.probeTimeout)
        }
        if failure == nil {
            let rec = JournalRecord(kind: .rolledBack, runId: runId, host: host.name, status: "rolled back")
            try? jOptions.journal?.append(rec)
            if let line = try? rec.jsonLine() { _ = try? await host.run(paths.appendScript(runId: runId), stdin: line, timeout: options.probeTimeout) }
        }
        _ = try? await host.run(lock.releaseScript, stdin: nil, timeout: .seconds(30))
        return RollbackReport(host: host.name, runId: runId, items: items, failure: failure, notes: notes)
    }

    /// Turns undo data into actions: the same executor apply uses.
    func execute(_ undo: UndoAction, on host: any RemoteHost) async throws {
        let exec = ActionExecutor(host: host, sql: options.sql, scrubber: SecretScrubber([]), timeout: options.actionTimeout, packer: options.packer)
        switch undo {
        case let .restoreFile(path, nil):
            // With the temporary copies (packed or not) a run killed mid-upload left behind.
            try await exec.run("rm -f \(Shell.join([path] + UploadAction.temporaryPaths(for: path)))", stdin: nil, what: "removing \(path)")
        case let .restoreFile(path, snap?):
            if let b64 = snap.contentBase64 {
                let data = Data(base64Encoded: b64) ?? Data()
                try await exec.execute(.upload(UploadAction(path: path, bytes: data, mode: snap.mode, owner: snap.owner, group: snap.group)))
            } else if let backup = snap.backupPath {
                let u = UploadAction(path: path, bytes: Data(), mode: snap.mode, owner: snap.owner, group: snap.group)
                try await exec.run("cp -p \(Shell.quote(backup)) \(Shell.quote(u.temporaryPath)) && \(u.finishScript) && rm -f \(Shell.quote(backup))", stdin: nil, what: "restoring \(path) from \(backup)")
            } else {
                throw StepRefusal("no saved content for \(path)")
            }
        case let .removeDirectory(path):
            let p = Shell.quote(path)
            try await exec.run("if [ -d \(p) ]; then rmdir \(p) || { echo \(Shell.quote("\(path) holds files this run did not create; left in place")) >&2; exit 1; }; fi", stdin: nil, what: "removing directory \(path)")
        case let .restoreDirectory(path, mode, owner, group):
            try await exec.run(FileSupport.metaCommand(path: path, mode: mode, owner: owner, group: group), stdin: nil, what: "restoring \(path)")
        case let .purgePackages(manager, _, before):
            let installed = try await probePackages(host).names(for: manager)
            let extra = installed.subtracting(before).sorted()
            if extra.isEmpty { return }
            try await exec.run(PackageCommands.purge(extra, with: manager), stdin: nil, what: "purging \(extra.joined(separator: " "))")
        case let .unmount(mp):
            let q = Shell.quote(mp)
            try await exec.run("if awk -v m=\(q) '$2==m {f=1} END {exit !f}' /proc/mounts; then umount \(q); fi", stdin: nil, what: "unmounting \(mp)")
        case let .runScript(summary, script):
            try await exec.run(script, stdin: nil, what: summary)
        case let .runSQL(endpoint, script):
            guard let ep = databases(endpoint) else { throw StepRefusal("no credentials for database \(endpoint): pass --inventory with its database section") }
            _ = try options.sql.execute(SecretText(script), on: ep)
        case .irreversible:
            return
        }
    }

    func probePackages(_ host: any RemoteHost) async throws -> InstalledPackages {
        let batch = FactBatch([PackagesProbe.probe.query])
        let out = try await host.run(batch.script, stdin: nil, timeout: options.probeTimeout)
        return try batch.parse(out.stdoutText)[PackagesProbe.probe]
    }
}
