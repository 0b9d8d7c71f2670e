import ArgumentParser
import LeanFoundation
import Runbooks
import StepKit

/// `ccrun sample HOST...`: applies (or audits with --dry-run) the sample runbook.
struct SampleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Run the sample runbook (every standard step type) on hosts.",
        discussion: "Exit status: 0 applied / nothing to change, 2 changes pending (--dry-run), 1 error.",
        aliases: ["apply-sample"]
    )

    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var output: OutputOptions

    @Flag(name: [.customLong("dry-run"), .customLong("check")], help: "Change nothing; print what would change (exit 2 if anything would).")
    var dryRun = false

    @Option(name: .long, help: "File holding the sample's secret (default: generated once in the state directory).")
    var secretFile: String?

    @Flag(name: .long, help: "Let mkfs destroy a different file system or data on the data device.")
    var forceMkfs = false

    @Argument(help: "Hosts: inventory names, ssh_config aliases or addresses.")
    var hosts: [String]

    func run() async throws {
        let inventory = try hostOptions.loadInventory()
        let journal = hostOptions.journal
        var targets = try hostOptions.hostTargets(hosts, inventory: inventory)
        for i in targets.indices {
            targets[i].runbook = try RunbookCatalog.make(SampleRunbook.name, .init(hostName: targets[i].name, inventory: inventory, secretFile: secretFile,
                                                                                   stateDirectory: journal.directory, forceMkfs: forceMkfs))
        }
        let options = hostOptions.runOptions(mode: dryRun ? .dryRun : .apply)
        let code = try await runAndReport(targets[0].runbook!, hosts: targets, options: options, output: output)
        throw ExitCode(code)
    }
}

/// `ccrun resume HOST...`: continues each host's interrupted run.
struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Continue the last interrupted run on hosts; finished steps are re-checked, never applied twice."
    )

    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var output: OutputOptions

    @Option(name: .long, help: "File holding the sample's secret.")
    var secretFile: String?

    @Option(name: .long, help: "For the guide's runbooks: the release ccr to ship (as their --ccr-binary).")
    var ccrBinary: String?

    @Option(name: .long, help: "For the guide's runbooks: where the cc_ro/cc_rw password files are (as their --secrets-dir).")
    var secretsDir: String?

    @Argument(help: "Hosts: inventory names, ssh_config aliases or addresses.")
    var hosts: [String]

    /// A guide runbook (database, nfs-master, repo-node, web-node) rebuilt from the inventory, as
    /// its own command would build it; nil for other names.
    func guideRunbook(_ name: String, host: String) throws -> Runbook? {
        guard GuideRunbooks.names.contains(name) else { return nil }
        let options = try DeployOptions.parse((ccrBinary.map { ["--ccr-binary", $0] } ?? []) + (secretsDir.map { ["--secrets-dir", $0] } ?? []))
        let (inventory, base) = try DeploymentLoader(hostOptions: hostOptions, options: options).load(for: name)
        return try GuideRunbooks.make(name, try base.applying(hostVars: inventory.hosts[host]?.vars))
    }

    func run() async throws {
        let inventory = try hostOptions.loadInventory()
        let journal = hostOptions.journal
        var worst: Int32 = 0
        for target in try hostOptions.hostTargets(hosts, inventory: inventory) {
            guard let last = journal.runs(host: target.name).first(where: { !$0.isFinished && !$0.isRolledBack }),
                  let runId = last.runId, let name = last.runbook else {
                say("\(target.name): no interrupted run to resume")
                continue
            }
            say("\(target.name): resuming run \(runId) (\(name))")
            let book = try guideRunbook(name, host: target.name) ?? RunbookCatalog.make(name, .init(hostName: target.name, inventory: inventory, secretFile: secretFile, stateDirectory: journal.directory))
            let options = hostOptions.runOptions(mode: .apply, runId: runId, resume: true)
            worst = max(worst, try await runAndReport(book, hosts: [target], options: options, output: output))
        }
        throw ExitCode(worst)
    }
}

/// `ccrun rollback HOST...`: undoes each host's last run in reverse order.
struct RollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Undo the last run's changes on hosts, in reverse order (mkfs is reported as irreversible)."
    )

    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var output: OutputOptions

    @Argument(help: "Hosts: inventory names, ssh_config aliases or addresses.")
    var hosts: [String]

    func run() async throws {
        let inventory = try hostOptions.loadInventory()
        let journal = hostOptions.journal
        let admin = try inventory?.database?.adminEndpoint()
        var reports: [RollbackReport] = []
        for target in try hostOptions.hostTargets(hosts, inventory: inventory) {
            let host: any RemoteHost
            do { host = try await target.connect() } catch {
                let report = RollbackReport(host: target.name, runId: nil, items: [], failure: Failure(error, scrubber: SecretScrubber([])))
                reports.append(report)
                if !output.json { say("\(target.name): \(error)") }
                continue
            }
            // Disconnected here, awaited: a disconnect left to a detached Task could still be
            // tearing the libssh2 session down while the process exits (seen as a SIGSEGV at exit).
            guard let history = await Rollback.latestRun(on: host, journal: journal, target: hostOptions.targetPaths) else {
                await host.disconnect()
                if !output.json { say("\(target.name): nothing to roll back") }
                continue
            }
            let rollback = Rollback(options: hostOptions.runOptions(mode: .apply)) { name in
                admin.flatMap { $0.description == name ? $0 : nil }
            }
            let report = await rollback.run(on: host, history: history)
            await host.disconnect()
            reports.append(report)
            if !output.json {
                let p = output.printer
                for item in report.items {
                    let state = item.state.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
                    let code = item.state == .undone ? "32" : item.state == .failed ? "31" : item.state == .irreversible ? "33" : "90"
                    say("\(target.name): \(p.colour ? "\u{1B}[\(code)m\(state)\u{1B}[0m" : state) \(item.summary)" + (item.message.map { "\n    \($0)" } ?? ""))
                }
                for note in report.notes { say("\(target.name): \(note)") }
                say("\(target.name): rolled back run \(report.runId ?? "?")" + (report.error.map { " — \($0)" } ?? "")
                      + (report.irreversible.isEmpty ? "" : "; \(report.irreversible.count) irreversible change(s) remain"))
            }
        }
        let document = RollbackRunReport(hosts: reports)
        if output.json { say(try document.json()) }
        throw ExitCode(document.exitCode)
    }
}

/// `ccrun unlock HOST --run RUNID`: removes the lock a run left on a host when that run is known
/// to be gone but ccrun cannot prove it (a run from another controller). Naming the run makes
/// the removal exact: a lock taken since by another run is never removed by mistake.
struct UnlockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlock",
        abstract: "Remove a host's lock, only if it is the named run's (and that run is not alive on this machine)."
    )

    @OptionGroup var hostOptions: HostOptions

    @Option(name: .customLong("run"), help: "The run id the lock names (as the \"locked by\" message shows it).")
    var runId: String

    @Argument(help: "The host (inventory name, ssh_config alias or address).")
    var host: String

    func run() async throws {
        let inventory = try hostOptions.loadInventory()
        guard let target = try hostOptions.hostTargets([host], inventory: inventory).first else { return }
        let remote = try await target.connect()
        do {
            try await unlock(remote)
            await remote.disconnect()
        } catch {
            await remote.disconnect()
            throw error
        }
    }

    func unlock(_ remote: any RemoteHost) async throws {
        let paths = hostOptions.targetPaths
        let shown = TargetLock.parse(try await remote.run(TargetLock.showScript(paths: paths)).stdoutText)
        guard let info = shown.info, info.runId == runId else { throw LockError.notNamed(host: host, wanted: runId, by: shown.info) }
        if case let .alive(command) = info.holder(for: LockOwner.current(runId: "unlock")) {
            throw LockError.heldHere(host: host, by: info, command: command)
        }
        let removed = TargetLock.parse(try await remote.run(TargetLock.unlockScript(paths: paths, runId: runId)).stdoutText)
        guard removed.acquired else { throw LockError.notNamed(host: host, wanted: runId, by: removed.info) }
        say("\(host): removed the lock of \(info); `ccrun resume \(host)` continues that run")
    }
}
