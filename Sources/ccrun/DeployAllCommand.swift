import ArgumentParser
import CloudAPI
import LeanFoundation
import Runbooks
import StepKit

/// `ccrun deploy --inventory FILE`: the whole guide in one command, AWS and hosts chained.
///
/// The order is forced by the guide: the host runbooks need the instances and the RDS
/// endpoint that only exist after the aws phase, and the images must be taken of configured
/// hosts, before the load balancers and autoscaling groups that launch copies of them.
struct DeployAllCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "The whole guide: AWS resources, the host runbooks on the new instances, then images, load balancers and autoscaling.",
        discussion: """
        Phases, in order:
          aws         groups, RDS (waited for), instances, volume at /dev/xvdf
          database    the database runbook against the RDS endpoint
          nfs-master  the NFS server runbook on cc-nfs-master
          repo-node   the repository server runbook on cc-repo-node
          web-node    the web server runbook on cc-web-node
          images      images, termination protection, load balancers,
                      launch configurations, autoscaling groups

        Each phase is journaled in the state directory; --resume continues the last interrupted deploy and skips the phases it finished. --dry-run plans every phase it can and says "depends" for phases whose instances or database do not exist yet. Hosts are reached at the instances' private addresses with the SSH settings of the inventory hosts named by aws.instances.<role>.host; aws.rds.host names a host standing in for RDS (docs/aws.md).

        --json prints one JSON document on stdout (schema ccrun.deploy/2: each phase's outcome with the aws report or the runbook report) and the progress lines on stderr.

        Exit status: 0 deployed / nothing to change, 2 changes pending (--dry-run), 1 error.
        """
    )

    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var options: DeployOptions

    @Flag(name: .long, help: "Print AWS waits and retries to stderr.")
    var verbose = false

    @Flag(name: .long, help: "Print one JSON report (schema ccrun.deploy/2) on stdout; progress goes to stderr.")
    var json = false

    func run() async throws {
        guard let inventory = hostOptions.inventory else { throw ValidationError("--inventory FILE is required") }
        let code: Int32
        do {
            code = try await DeployPipeline(inventoryPath: inventory, hostOptions: hostOptions, options: options, verbose: verbose, json: json).run()
        } catch let e as ExitCode {
            throw e
        } catch {
            FileHandle.standardError.write(Data("deploy: error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        throw ExitCode(code)
    }
}

/// The six phases of `ccrun deploy`, in the order they run.
enum DeployPhase: String, CaseIterable, Sendable {
    case aws, database, nfsMaster = "nfs-master", repoNode = "repo-node", webNode = "web-node", images

    /// The instance role a host phase configures (nil for aws, database, images).
    var role: String? {
        switch self {
        case .nfsMaster, .repoNode, .webNode: rawValue
        default: nil
        }
    }
}

/// How one phase ended, for the closing summary and the exit code.
enum PhaseOutcome: Sendable {
    case done, nothingToChange, pending, depends(String), failed(Failure), skipped(String)

    var word: String {
        switch self {
        case .done: "done"
        case .nothingToChange: "ok"
        case .pending: "would change"
        case .depends: "depends"
        case .failed: "failed"
        case .skipped: "skipped"
        }
    }

    var detail: String? {
        switch self {
        case let .depends(s), let .skipped(s): s
        case let .failed(f): f.message
        default: nil
        }
    }

    var failure: Failure? { if case let .failed(f) = self { f } else { nil } }

    /// The stable name in `deploy --json` (the words above are for people).
    var code: String {
        switch self {
        case .done: "done"
        case .nothingToChange: "ok"
        case .pending: "pending"
        case .depends: "depends"
        case .failed: "failed"
        case .skipped: "skipped"
        }
    }
}

/// `ccrun deploy --json`: one document on stdout. Schema `ccrun.deploy/2`: bump it when a field
/// changes meaning or goes; new optional fields keep the version. Version 2: each phase's report
/// is a `ccrun.run/2` document, the aws phases' too (they had `ccrun.aws/1`).
struct DeployReport: JSONDocument {
    static let schemaVersion = "ccrun.deploy/2"
    var schema = Self.schemaVersion
    var runId: String
    var mode: RunMode
    var resumed: Bool
    var exitCode: Int32
    var seconds: Double
    var phases: [Phase]

    struct Phase: Encodable {
        var phase: String
        /// done, ok (nothing to change), pending, depends, failed, skipped.
        var outcome: String
        var detail: String?
        /// Set when `outcome` is `failed`: why, as a kind a script can switch on.
        var failure: Failure?
        /// The aws and images phases: `ccrun aws`'s own report (secrets scrubbed).
        var aws: RunReport?
        /// The host phases: the runbook's report (secrets masked).
        var runbook: RunReport?
    }
}

/// What one phase produced: its outcome and, for `--json`, the report behind it.
struct PhaseResult {
    var outcome: PhaseOutcome
    var aws: RunReport? = nil
    var runbook: RunReport? = nil
}

/// The deploy run's own journal, beside the aws and host journals: one `intent` when a phase
/// starts and one `done` (status ok or failed) when it ends, so `--resume` knows which phases
/// finished (skipped) and which one was cut (continued with its own resume).
struct DeployJournal {
    static let host = "deploy"
    static let runbook = "deploy"
    let journal: LocalJournal

    func lastInterrupted() -> RunHistory? {
        journal.runs(host: Self.host).first { $0.runbook == Self.runbook && !$0.isFinished }
    }

    func finishedPhases(_ run: RunHistory) -> Set<String> {
        Set(run.records.filter { $0.kind == .done && $0.status == "ok" }.compactMap(\.stepId))
    }

    func startedPhases(_ run: RunHistory) -> Set<String> {
        Set(run.records.filter { $0.kind == .intent }.compactMap(\.stepId))
    }

    func start(_ runId: String) throws {
        try journal.append(JournalRecord(kind: .run, runId: runId, host: Self.host, runbook: Self.runbook, mode: "apply"))
    }

    func begin(_ runId: String, _ phase: DeployPhase) throws {
        try journal.append(JournalRecord(kind: .intent, runId: runId, host: Self.host, stepId: phase.rawValue,
                                         index: DeployPhase.allCases.firstIndex(of: phase), description: "phase \(phase.rawValue)"))
    }

    func end(_ runId: String, _ phase: DeployPhase, ok: Bool) throws {
        try journal.append(JournalRecord(kind: .done, runId: runId, host: Self.host, stepId: phase.rawValue,
                                         index: DeployPhase.allCases.firstIndex(of: phase), status: ok ? "ok" : "failed"))
    }

    func finish(_ runId: String) throws {
        try journal.append(JournalRecord(kind: .finished, runId: runId, host: Self.host, status: "ok"))
    }
}

/// The runbooks' inventory for the instances AWS made: each role's inventory host (its SSH
/// user, key, known_hosts, vars) at the instance's private address as AWS reports it, and the
/// database at the RDS endpoint, or at `aws.rds.host`'s address when a host stands in for RDS.
/// Written to a file because the runbook commands take an inventory path.
struct InstanceInventory {
    var inventory: DeploymentInventory
    /// Inventory host name per phase; nil when that phase's instance does not exist yet.
    var hostNames: [DeployPhase: String] = [:]
    /// Why a phase cannot run yet (instance or database missing).
    var missing: [DeployPhase: String] = [:]

    init(base: DeploymentInventory, cloud: CloudInventory, outputs: DeploymentOutputs) throws {
        inventory = base
        for phase in DeployPhase.allCases {
            guard let role = phase.role else { continue }
            let name = cloud.aws.instances?[role]?.host ?? role
            guard let instance = outputs.instances[role], let ip = instance.privateIp else {
                missing[phase] = "instance cc-\(role) does not exist yet (aws phase)"
                continue
            }
            guard instance.state == nil || instance.state == "running" else {
                missing[phase] = "instance cc-\(role) is \(instance.state ?? "?"), not running"
                continue
            }
            var entry = base.hosts[name] ?? Inventory.Host(address: ip, roles: [role])
            entry.address = ip
            inventory.hosts[name] = entry
            hostNames[phase] = name
        }
        inventory.nfsServer = hostNames[.nfsMaster]

        let rds = cloud.aws.rds
        guard outputs.databaseStatus == "available", let rdsAddress = outputs.databaseAddress else {
            missing[.database] = outputs.databaseStatus.map { "RDS instance is \($0), not available yet" }
                ?? "RDS instance \(rds?.identifier ?? "cc-db") does not exist yet (aws phase)"
            return
        }
        var host = rdsAddress, port = outputs.databasePort ?? 3306
        if let standIn = rds?.host {
            guard let h = base.hosts[standIn] else { throw ValidationError("aws.rds.host \(standIn) is not a host of the inventory") }
            host = h.address
            port = base.database?.port ?? 3306
        }
        inventory.database = DeploymentInventory.Database(host: host, port: port,
                                                          adminUser: base.database?.adminUser ?? rds?.masterUser ?? "root",
                                                          adminPasswordFile: base.database?.adminPasswordFile ?? rds?.masterPasswordFile)
    }

    /// Writes the inventory (paths to secrets only, never secrets) as a 0600 file.
    func write(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try Data(try inventory.encoded().utf8).write(to: url, options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
    }
}

/// Runs (or plans) the phases in order, journaling each, and prints a closing summary.
struct DeployPipeline {
    let inventoryPath: String
    let hostOptions: HostOptions
    let options: DeployOptions
    let verbose: Bool
    /// One JSON report on stdout; every line for people goes to stderr.
    let json: Bool

    /// A progress line: stdout, or stderr under `--json` (stdout then carries only the report).
    func say(_ line: String) {
        (json ? FileHandle.standardError : FileHandle.standardOutput).write(Data((line + "\n").utf8))
    }

    func run() async throws -> Int32 {
        let start = Date()
        let journal = hostOptions.journal
        let runner = try AWSCommand.makeRunner(inventory: inventoryPath, journal: journal, verbose: verbose)
        let cloud = try CloudInventory.load(inventoryPath)
        let base = try DeploymentInventory.load(inventoryPath)
        let deployJournal = DeployJournal(journal: journal)

        var runId = RunID.make()
        var finished: Set<String> = [], cut: Set<String> = []
        var resumed = false
        let interrupted = deployJournal.lastInterrupted()
        if !options.dryRun, options.resume {
            if let last = interrupted, let id = last.runId {
                runId = id
                resumed = true
                finished = deployJournal.finishedPhases(last)
                cut = deployJournal.startedPhases(last).subtracting(finished)
                say("deploy: resuming run \(id)" + (finished.isEmpty ? "" : " (finished phases: \(DeployPhase.allCases.map(\.rawValue).filter(finished.contains).joined(separator: ", ")))"))
            } else {
                say("deploy: no interrupted run to resume; starting run \(runId)")
            }
        } else if !options.dryRun, let last = interrupted, let id = last.runId {
            say("deploy: run \(id) was interrupted; starting a new run (use --resume to skip the phases it finished)")
        }
        if !options.dryRun, !options.resume || interrupted == nil { try deployJournal.start(runId) }

        var outcomes: [(DeployPhase, PhaseOutcome)] = []
        var phaseReports: [DeployReport.Phase] = []
        var hosts: InstanceInventory?
        let derivedPath = journal.directory.appendingPathComponent("deploy/inventory.json").path

        for phase in DeployPhase.allCases {
            let index = DeployPhase.allCases.firstIndex(of: phase)! + 1
            if finished.contains(phase.rawValue) {
                let skipped = PhaseOutcome.skipped("finished in run \(runId)")
                outcomes.append((phase, skipped))
                phaseReports.append(.init(phase: phase.rawValue, outcome: skipped.code, detail: skipped.detail))
                say("deploy: phase \(index)/6 \(phase.rawValue) skipped (finished in run \(runId))")
                continue
            }
            say("deploy: phase \(index)/6 \(phase.rawValue)")
            // The host phases need the instances' addresses and the RDS endpoint, read from the
            // account once the aws phase is done (or skipped, or only planned).
            if phase == .database || phase.role != nil, hosts == nil {
                hosts = try InstanceInventory(base: base, cloud: cloud, outputs: try await runner.currentOutputs())
                try hosts!.write(to: derivedPath)
            }
            if !options.dryRun { try deployJournal.begin(runId, phase) }
            let result: PhaseResult
            do {
                result = try await run(phase, runner: runner, hosts: hosts, inventoryPath: derivedPath, resume: cut.contains(phase.rawValue))
            } catch {
                result = PhaseResult(outcome: .failed(Failure(error, scrubber: SecretScrubber([]))))
            }
            let outcome = result.outcome
            outcomes.append((phase, outcome))
            phaseReports.append(.init(phase: phase.rawValue, outcome: outcome.code, detail: outcome.detail, failure: outcome.failure,
                                      aws: result.aws, runbook: result.runbook))
            let ok: Bool
            if case .failed = outcome { ok = false } else { ok = true }
            // Journal first, then the line: whoever sees "phase X done" may rely on it being recorded.
            if !options.dryRun { try deployJournal.end(runId, phase, ok: ok) }
            say("deploy: phase \(phase.rawValue) \(outcome.word)" + (outcome.detail.map { ": \($0)" } ?? ""))
            if !ok, !options.dryRun { break }
        }

        let failed = outcomes.contains { if case .failed = $0.1 { true } else { false } }
        if !options.dryRun, !failed { try deployJournal.finish(runId) }
        for (phase, outcome) in outcomes {
            say("deploy: \(phase.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0)) \(outcome.word)" + (outcome.detail.map { " (\($0))" } ?? ""))
        }
        let pending = outcomes.contains {
            switch $0.1 { case .pending, .depends: true; default: false }
        }
        let code: Int32 = failed ? 1 : (options.dryRun && pending ? 2 : 0)
        let seconds = String(format: "%.1f", Date().timeIntervalSince(start))
        if failed {
            say("deploy: failed after \(seconds) s (run \(runId)); fix the cause, then `ccrun deploy --resume` continues from the failed phase")
        } else if options.dryRun {
            say(pending ? "deploy: changes pending (exit 2)" : "deploy: nothing to change")
        } else {
            say("deploy: done in \(seconds) s (run \(runId))")
        }
        if json {
            let report = DeployReport(runId: runId, mode: options.dryRun ? .dryRun : .apply, resumed: resumed,
                                      exitCode: code, seconds: Date().timeIntervalSince(start), phases: phaseReports)
            FileHandle.standardOutput.write(Data((try report.json() + "\n").utf8))
        }
        return code
    }

    /// One phase: the aws apply/plan passes, or one runbook through the guide commands' own code.
    func run(_ phase: DeployPhase, runner: DeploymentRunner, hosts: InstanceInventory?, inventoryPath: String, resume: Bool) async throws -> PhaseResult {
        switch phase {
        case .aws, .images:
            let cloudPhase: Phase = phase == .aws ? .base : .images
            let report = options.dryRun
                ? await runner.plan(phases: [cloudPhase])
                : await runner.apply(phases: [cloudPhase], command: phase == .aws ? "apply" : "images")
            say(report.awsText())
            let account = report.hosts.first
            switch report.exitCode {
            case 0: return PhaseResult(outcome: options.dryRun ? .nothingToChange : .done, aws: report)
            case 2:
                let waiting = account?.steps.filter { $0.state == .depends } ?? []
                let changing = account?.steps.filter { $0.state == .wouldChange } ?? []
                return PhaseResult(outcome: changing.isEmpty && !waiting.isEmpty ? .depends("\(waiting.count) resource(s) wait for earlier phases") : .pending,
                                   aws: report)
            default:
                let first = account?.firstFailure
                return PhaseResult(outcome: .failed(Failure(first?.kind ?? .internal, account?.error ?? "see the failed resources above")), aws: report)
            }
        case .database, .nfsMaster, .repoNode, .webNode:
            guard let hosts else { return PhaseResult(outcome: .failed(Failure(.refused, "no instance inventory"))) }
            if let why = hosts.missing[phase] {
                return PhaseResult(outcome: options.dryRun ? .depends(why) : .failed(Failure(.refused, "cannot run yet: \(why)")))
            }
            var ho = hostOptions
            ho.inventory = inventoryPath
            var opts = options
            opts.resume = resume
            let name = Self.runbookName(phase)
            let target = phase == .database ? [] : hosts.hostNames[phase].map { [$0] } ?? []
            let guide = try GuideRun(name, hosts: target, hostOptions: ho, options: opts, note: say)
            // Parsed, not init(): a parsable type's wrappers only hold values after parsing.
            let printer = try OutputOptions.parse([]).printer
            let out = json ? FileHandle.standardError : FileHandle.standardOutput
            let report = await runRunbook(guide.runbook, hosts: guide.targets, options: guide.options, printer: printer) { line in
                out.write(Data((line + "\n").utf8))
            }
            for h in report.hosts { say(printer.summary(h)) }
            if options.dryRun {
                say(report.dryRunVerdict)
            }
            switch report.exitCode {
            case 0: return PhaseResult(outcome: options.dryRun ? .nothingToChange : .done, runbook: report)
            case 2: return PhaseResult(outcome: .pending, runbook: report)
            default:
                let kind = report.hosts.lazy.compactMap(\.firstFailure).first?.kind ?? .internal
                return PhaseResult(outcome: .failed(Failure(kind, "the \(phase.rawValue) runbook failed (see its steps above)")), runbook: report)
            }
        }
    }

    static func runbookName(_ phase: DeployPhase) -> String {
        switch phase {
        case .database: DatabaseRunbook.name
        case .nfsMaster: NFSMasterRunbook.name
        case .repoNode: RepoNodeRunbook.name
        default: WebNodeRunbook.name
        }
    }
}
