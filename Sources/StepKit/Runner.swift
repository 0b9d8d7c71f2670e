import LeanFoundation

/// An ordered list of steps with a name (recorded in the journal, so `resume` finds it again).
public struct Runbook: Sendable {
    public let name: String
    public let steps: [any Step]
    public init(_ name: String, steps: [any Step]) {
        self.name = name; self.steps = steps
    }
    /// Every secret any step carries: scrubbed from everything reported.
    public var secrets: [Secret] { steps.flatMap(\.secrets) }

    /// Step ids must be unique: the journal is keyed by them.
    public func validate() throws {
        var seen = Set<String>()
        for s in steps where !seen.insert(s.id).inserted {
            throw StepRefusal("runbook \(name) has two steps with id \(s.id): give one of them a distinct path or id")
        }
    }
}

public struct RunOptions: Sendable {
    /// `apply` or `dryRun`: the engine's runs (StepKit's `RunMode` also names the whole-account
    /// runs of CloudAPI, destroy and rollback, which a `Runner` does not make: it applies only
    /// under `.apply`).
    public typealias Mode = RunMode
    public var mode: Mode
    public var runId: String
    public var target: TargetPaths
    public var journal: LocalJournal?
    public var parallel: Int
    public var probeTimeout: Duration
    public var actionTimeout: Duration
    /// Continue the recorded run `runId` instead of starting afresh.
    public var resume: Bool
    /// Lock owner identity; nil means this process.
    public var owner: LockOwner?
    public var sql: any SQLExecutor
    /// Told where an apply stands (`RunPoint`); quiet in production, a test build's stop points.
    public var observer: any RunObserver
    /// Packs this run's compressed uploads, once per payload for all its hosts.
    public var packer = UploadPacker()

    public init(mode: Mode = .apply, runId: String = RunID.make(), target: TargetPaths = TargetPaths(), journal: LocalJournal? = nil,
                parallel: Int = 8, probeTimeout: Duration = .seconds(120), actionTimeout: Duration = .seconds(1800),
                resume: Bool = false, owner: LockOwner? = nil, sql: any SQLExecutor = UnconfiguredSQLExecutor(),
                observer: any RunObserver = QuietRunObserver()) {
        self.mode = mode; self.runId = runId; self.target = target; self.journal = journal; self.parallel = parallel
        self.probeTimeout = probeTimeout; self.actionTimeout = actionTimeout; self.resume = resume; self.owner = owner; self.sql = sql
        self.observer = observer
    }
    var lockOwner: LockOwner { owner ?? LockOwner.current(runId: runId) }
}

/// A host to run on, connected lazily (and in parallel with others).
public struct HostTarget: Sendable {
    public let name: String
    public let connect: @Sendable () async throws -> any RemoteHost
    /// A runbook for this host only (built from its inventory vars); nil runs the runner's.
    public var runbook: Runbook?
    /// Whether the runner disconnects the host when done (it made the connection).
    public let ownsConnection: Bool
    public init(name: String, runbook: Runbook? = nil, connect: @escaping @Sendable () async throws -> any RemoteHost) {
        self.name = name; self.runbook = runbook; self.connect = connect; ownsConnection = true
    }
    /// An already connected host; the caller keeps it (and closes it).
    public init(_ host: any RemoteHost, runbook: Runbook? = nil) {
        name = host.name; self.runbook = runbook; connect = { host }; ownsConnection = false
    }
}

/// Counts what is sent to a host, for reports and the speed budget.
final class CountingHost: RemoteHost, @unchecked Sendable {
    // The counter is touched only from the one task running this host's steps; the lock makes
    // that assumption harmless if it is ever broken.
    private let lock = ThreadLock()
    private var count = 0
    let inner: any RemoteHost
    init(_ inner: any RemoteHost) { self.inner = inner }
    var name: String { inner.name }
    var roundTrips: Int { lock.withLock { count } }
    private func bump() { lock.withLock { count += 1 } }
    func run(_ script: String, stdin: Data?, timeout: Duration?) async throws -> ScriptResult {
        bump(); return try await inner.run(script, stdin: stdin, timeout: timeout)
    }
    func upload(_ data: Data, to path: String, mode: UInt16) async throws { bump(); try await inner.upload(data, to: path, mode: mode) }
    func readFile(_ path: String) async throws -> Data { bump(); return try await inner.readFile(path) }
}

/// Runs a runbook on hosts: probes, plans, and (in apply mode) journals and applies.
public struct Runner: Sendable {
    public let runbook: Runbook
    public let options: RunOptions

    public init(runbook: Runbook, options: RunOptions) { self.runbook = runbook; self.options = options }

    /// Runs on every host, at most `options.parallel` at once. `onStep` sees each step's report
    /// as soon as it is known (for live output).
    public func run(_ hosts: [HostTarget], onStep: @escaping @Sendable (String, StepReport) -> Void = { _, _ in }) async -> RunReport {
        var reports: [HostReport] = []
        await withTaskGroup(of: (Int, HostReport).self) { group in
            var next = 0
            func launch() {
                let i = next, target = hosts[i]; next += 1
                group.addTask {
                    let start = ContinuousClock.now
                    do {
                        let host = try await target.connect()
                        let runner = target.runbook.map { Runner(runbook: $0, options: options) } ?? self
                        let report = await runner.run(on: host, onStep: onStep)
                        if target.ownsConnection { await host.disconnect() }
                        return (i, report)
                    } catch {
                        return (i, HostReport(host: target.name, runId: options.runId, mode: options.mode, steps: [],
                                              failure: Failure(error, scrubber: SecretScrubber(runbook.secrets)), seconds: start.duration(to: .now).seconds, roundTrips: 0))
                    }
                }
            }
            while next < hosts.count && next < max(1, options.parallel) { launch() }
            var collected: [(Int, HostReport)] = []
            for await r in group {
                collected.append(r)
                if next < hosts.count { launch() }
            }
            reports = collected.sorted { $0.0 < $1.0 }.map(\.1)
        }
        return RunReport(runbook: runbook.name, runId: options.runId, mode: options.mode, resumed: options.resume, hosts: reports)
    }

    public func run(on host: any RemoteHost, onStep: @escaping @Sendable (String, StepReport) -> Void = { _, _ in }) async -> HostReport {
        let counting = CountingHost(host)
        let run = HostRun(runbook: runbook, options: options, host: counting, onStep: onStep)
        return await run.execute()
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// One runbook on one host. Lives inside one task.
final class HostRun {
    let runbook: Runbook
    let options: RunOptions
    let host: CountingHost
    let onStep: @Sendable (String, StepReport) -> Void
    let scrubber: SecretScrubber
    let paths: TargetPaths
    var facts = FactSet()
    var history = RunHistory([])
    var remoteJournalStarted = false
    var reports: [StepReport] = []
    /// What the report says besides the steps (a lock taken over).
    var notes: [String] = []
    /// Set once the host's lock is this run's: nothing is applied without it.
    var holdsLock = false

    init(runbook: Runbook, options: RunOptions, host: CountingHost, onStep: @escaping @Sendable (String, StepReport) -> Void) {
        self.runbook = runbook; self.options = options; self.host = host; self.onStep = onStep
        scrubber = SecretScrubber(runbook.secrets); paths = options.target
    }

    var isApply: Bool { options.mode == .apply }

    func execute() async -> HostReport {
        let start = ContinuousClock.now
        var hostError: Failure?
        var noOp = false
        do {
            try runbook.validate()
            let allQueries = runbook.steps.flatMap(\.allFacts)
            if isApply {
                if options.resume {
                    try await loadHistory()
                    // Before the lock and before anything is applied: a changed runbook is the operator's call.
                    if let changed = history.changedStep(in: runbook) { throw changed }
                }
                let tryNoOp = !options.resume && lastRunChangedNothing()
                try journalLocal(JournalRecord(kind: .run, runId: options.runId, host: host.name, runbook: runbook.name, mode: options.mode.rawValue))
                if tryNoOp, let unchanged = try await probeForNoOp(allQueries) {
                    facts = unchanged
                    noOp = true
                } else {
                    facts = try await lockAndProbe(allQueries)
                    holdsLock = true
                }
            } else {
                facts = try await probe(allQueries)
            }
            try await runSteps()
        } catch {
            hostError = Failure(error, scrubber: scrubber)
        }
        if isApply && holdsLock {
            let failed = hostError != nil || reports.contains { $0.state == .failed }
            await finish(failed: failed)
        } else if noOp && hostError == nil && !reports.contains(where: { $0.state != .ok }) {
            try? journalLocal(JournalRecord(kind: .finished, runId: options.runId, host: host.name, status: "ok"))
        }
        // Steps never reached are reported as skipped.
        for i in reports.count..<runbook.steps.count {
            let s = runbook.steps[i]
            report(StepReport(index: i, id: s.id, description: scrubber.scrub(s.description), state: .skipped, seconds: 0, diff: nil,
                              actions: [], undo: [], message: nil, irreversible: s.reversibility != .reversible))
        }
        return HostReport(host: host.name, runId: options.runId, mode: options.mode, steps: reports, failure: hostError,
                          seconds: start.duration(to: .now).seconds, roundTrips: host.roundTrips, notes: notes)
    }

    func report(_ r: StepReport) { reports.append(r); onStep(host.name, r) }

    // MARK: facts

    /// Probes `queries` in one script.
    func probe(_ queries: [FactQuery]) async throws -> FactSet {
        try await probe(queries, prefix: "", onlyIf: nil).facts ?? FactSet()
    }

    /// Runs the batched probe of `queries` after the shell `prefix` (lock scripts), in one round
    /// trip; with `onlyIf`, the batch runs only when that shell condition holds after the prefix.
    /// Returns the prefix's output, and the facts when the batch ran (SQL facts are asked from
    /// the controller then).
    func probe(_ queries: [FactQuery], prefix: String, onlyIf condition: String?) async throws -> (facts: FactSet?, prefixOutput: String) {
        let cache = options.journal.map { FactCache(journal: $0, host: host.name) }
        let batch = FactBatch(queries, cached: cache?.load() ?? [:])
        var result = FactSet()
        var prefixOutput = ""
        if !batch.queries.isEmpty || !prefix.isEmpty {
            let marker = "CCRUN-BATCH-" + batch.boundary
            let body = "echo \(marker)\n" + batch.script
            let script = prefix + "\n" + (condition.map { "if \($0); then\n\(body)\nfi" } ?? body)
            let out = try await host.run(script, stdin: nil, timeout: options.probeTimeout)
            let text = out.stdoutText
            guard let ran = text.range(of: marker + "\n") else { return (nil, text) }
            prefixOutput = String(text[..<ran.lowerBound])
            do {
                let answers = try batch.answers(String(text[ran.upperBound...]))
                result = answers.facts
                cache?.store(answers.fresh)
            } catch {
                throw HostError.protocolError(host: host.name, detail: "\(error); stderr: \(scrubber.scrub(out.stderrText.suffix(500).description))")
            }
        }
        for q in queries {
            guard case let .sql(endpoint, sql) = q.kind, !result.has(q.key) else { continue }
            do {
                let rows = try options.sql.execute(sql, on: endpoint)
                result.outputs[q.key] = FactOutput(stdout: "\(rows.count)", status: 0)
            } catch SQLError.accessDenied where q.refusedLoginMeansNoRows {
                result.outputs[q.key] = FactOutput(stdout: "0", status: 0)
            } catch {
                throw StepRefusal(scrubber.scrub("\(error)"))
            }
        }
        return (result, prefixOutput)
    }

    /// An apply expected to change nothing probes first as a dry-run does, without the lock: when no other run holds
    /// the lock and every step is already satisfied, there is nothing to change and nothing to
    /// lock, so a no-op run costs the one round trip of a dry-run. Otherwise (something to
    /// change, a step refusing, a digest to record, a lock present) it returns nil and the run
    /// takes the lock and probes again under it, so whatever it applies is planned from state no
    /// other ccrun can change meanwhile.
    func probeForNoOp(_ queries: [FactQuery]) async throws -> FactSet? {
        let lock = Shell.quote(paths.lock)
        let (found, _) = try await probe(queries, prefix: "", onlyIf: "[ ! -e \(lock) ]")
        guard let found, !found.outputs.values.contains(where: FileProbe.digestUnrecorded) else { return nil }
        for step in runbook.steps {
            guard (try? step.plan(found, context: PlanContext(backupDirectory: paths.backupDirectory(options.runId))))?.isSatisfied == true else { return nil }
        }
        return found
    }

    /// Whether this controller's last run of this runbook on the host changed nothing: then this
    /// run most likely changes nothing either, and `probeForNoOp` is tried first. After a run
    /// that changed something, or on a host never run from here (a new host), changes are
    /// likely, and taking the lock with the first probe saves the second one.
    func lastRunChangedNothing() -> Bool {
        guard let last = options.journal?.latestRun(host: host.name, before: options.runId) else { return false }
        return last.runbook == runbook.name && last.isFinished && !last.hasIntents
    }

    func lockAndProbe(_ queries: [FactQuery]) async throws -> FactSet {
        let lock = TargetLock(paths: paths, owner: options.lockOwner)
        let (result, prefixOutput) = try await probe(queries, prefix: lock.acquireScript + "\n" + lock.ownedCheckScript, onlyIf: "[ \"$ccrun_locked\" = 1 ]")
        let parsed = TargetLock.parse(prefixOutput)
        if parsed.acquired, let result { return result }
        guard let info = parsed.info else {
            throw HostError.protocolError(host: host.name, detail: "cannot create the lock \(paths.lock) (is \(paths.stateDirectory) writable? is sudo needed?)")
        }
        notes.append(try await lock.takeOver(info, on: host, timeout: options.probeTimeout))
        return try await probe(queries)
    }

    // MARK: journal

    func loadHistory() async throws {
        let local = options.journal?.history(host: host.name, runId: options.runId).records ?? []
        var remote: [JournalRecord] = []
        if let data = try? await host.readFile(paths.journal(options.runId)) { remote = JournalRecord.parse(data) }
        history = RunHistory.merged(local, remote)
        remoteJournalStarted = !remote.isEmpty
    }

    /// Only intents are synced: they must be on disk before their change (write-ahead); the
    /// rest ride on the next intent's fsync or cost only a re-check if lost (see `LocalJournal`).
    func journalLocal(_ r: JournalRecord) throws { try options.journal?.append(r, sync: r.kind == .intent) }

    func journalRemote(_ records: [JournalRecord]) async throws {
        var data = Data()
        for r in records { data.append(try r.jsonLine()) }
        let out = try await host.run(paths.appendScript(runId: options.runId), stdin: data, timeout: options.probeTimeout)
        guard out.exitStatus == 0 else {
            throw HostError.commandFailed(host: host.name, what: "writing the journal \(paths.journal(options.runId))", status: out.exitStatus, stderr: out.stderrText)
        }
        remoteJournalStarted = true
    }

    func record(_ r: JournalRecord) async throws {
        try journalLocal(r)
        try await journalRemote([r])
    }

    func finish(failed: Bool) async {
        let lock = TargetLock(paths: paths, owner: options.lockOwner)
        var script = lock.releaseScript
        var stdin: Data?
        if !failed {
            let fin = JournalRecord(kind: .finished, runId: options.runId, host: host.name, status: "ok")
            try? journalLocal(fin)
            if remoteJournalStarted, let line = try? fin.jsonLine() {
                script = paths.appendScript(runId: options.runId) + "\n" + script
                stdin = line
            }
        }
        _ = try? await host.run(script, stdin: stdin, timeout: options.probeTimeout)
    }

    // MARK: steps

    func runSteps() async throws {
        var pending: [FactScope] = []
        let context = PlanContext(earlierChangePending: false, backupDirectory: paths.backupDirectory(options.runId))
        for (i, step) in runbook.steps.enumerated() {
            if isApply { options.observer.reached(.beforeStep(i)) }
            let start = ContinuousClock.now
            var rep = StepReport(index: i, id: step.id, description: scrubber.scrub(step.description), state: .ok, seconds: 0,
                                 diff: nil, actions: [], undo: [], message: nil, irreversible: step.reversibility != .reversible)
            do {
                let needed = step.allFacts.filter { !facts.has($0.key) }
                if !needed.isEmpty { facts.merge(try await probe(needed)) }
                var ctx = context
                ctx.earlierChangePending = !isApply && pending.contains { $0.overlaps(step.facts.map(\.key)) }
                let plan = try step.plan(facts, context: ctx)
                switch plan {
                case .satisfied:
                    if isApply, history.firstIntent(for: step.id) != nil, !history.doneSteps.contains(step.id) {
                        // Applied before an interruption, journal record lost: record it now.
                        try await record(JournalRecord(kind: .done, runId: options.runId, host: host.name, stepId: step.id, index: i, status: "found applied on resume"))
                        rep.message = "found already applied (resumed run)"
                    }
                case let .dependsOnEarlierChange(why):
                    rep.state = isApply ? .failed : .depends
                    rep.message = scrubber.scrub(why)
                    if isApply { rep.failure = Failure(.refused, rep.message ?? "") }
                    if !isApply { pending.append(step.affects) }
                case let .change(change):
                    rep.diff = change.diff.map(scrubber.scrub)
                    rep.actions = change.actions.map { scrubber.scrub($0.summary) }
                    let undo = history.firstIntent(for: step.id)?.undo ?? change.undo
                    rep.undo = undo.map(\.summary)
                    if isApply {
                        try await apply(step, index: i, change: change, undo: undo)
                        rep.state = .changed
                        try await verify(step)
                    } else {
                        rep.state = .wouldChange
                        pending.append(change.affects ?? step.affects)
                    }
                }
            } catch {
                let failure = Failure(error, scrubber: scrubber)
                rep.state = .failed
                rep.message = failure.message
                rep.failure = failure
            }
            rep.seconds = start.duration(to: .now).seconds
            report(rep)
            if rep.state == .failed && isApply { return }
        }
    }

    func apply(_ step: any Step, index: Int, change: Change, undo: [UndoAction]) async throws {
        guard holdsLock else { throw StepRefusal("engine error: \(step.id) would be applied without the host's lock; nothing was changed") }
        let intent = JournalRecord(kind: .intent, runId: options.runId, host: host.name, stepId: step.id, index: index,
                                   fingerprint: step.fingerprint, description: scrubber.scrub(step.description), undo: undo)
        let done = JournalRecord(kind: .done, runId: options.runId, host: host.name, stepId: step.id, index: index, status: "changed")
        // Write-ahead: the local intent is on disk before anything reaches the host; the remote
        // intent and done records ride in the step's first and last scripts (no extra round trips).
        try journalLocal(intent)
        let executor = ActionExecutor(host: host, sql: options.sql, scrubber: scrubber, timeout: options.actionTimeout, packer: options.packer)
        let intentScript = paths.appendInlineScript(runId: options.runId, line: try intent.jsonLine())
        let doneScript = paths.appendInlineScript(runId: options.runId, line: try done.jsonLine())
        let actions = change.actions
        for (k, action) in actions.enumerated() {
            let last = k == actions.count - 1
            try await executor.execute(action, before: k == 0 ? intentScript : nil, after: last ? doneScript : nil)
            remoteJournalStarted = true
        }
        if actions.isEmpty { try await journalRemote([intent, done]) }
        options.observer.reached(.afterChange(index))
        try journalLocal(done)
        invalidate(change.affects ?? step.affects)
    }

    func invalidate(_ scope: FactScope) {
        facts.outputs = facts.outputs.filter { !scope.covers($0.key) }
    }

    /// Terraform's "empty plan after apply", for free: re-probe and re-plan; a step that still
    /// wants to change did not do what it said.
    func verify(_ step: any Step) async throws {
        guard !step.facts.isEmpty else { return }   // nothing to observe (unguarded command, SQL without `unless`)
        let needed = step.allFacts.filter { !facts.has($0.key) }
        if !needed.isEmpty { facts.merge(try await probe(needed)) }
        let again = try step.plan(facts, context: PlanContext(backupDirectory: paths.backupDirectory(options.runId)))
        if !again.isSatisfied {
            throw VerifyFailure("applied, but the host still does not match: \(again.change?.actions.map(\.summary).joined(separator: "; ") ?? "\(again)")")
        }
    }
}

/// Executes plan actions on a host: the single path both apply and rollback use.
struct ActionExecutor {
    let host: any RemoteHost
    let sql: any SQLExecutor
    let scrubber: SecretScrubber
    let timeout: Duration
    let packer: UploadPacker

    func execute(_ action: Action) async throws { try await execute(action, before: nil, after: nil) }

    /// Runs an action; `before` and `after` are script fragments run in the same round trip
    /// (journal records): `before` ahead of any change, `after` only when the action succeeded.
    func execute(_ action: Action, before: String?, after: String?) async throws {
        func wrap(_ script: String) -> String {
            var s = ""
            if let before { s += before + "\n" }
            s += "(\n\(script)\n) || exit $?\n"
            if let after { s += after + "\n" }
            return s
        }
        switch action {
        case let .shell(a):
            let stdin = a.stdinSecrets.isEmpty ? nil : Data(a.stdinSecrets.map { $0.reveal() + "\n" }.joined().utf8)
            try await run(before == nil && after == nil ? a.script : wrap(a.script), stdin: stdin, what: a.summary)
        case let .upload(u):
            do {
                try await host.upload(try await u.wirePayload(packer: packer), to: u.wirePath, mode: UInt16(u.mode, radix: 8) ?? 0o600)
            } catch {
                // A failed upload (full disk, lost link) must not leave a partial temporary file;
                // the target file itself was never touched. Best effort: the link may be gone.
                // The same command reports the free space, so a full disk is named as such (SFTP v3
                // reports ENOSPC only as a generic failure).
                let dir = Shell.quote(u.path.deletingLastPathComponent)
                let out = try? await host.run("rm -f -- \(Shell.quote(u.temporaryPath)) \(Shell.quote(u.wirePath)); df -Pk -- \(dir) 2>/dev/null | awk 'NR==2 {print $4}'",
                                              stdin: nil, timeout: .seconds(10))
                let size = u.payload().count
                if let kb = out.flatMap({ Int($0.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) }), kb * 1024 < size {
                    throw HostError.protocolError(host: host.name, detail: "not enough space to write \(u.path): \(kb) KB free in \(u.path.deletingLastPathComponent), \(size / 1024) KB needed; the old file is untouched and the partial copy was removed. Free space, then `ccrun resume`. (\(scrubber.scrub("\(error)")))")
                }
                throw error
            }
            try await run(before == nil && after == nil ? u.finishScript : wrap(u.finishScript), stdin: nil, what: "installing \(u.path)")
        case let .sql(s):
            if let before { try await run(before, stdin: nil, what: "writing the journal") }
            _ = try sql.execute(s.script, on: s.endpoint)
            if let after { try await run(after, stdin: nil, what: "writing the journal") }
        }
    }

    func run(_ script: String, stdin: Data?, what: String) async throws {
        let out = try await host.run(script, stdin: stdin, timeout: timeout)
        guard out.exitStatus == 0 else {
            throw HostError.commandFailed(host: host.name, what: scrubber.scrub(what), status: out.exitStatus, stderr: scrubber.scrub(out.stderrText))
        }
    }
}
