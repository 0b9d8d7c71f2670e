import LeanFoundation

/// Takes one server out of a load balancer's rotation and puts it back: HAProxy's runtime API on
/// the lab and on premises. The rollout calls it for each host it applies, never two calls for
/// one server at once.
public protocol RolloutBalancer: Sendable {
    /// Where servers are drained, for the report (e.g. "lb, HAProxy backend repo-nodes").
    var summary: String { get }
    /// Stops new connections to `server` (and, where the backend asks for it, waits for its open
    /// sessions to end). A dry-run checks that the balancer knows the server and says what it would do.
    func drain(_ server: String, dryRun: Bool) async throws -> String
    /// Puts `server` back and returns once the balancer itself reports it up, so that the next
    /// host's drain never leaves the backend without a server.
    func undrain(_ server: String, dryRun: Bool) async throws -> String
}

/// What the rollout does to each host besides the load balancer: apply the runbook (a dry-run
/// under `--dry-run`, the same path) and wait until the host is healthy again.
public struct RolloutWork: Sendable {
    public var apply: @Sendable (_ host: String) async -> HostReport
    /// Waits until the host's service answers; throws when it does not within its bound. In a
    /// dry-run it only says what it would wait for (the host may still have changes pending).
    public var gate: @Sendable (_ host: String, _ dryRun: Bool) async throws -> String
    public init(apply: @escaping @Sendable (String) async -> HostReport, gate: @escaping @Sendable (String, Bool) async throws -> String) {
        self.apply = apply; self.gate = gate
    }
}

/// Where one host of a rollout stands.
public enum RolloutNodeState: String, Codable, Sendable {
    case done
    case failed
    /// The rollout stopped before this host: nothing was done to it.
    case notStarted = "not started"
    /// Finished by the rollout being resumed: not applied again.
    case doneEarlier = "done earlier"
    /// Dry-run: the host's runbook has changes pending.
    case wouldChange = "would change"
    /// Dry-run: nothing to change on the host.
    case ok
}

/// One phase of one host (drain, apply, health, undrain) and how long it took.
public struct RolloutPhase: Codable, Sendable, Equatable {
    public var name: String
    public var seconds: Double
    public var detail: String
}

public struct RolloutNodeReport: Codable, Sendable {
    public var host: String
    public var batch: Int
    public var state: RolloutNodeState
    public var seconds: Double
    public var phases: [RolloutPhase]
    /// The runbook's report on this host (absent when it was not applied).
    public var run: HostReport?
    public var message: String?
    /// Set when `state` is `failed`: why, as a kind a script can switch on (a health gate that
    /// does not pass after the apply is `verifyFailed`).
    public var failure: Failure? = nil
}

public struct RolloutBatchReport: Codable, Sendable {
    public var number: Int
    public var seconds: Double
    public var nodes: [RolloutNodeReport]
}

/// A rolling run's whole report (`--json`: schema ccrun.rollout/1).
public struct RolloutReport: Codable, Sendable, JSONDocument {
    public static let schemaVersion = "ccrun.rollout/1"
    public var schema = RolloutReport.schemaVersion
    public var runbook: String
    public var runId: String
    public var mode: RunOptions.Mode
    public var serial: Int
    public var maxFail: String
    /// Where servers were drained; nil when the inventory has no load balancer.
    public var balancer: String?
    public var batches: [RolloutBatchReport]
    public var seconds: Double
    /// Why the rollout stopped early, if it did.
    public var stopped: String?

    public var nodes: [RolloutNodeReport] { batches.flatMap(\.nodes) }
    public func count(_ s: RolloutNodeState) -> Int { nodes.filter { $0.state == s }.count }

    /// 1 when a host failed, 2 when a dry-run found changes pending, else 0 (as a run's report).
    public var exitCode: Int32 {
        if count(.failed) > 0 { return 1 }
        if mode == .dryRun && count(.wouldChange) > 0 { return 2 }
        return 0
    }
}

/// What a rollout tells as it goes, for live output.
public enum RolloutEvent: Sendable {
    case batch(number: Int, of: Int, hosts: [String])
    case phase(host: String, RolloutPhase)
    case node(RolloutNodeReport)
}

/// A rolling run: batch by batch, each host of a batch (in parallel) drained at the load
/// balancer, applied, gated on its health and put back; a failure beyond the budget stops the
/// rollout before the next batch, and the hosts not reached are left untouched.
///
/// A failed host is left drained: its service did not come back healthy, and the balancer's own
/// health check could otherwise send it traffic between two of its checks. The resumed rollout
/// drains it again (a no-op), applies and puts it back.
public struct Rollout: Sendable {
    public var runbook: String
    public var runId: String
    public var plan: RolloutPlan
    public var budget: FailureBudget
    public var dryRun: Bool
    public var balancer: (any RolloutBalancer)?
    /// Hosts a resumed rollout finished before: reported, not applied again.
    public var doneEarlier: Set<String>
    public var work: RolloutWork

    public init(runbook: String, runId: String, plan: RolloutPlan, budget: FailureBudget = FailureBudget(.count(0)), dryRun: Bool,
                balancer: (any RolloutBalancer)?, doneEarlier: Set<String> = [], work: RolloutWork) {
        self.runbook = runbook; self.runId = runId; self.plan = plan; self.budget = budget; self.dryRun = dryRun
        self.balancer = balancer; self.doneEarlier = doneEarlier; self.work = work
    }

    public func run(onEvent: @escaping @Sendable (RolloutEvent) -> Void = { _ in }) async -> RolloutReport {
        let start = ContinuousClock.now
        var batches: [RolloutBatchReport] = []
        var failed = 0
        var stopped: String?
        for (i, hosts) in plan.batches.enumerated() {
            let number = i + 1
            if let why = stopped {
                batches.append(RolloutBatchReport(number: number, seconds: 0, nodes: hosts.map {
                    RolloutNodeReport(host: $0, batch: number, state: .notStarted, seconds: 0, phases: [], run: nil, message: why)
                }))
                continue
            }
            onEvent(.batch(number: number, of: plan.batches.count, hosts: hosts))
            let batchStart = ContinuousClock.now
            let nodes = await withTaskGroup(of: (Int, RolloutNodeReport).self) { group in
                for (j, host) in hosts.enumerated() {
                    group.addTask { (j, await node(host, batch: number, onEvent: onEvent)) }
                }
                var out: [(Int, RolloutNodeReport)] = []
                for await r in group { out.append(r) }
                return out.sorted { $0.0 < $1.0 }.map(\.1)
            }
            batches.append(RolloutBatchReport(number: number, seconds: batchStart.duration(to: .now).seconds, nodes: nodes))
            failed += nodes.filter { $0.state == .failed }.count
            // Stopping matters only when batches remain: after the last one there is nothing to stop.
            if number < plan.batches.count && budget.exceeded(failed: failed, total: plan.hosts.count) {
                stopped = "the rollout stopped after batch \(number): \(failed) host(s) failed, --max-fail \(budget) allows \(budget.allowed(of: plan.hosts.count))"
            }
        }
        return RolloutReport(runbook: runbook, runId: runId, mode: dryRun ? .dryRun : .apply,
                             serial: plan.serial, maxFail: budget.description, balancer: balancer?.summary, batches: batches,
                             seconds: start.duration(to: .now).seconds, stopped: stopped)
    }

    /// One host: drain, apply, health, undrain; the first phase that fails ends it.
    func node(_ host: String, batch: Int, onEvent: @escaping @Sendable (RolloutEvent) -> Void) async -> RolloutNodeReport {
        if doneEarlier.contains(host) {
            let r = RolloutNodeReport(host: host, batch: batch, state: .doneEarlier, seconds: 0, phases: [], run: nil,
                                      message: "finished by run \(runId) before it was resumed: not applied again")
            onEvent(.node(r))
            return r
        }
        let start = ContinuousClock.now
        var phases: [RolloutPhase] = []
        var run: HostReport?
        func finish(_ state: RolloutNodeState, _ message: String? = nil, failure: FailureKind? = nil) -> RolloutNodeReport {
            let r = RolloutNodeReport(host: host, batch: batch, state: state, seconds: start.duration(to: .now).seconds, phases: phases, run: run,
                                      message: message, failure: failure.map { Failure($0, message ?? "") })
            onEvent(.node(r))
            return r
        }
        /// Runs a phase, timed and told; returns its error, if any.
        func phase(_ name: String, _ body: () async throws -> String) async -> Failure? {
            let t = ContinuousClock.now
            do {
                let detail = try await body()
                let p = RolloutPhase(name: name, seconds: t.duration(to: .now).seconds, detail: detail)
                phases.append(p); onEvent(.phase(host: host, p))
                return nil
            } catch {
                let p = RolloutPhase(name: name, seconds: t.duration(to: .now).seconds, detail: "failed: \(error)")
                phases.append(p); onEvent(.phase(host: host, p))
                return Failure(error, scrubber: SecretScrubber([]))
            }
        }
        let left = balancer.map { "; left drained at \($0.summary)" } ?? ""

        if let e = await phase("drain", {
            guard let balancer else { return "no load balancer in the inventory (no host with role lb): nothing drained" }
            return try await balancer.drain(host, dryRun: dryRun)
        }) { return finish(.failed, "drain failed, nothing applied: \(e)", failure: e.kind) }

        let applyStart = ContinuousClock.now
        let report = await work.apply(host)
        run = report
        let applied = RolloutPhase(name: "apply", seconds: applyStart.duration(to: .now).seconds, detail: Self.summary(of: report, dryRun: dryRun))
        phases.append(applied); onEvent(.phase(host: host, applied))
        if report.failed {
            let first = report.firstFailure
            return finish(.failed, "the runbook failed\(left): \(first?.message ?? "a step failed")", failure: first?.kind ?? .internal)
        }

        if let e = await phase("health", { try await work.gate(host, dryRun) }) {
            return finish(.failed, "not healthy after the apply\(left): \(e)", failure: [.linkLost, .unreachable].contains(e.kind) ? e.kind : .verifyFailed)
        }

        if let e = await phase("undrain", {
            guard let balancer else { return "no load balancer: nothing to put back" }
            return try await balancer.undrain(host, dryRun: dryRun)
        }) { return finish(.failed, "could not put it back\(left): \(e)", failure: e.kind) }

        if dryRun { return finish(report.pending ? .wouldChange : .ok) }
        return finish(.done)
    }

    static func summary(of r: HostReport, dryRun: Bool) -> String {
        if let e = r.error { return "failed: \(e)" }
        if r.count(.failed) > 0 { return "failed at: \(r.steps.first { $0.state == .failed }?.description ?? "?")" }
        if dryRun { return r.pending ? "\(r.count(.wouldChange)) step(s) would change" : "nothing to change" }
        return r.count(.changed) == 0 ? "nothing changed" : "\(r.count(.changed)) step(s) changed"
    }
}

/// The controller's record of a rollout in progress, so `--resume` continues it: the hosts
/// finished are not applied again, the failed one is resumed from its journal, the rest start.
public struct RolloutRecord: Codable, Sendable, Equatable {
    public var runbook: String
    public var runId: String
    public var hosts: [String]
    public var serial: Int
    public var maxFail: String
    /// Hosts the rollout finished (drained, applied, healthy, back in the balancer).
    public var done: [String]

    public init(runbook: String, runId: String, hosts: [String], serial: Int, maxFail: String, done: [String] = []) {
        self.runbook = runbook; self.runId = runId; self.hosts = hosts; self.serial = serial; self.maxFail = maxFail; self.done = done
    }

    /// `<state dir>/rollouts/<runbook>.json`: one rollout per runbook at a time, as the guide runs
    /// one fleet per role.
    public static func url(runbook: String, journal: LocalJournal) -> URL {
        journal.directory.appendingPathComponent("rollouts").appendingPathComponent("\(runbook).json")
    }

    public static func load(runbook: String, journal: LocalJournal) throws -> RolloutRecord? {
        let url = url(runbook: runbook, journal: journal)
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        return try JSONDecoder().decode(RolloutRecord.self, from: Data(contentsOf: url))
    }

    public func save(journal: LocalJournal) throws {
        let url = Self.url(runbook: runbook, journal: journal)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try e.encode(self).write(to: url, options: .atomic)
    }
}

/// Lines for a terminal: batches, phases with their times, each host's outcome, a summary.
public struct RolloutPrinter: Sendable {
    public init() {}

    public func line(_ event: RolloutEvent) -> String {
        switch event {
        case let .batch(n, of, hosts): "batch \(n)/\(of): \(hosts.joined(separator: ", "))"
        case let .phase(host, p): "\(host): \(p.name.padding(toLength: 8, withPad: " ", startingAt: 0)) \(p.detail)  " + Self.time(p.seconds)
        case let .node(r):
            "\(host(r)): \(r.state.rawValue)" + (r.state == .doneEarlier || r.state == .notStarted ? "" : " in " + Self.time(r.seconds))
                + (r.phases.isEmpty ? "" : " (" + r.phases.map { "\($0.name) " + Self.time($0.seconds) }.joined(separator: ", ") + ")")
                + (r.message.map { "\n\(host(r)): \($0)" } ?? "")
        }
    }

    func host(_ r: RolloutNodeReport) -> String { r.host }

    /// The closing lines: each batch with each host's state and time, then the totals.
    public func summary(_ r: RolloutReport) -> [String] {
        var out: [String] = []
        for b in r.batches {
            out.append("batch \(b.number): " + b.nodes.map { n in
                "\(n.host) \(n.state.rawValue)" + (n.state == .notStarted || n.state == .doneEarlier ? "" : " " + Self.time(n.seconds))
            }.joined(separator: ", "))
        }
        if let s = r.stopped { out.append(s) }
        var counts: [String] = []
        for s in [RolloutNodeState.done, .doneEarlier, .ok, .wouldChange, .failed, .notStarted] where r.count(s) > 0 { counts.append("\(r.count(s)) \(s.rawValue)") }
        out.append("rollout of \(r.runbook) (--serial \(r.serial), --max-fail \(r.maxFail)): \(counts.joined(separator: ", ")) in \(Self.time(r.seconds)) (run \(r.runId))"
                   + (r.balancer == nil ? "; no load balancer: nothing drained" : ""))
        return out
    }

    static func time(_ s: Double) -> String { s < 10 ? String(format: "%.2f s", s) : String(format: "%.1f s", s) }
}
