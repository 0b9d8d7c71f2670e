import ArgumentParser
import LeanFoundation
import MariaDBClient
import Runbooks
import StepKit
import Transport

/// Options every command that talks to hosts shares.
struct HostOptions: ParsableArguments {
    @Option(name: .long, help: "Inventory JSON (hosts are then named from it).")
    var inventory: String?

    @Option(name: .long, help: "Login user (overrides the inventory and ssh_config).")
    var user: String?

    @Flag(name: .long, help: "Run commands through `sudo -n` (login as the inventory's sudo user unless --user is given).")
    var sudo = false

    @Flag(name: .long, help: "Accept and record host keys not yet in known_hosts (a changed key is always refused).")
    var acceptNewHostKeys = false

    @Option(name: .long, help: "Private key file (ed25519 or ECDSA).")
    var identity: String?

    @Option(name: .long, help: "known_hosts file to verify host keys against.")
    var knownHosts: String?

    @Option(name: .long, help: "Seconds allowed for connecting and authenticating.")
    var connectTimeout: Int = 10

    @Option(name: .long, help: "Seconds one remote command (a probe or a change) may run before it is stopped and the host fails (default: probes 120, changes 1800).")
    var commandTimeout: Int?

    @Option(name: .long, help: "Seconds the SSH link may stay silent (keepalives unanswered) before the host fails with a lost link.")
    var linkTimeout: Int = 20

    @Option(name: .long, help: "ssh_config file for host aliases (default ~/.ssh/config).")
    var sshConfig: String?

    @Option(name: .long, help: "Hosts worked on at once.")
    var parallel: Int = 8

    @Option(name: .long, help: "Where the controller keeps its copy of the journals (default ~/.local/state/ccrun or $CCRUN_STATE_DIR).")
    var stateDir: String?

    @Option(name: .long, help: "Where ccrun keeps its journal and lock on the targets.")
    var targetStateDir: String = "/var/lib/ccrun"

    func loadInventory() throws -> DeploymentInventory? {
        try inventory.map { try DeploymentInventory.load($0) }
    }

    var journal: LocalJournal { LocalJournal(directory: stateDir.map { URL(fileURLWithPath: $0) } ?? LocalJournal.defaultDirectory()) }
    var targetPaths: TargetPaths { TargetPaths(stateDirectory: targetStateDir) }

    /// HOST as an inventory name, else an ~/.ssh/config alias, else an address.
    func sshTarget(for host: String, inventory: DeploymentInventory?) throws -> SSHTarget {
        var target: SSHTarget
        if let entry = inventory?.hosts[host] {
            target = SSHTarget(name: host, host: entry.address, port: entry.port ?? 22, user: entry.user ?? "root",
                               identityFiles: entry.identityFile.map { [$0] } ?? SSHTarget.defaultIdentityFiles,
                               knownHostsPath: entry.knownHosts ?? SSHTarget.defaultKnownHostsPath)
            if sudo, let su = inventory?.sudoUser {
                target.user = su.user
                if let id = su.identityFile { target.identityFiles = [id] }
            }
        } else {
            let defaults = SSHTarget(name: host, host: host, identityFiles: SSHTarget.defaultIdentityFiles)
            if let sshConfig {
                target = SSHTarget.fromSSHConfig(alias: host, config: try SSHConfigFile.load(path: sshConfig), defaults: defaults)
            } else {
                target = try SSHTarget.fromSSHConfig(alias: host, defaults: defaults)
            }
        }
        if let user { target.user = user }
        if let identity { target.identityFiles = [identity] }
        if let knownHosts { target.knownHostsPath = knownHosts }
        if acceptNewHostKeys { target.hostKeyPolicy = .acceptNew }
        target.sudo = sudo
        target.connectTimeout = .seconds(connectTimeout)
        target.linkTimeout = .seconds(linkTimeout)
        if let commandTimeout { target.commandTimeout = .seconds(commandTimeout) }
        return target
    }

    /// Run options with this command line's timeouts applied.
    func runOptions(mode: RunOptions.Mode, runId: String = RunID.make(), resume: Bool = false) -> RunOptions {
        var options = RunOptions(mode: mode, runId: runId, target: targetPaths, journal: journal, parallel: parallel, resume: resume,
                                 sql: MariaDBExecutor(), observer: TestHooks.observer)
        if let commandTimeout {
            options.probeTimeout = .seconds(commandTimeout)
            options.actionTimeout = .seconds(commandTimeout)
        }
        return options
    }

    /// The target name of runs made on this machine (the database runbook's SQL goes from here).
    static let controller = "controller"

    /// HOST targets; `controller` (when no inventory host has that name) is this machine, where
    /// the database runbook ran, so `ccrun rollback controller` and `ccrun resume controller` work.
    func hostTargets(_ names: [String], inventory: DeploymentInventory?) throws -> [HostTarget] {
        try names.map { name in
            if name == Self.controller && inventory?.hosts[name] == nil { return HostTarget(LocalHost(name: name)) }
            let target = try sshTarget(for: name, inventory: inventory)
            return HostTarget(name: name) { SSHRemoteHost(connection: try await SSHConnection.connect(target)) }
        }
    }
}

/// Output options for commands that print reports.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print the report as JSON (for machines) instead of lines.")
    var json = false

    var printer: ReportPrinter {
        ReportPrinter(colour: ReportPrinter.wantsColour(isTTY: isatty(STDOUT_FILENO) == 1))
    }
}

/// Writes a line to stdout unbuffered, so it interleaves correctly with live step lines.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

extension RunReport {
    /// The closing line of a dry-run.
    var dryRunVerdict: String { exitCode == 0 ? "nothing to change" : exitCode == 2 ? "changes pending (exit 2)" : "errors (exit 1)" }
}

/// Runs a runbook; each finished step's line goes to `progress` (stdout for a command of its
/// own, stderr under `ccrun deploy --json`, whose stdout is one JSON document).
func runRunbook(_ runbook: Runbook, hosts: [HostTarget], options: RunOptions, printer: ReportPrinter,
                progress: @escaping @Sendable (String) -> Void) async -> RunReport {
    await Runner(runbook: runbook, options: options).run(hosts) { host, step in progress(printer.line(host: host, step)) }
}

/// Runs a runbook and prints as steps finish; returns the exit code.
func runAndReport(_ runbook: Runbook, hosts: [HostTarget], options: RunOptions, output: OutputOptions) async throws -> Int32 {
    let json = output.json, printer = output.printer
    let report = await runRunbook(runbook, hosts: hosts, options: options, printer: printer) { line in
        if !json { say(line) }
    }
    if json {
        say(try report.json())
    } else {
        for h in report.hosts { say(printer.summary(h)) }
        if options.mode == .dryRun {
            say(report.dryRunVerdict)
        }
    }
    return report.exitCode
}
