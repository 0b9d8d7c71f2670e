import ArgumentParser
import LeanFoundation
import Runbooks
import StepKit

/// `--serial N [--max-fail N]` on the guide's node commands (repo-node, web-node): a rolling run,
/// as Ansible's `serial` and `max_fail_percentage`.
struct RollingOptions: ParsableArguments {
    @Option(name: .long, help: "Roll out in batches of N hosts: each drained at the inventory's load balancer (role lb), applied, gated on its health and put back (HAProxy reports it UP) before the next batch.")
    var serial: Int?

    @Option(name: .long, help: "With --serial: hosts that may fail before the rollout stops, a number or a percentage of the hosts (e.g. 25%). Default 0: the first failure stops it; --resume continues.")
    var maxFail: String?

    @Option(name: .long, help: "With --serial, web nodes: seconds to wait for a drained server's open sessions to end before applying.")
    var drainTimeout: Int = 30

    @Option(name: .long, help: "With --serial: seconds a host may take to be healthy after its apply.")
    var healthTimeout: Int = 60

    /// A rolling run under `--serial`, else the guide's plain run of `runbook` on `hosts`.
    func run(_ runbook: String, hosts: [String], hostOptions: HostOptions, options: DeployOptions, output: OutputOptions) async throws -> Int32 {
        if serial != nil {
            return try await runRollout(runbook, hosts: hosts, hostOptions: hostOptions, options: options, rolling: self, output: output)
        }
        return try await runGuide(runbook, hosts: hosts, hostOptions: hostOptions, options: options, output: output)
    }

    func validate() throws {
        if serial == nil && maxFail != nil { throw ValidationError("--max-fail needs --serial N") }
        if let serial, serial < 1 { throw ValidationError("--serial \(serial): a batch needs at least 1 host") }
        if let maxFail { _ = try FailureBudget(parsing: maxFail) }
        if drainTimeout < 0 || healthTimeout < 1 { throw ValidationError("--drain-timeout must be >= 0 and --health-timeout >= 1") }
    }
}

/// What a rolling run of one guide runbook needs to know about its role.
struct RolloutRole {
    var backend: String
    var health: ServiceCheck
    var healthSummary: String
    /// HTTP: wait for the drained server's sessions to end before applying.
    var waitsForIdle: Bool

    static func of(_ runbook: String) -> RolloutRole? {
        switch runbook {
        case RepoNodeRunbook.name:
            RolloutRole(backend: LoadBalancerRunbook.tunerBackend, health: RepoNodeRunbook.health,
                        healthSummary: "answers tuners on \(RepoNodeRunbook.tunerPort) and beats its heartbeat into the database (ccr health serve)", waitsForIdle: false)
        case WebNodeRunbook.name:
            RolloutRole(backend: LoadBalancerRunbook.webBackend, health: WebNodeRunbook.health,
                        healthSummary: "GET / answers 200 through Apache", waitsForIdle: true)
        default: nil
        }
    }
}

enum RolloutGateError: Error, CustomStringConvertible {
    case unhealthy(host: String, wanted: String, seconds: Int, detail: String)
    var description: String {
        switch self {
        case let .unhealthy(host, wanted, seconds, detail):
            "\(host) is not healthy \(seconds) s after its apply: it should have \(wanted)" + (detail.isEmpty ? "" : " (\(detail))")
        }
    }
}

/// The rollout's record, updated as hosts finish (they finish in parallel within a batch).
final class RolloutRecordKeeper: @unchecked Sendable {
    private let lock = ThreadLock()
    private var record: RolloutRecord
    private let journal: LocalJournal
    private(set) var saveError: String?
    init(_ record: RolloutRecord, journal: LocalJournal) { self.record = record; self.journal = journal }

    func save() throws { try lock.withLock { try record.save(journal: journal) } }

    func finished(_ host: String) {
        lock.withLock {
            guard !record.done.contains(host) else { return }
            record.done.append(host)
            do { try record.save(journal: journal) } catch { saveError = "could not record the rollout in \(RolloutRecord.url(runbook: record.runbook, journal: journal).path): \(error)" }
        }
    }
}

/// Runs guide runbook `name` on `hosts` as a rollout (`--serial`): see `Rollout`.
func runRollout(_ name: String, hosts: [String], hostOptions: HostOptions, options deploy: DeployOptions, rolling: RollingOptions,
                output: OutputOptions) async throws -> Int32 {
    guard let serial = rolling.serial else { throw ValidationError("--serial N is required for a rollout") }
    guard let role = RolloutRole.of(name) else { throw ValidationError("--serial applies to repo-node and web-node") }
    let journal = hostOptions.journal
    let budget = try FailureBudget(parsing: rolling.maxFail ?? "0")
    let plan = try RolloutPlan(hosts: hosts, serial: serial)
    let json = output.json, printer = output.printer
    let tell: @Sendable (String) -> Void = { line in if !json { say(line) } }

    // The runbooks per host, as the command without --serial builds them (the rollout keeps
    // its own run id and resumes each host itself).
    var fresh = deploy
    fresh.resume = false
    let guide = try GuideRun(name, hosts: hosts, hostOptions: hostOptions, options: fresh)
    let inventory = try hostOptions.loadInventory()

    var runId = guide.options.runId
    var doneEarlier: [String] = []
    if deploy.resume && !deploy.dryRun {
        guard let last = try RolloutRecord.load(runbook: name, journal: journal) else {
            throw RolloutError.nothingToResume(runbook: name, record: RolloutRecord.url(runbook: name, journal: journal).path)
        }
        guard Set(last.hosts) == Set(hosts) else { throw RolloutError.resumeHostsDiffer(runbook: name, recorded: last.hosts, given: hosts) }
        runId = last.runId
        doneEarlier = last.done
        tell("resuming rollout \(runId) of \(name)" + (doneEarlier.isEmpty ? "" : ": \(doneEarlier.joined(separator: ", ")) done, not applied again"))
    }

    var balancer: HAProxyBalancer?
    if let lb = inventory?.hosts(withRole: LoadBalancerRunbook.name).first {
        let servers = Set(inventory?.hosts(withRole: name) ?? [])
        if let batch = plan.batchDrainingEverything(of: servers) { throw RolloutError.drainsEverything(batch: batch, backend: role.backend) }
        guard let target = try hostOptions.hostTargets([lb], inventory: inventory).first else { throw ValidationError("no load balancer host \(lb)") }
        balancer = HAProxyBalancer(lbName: lb, backend: role.backend, idleTimeout: role.waitsForIdle ? .seconds(rolling.drainTimeout) : nil, connect: target.connect)
    }

    let keeper = RolloutRecordKeeper(RolloutRecord(runbook: name, runId: runId, hosts: hosts, serial: serial, maxFail: budget.description, done: doneEarlier),
                                     journal: journal)
    if !deploy.dryRun { try keeper.save() }

    let targets = Dictionary(uniqueKeysWithValues: guide.targets.map { ($0.name, $0) })
    let id = runId
    // One set of options for every host: they share the run id and the upload packer (ccr is packed once).
    let base = hostOptions.runOptions(mode: deploy.dryRun ? .dryRun : .apply, runId: id)
    let healthTimeout = rolling.healthTimeout
    let work = RolloutWork(apply: { host in
        let target = targets[host]!
        var options = base
        // The host that failed last time continues its run from the journal; the others start it.
        let history = journal.history(host: host, runId: id)
        options.resume = deploy.resume && !history.records.isEmpty && !history.isFinished
        let report = await runRunbook(target.runbook!, hosts: [target], options: options, printer: printer, progress: tell)
        return report.hosts[0]
    }, gate: { host, dryRun in
        if dryRun { return "would wait up to \(healthTimeout) s until it \(role.healthSummary)" }
        let remote = try await targets[host]!.connect()
        let clock = ContinuousClock(), start = clock.now
        var detail = ""
        while true {
            let r: ScriptResult
            do { r = try await remote.run(role.health.script, stdin: nil, timeout: .seconds(30)) } catch { await remote.disconnect(); throw error }
            if r.exitStatus == 0 {
                await remote.disconnect()
                return "it \(role.healthSummary)"
            }
            detail = r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").suffix(2).joined(separator: "; ")
            if clock.now >= start + .seconds(healthTimeout) { break }
            try? await Task.sleep(for: .milliseconds(500))
        }
        await remote.disconnect()
        throw RolloutGateError.unhealthy(host: host, wanted: role.healthSummary, seconds: healthTimeout, detail: detail)
    })

    let rollout = Rollout(runbook: name, runId: id, plan: plan, budget: budget, dryRun: deploy.dryRun, balancer: balancer,
                          doneEarlier: Set(doneEarlier), work: work)
    let lines = RolloutPrinter()
    if balancer == nil { tell("no host with role lb in the inventory: --serial batches the hosts but drains nothing") }
    let report = await rollout.run { event in
        if case let .node(r) = event, r.state == .done, !deploy.dryRun { keeper.finished(r.host) }
        tell(lines.line(event))
    }
    if json {
        say(try report.json())
    } else {
        for l in lines.summary(report) { say(l) }
        if report.count(RolloutNodeState.failed) > 0 { say("fix the cause, then run the same command with --resume: finished hosts are not applied again") }
    }
    if let e = keeper.saveError { FileHandle.standardError.write(Data("\(e)\n".utf8)) }
    return report.exitCode
}
