import ArgumentParser
import Foundation
import Runbooks
import StepKit

/// Options shared by the four guide commands (database, nfs-master, repo-node, web-node).
struct DeployOptions: ParsableArguments {
    @Flag(name: [.customLong("dry-run"), .customLong("check")], help: "Change nothing; print what would change (exit 2 if anything would).")
    var dryRun = false

    @Flag(name: .long, help: "Continue the host's last interrupted run of this runbook (finished steps are re-checked, not re-applied).")
    var resume = false

    @Option(name: .long, help: "A prebuilt release ccr to ship (default: $CCR_BINARY, else `swift build -c release --static-swift-stdlib -Xlinker --strip-debug --product ccr`).")
    var ccrBinary: String?

    @Option(name: .long, help: "Directory for the generated cc_ro/cc_rw password files (default: next to the inventory's admin password file).")
    var secretsDir: String?

    @Option(name: .long, help: "packaging/ directory with init.d scripts and systemd units (default: found next to the package).")
    var packaging: String?

    @Flag(name: .long, help: "Let mkfs destroy a different file system or data on the data device.")
    var forceMkfs = false
}

/// Turns the inventory and the controller's files into the runbooks' `Deployment`.
struct DeploymentLoader {
    let hostOptions: HostOptions
    let options: DeployOptions

    static func packageRoot() -> String {
        var candidates = [FileManager.default.currentDirectoryPath]
        var exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        for _ in 0..<6 { exe.deleteLastPathComponent(); candidates.append(exe.path) }
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/packaging/init.d/ccr") } ?? FileManager.default.currentDirectoryPath
    }

    /// The release ccr: --ccr-binary, $CCR_BINARY, or built now (SwiftPM skips the work when up to date).
    func ccrBinary() throws -> String {
        if let p = options.ccrBinary ?? ProcessInfo.processInfo.environment["CCR_BINARY"], !p.isEmpty { return p }
        let root = Self.packageRoot()
        let scratch = ProcessInfo.processInfo.environment["CCRUN_BUILD_PATH"] ?? "\(root)/.build-ship"
        FileHandle.standardError.write(Data("building ccr (release, static Swift runtime) in \(scratch)...\n".utf8))
        // The flags of scripts/test and scripts/demo, so all three share one build.
        let build = "swift build -c release --static-swift-stdlib -Xlinker --strip-debug --product ccr --scratch-path \(Shell.quote(scratch))"
        let out = try runTool("/bin/sh", ["-c", "cd \(Shell.quote(root)) && \(build) >&2 && \(build) --show-bin-path"])
        return out.trimmingCharacters(in: .whitespacesAndNewlines) + "/ccr"
    }

    func runTool(_ path: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ValidationError("\(path) \(args.joined(separator: " ")) failed with status \(p.terminationStatus)") }
        return String(decoding: data, as: UTF8.self)
    }

    /// A password from the environment, else from a 0600 file generated once.
    func password(env: String, file name: String, inventory: Inventory) throws -> Secret {
        if let v = ProcessInfo.processInfo.environment[env], !v.isEmpty { return Secret(label: name, value: v) }
        let dir = options.secretsDir
            ?? inventory.database?.adminPasswordFile.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
            ?? hostOptions.journal.directory.appendingPathComponent("secrets").path
        let path = "\(dir)/\(name)"
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
            var rng = SystemRandomNumberGenerator()
            let value = String((0..<24).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
            guard FileManager.default.createFile(atPath: path, contents: Data((value + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
                throw ValidationError("cannot write \(path)")
            }
        }
        return try Secret(label: name, contentsOfFile: path)
    }

    /// The deployment for `runbook` (a `GuideRunbooks` name): only the database runbook reads the
    /// schema, which starts the ccr binary.
    func load(for runbook: String) throws -> (Inventory, Deployment) {
        guard let inventory = try hostOptions.loadInventory() else { throw ValidationError("--inventory FILE is required") }
        guard let db = inventory.database else { throw ValidationError("the inventory has no \"database\" object") }
        let admin = try db.adminEndpoint()
        let nfsName = inventory.nfsServer ?? inventory.hosts(withRole: "nfs-master").first ?? ""
        let nfsServer = inventory.hosts[nfsName]?.address ?? nfsName
        let packaging = options.packaging ?? Self.packageRoot() + "/packaging"
        var files: [String: ServiceFiles] = [:]
        for s in ["ccr", "ccr-web", "ccr-watchdog"] { files[s] = try ServiceFiles.load(s, packagingDirectory: packaging) }
        let path = try ccrBinary()
        let binary: Payload
        do { binary = try Payload.mapping(file: path) } catch { throw ValidationError("cannot read ccr binary \(path): \(error.localizedDescription)") }
        let schema = runbook == DatabaseRunbook.name ? try runTool(path, ["schema", "--dialect", "mysql"]) : ""
        let readOnlyUser = db.readOnlyUser ?? "cc_ro", readWriteUser = db.readWriteUser ?? "cc_rw"
        let deployment = Deployment(nfsServer: nfsServer, admin: admin,
                                    readOnlyPassword: try password(env: "CCR_RO_PASSWORD", file: "\(readOnlyUser)-password", inventory: inventory),
                                    readWritePassword: try password(env: "CCR_RW_PASSWORD", file: "\(readWriteUser)-password", inventory: inventory),
                                    databaseName: db.name ?? "cc", readOnlyUser: readOnlyUser, readWriteUser: readWriteUser,
                                    ccrBinary: binary, schemaSQL: schema, serviceFiles: files,
                                    dataDevice: "/dev/xvdf", forceMkfs: options.forceMkfs,
                                    tunerPassword: inventory.tunerPassword == false ? nil
                                        : try password(env: "CCR_TUNER_PASSWORD", file: "tuner-password", inventory: inventory))
        return (inventory, deployment)
    }
}

/// The guide's runbooks by the name their journal records, so `ccrun resume` can rebuild an
/// interrupted run (the database runbook's target is `controller`: it runs SQL from here).
enum GuideRunbooks {
    static let names = [DatabaseRunbook.name, NFSMasterRunbook.name, RepoNodeRunbook.name, WebNodeRunbook.name]

    static func make(_ name: String, _ d: Deployment) throws -> Runbook? {
        switch name {
        case DatabaseRunbook.name: DatabaseRunbook.make(d)
        case NFSMasterRunbook.name: try NFSMasterRunbook.make(d)
        case RepoNodeRunbook.name: try RepoNodeRunbook.make(d)
        case WebNodeRunbook.name: try WebNodeRunbook.make(d)
        default: nil
        }
    }
}

/// Runs one guide runbook on hosts (or, for the database, on the controller).
func runGuide(_ name: String, hosts: [String], hostOptions: HostOptions, options: DeployOptions, output: OutputOptions,
              make: @escaping (Deployment, String, Inventory) throws -> Runbook) async throws -> Int32 {
    let run = try GuideRun(name, hosts: hosts, hostOptions: hostOptions, options: options, make: make)
    return try await runAndReport(run.runbook, hosts: run.targets, options: run.options, output: output)
}

/// One guide runbook ready to run on its hosts: the inventory's deployment made into the
/// runbook per host, and the run options (a resumed run keeps the interrupted run's id).
struct GuideRun {
    var runbook: Runbook
    var targets: [HostTarget]
    var options: RunOptions

    /// `note` gets the "resuming run" line (stdout for people, stderr under `deploy --json`).
    init(_ name: String, hosts: [String], hostOptions: HostOptions, options deploy: DeployOptions, note: (String) -> Void = say,
         make: @escaping (Deployment, String, Inventory) throws -> Runbook) throws {
        let (inventory, base) = try DeploymentLoader(hostOptions: hostOptions, options: deploy).load(for: name)
        let journal = hostOptions.journal
        var targets: [HostTarget]
        if hosts.isEmpty {
            targets = [HostTarget(LocalHost(name: HostOptions.controller))]
        } else {
            targets = try hostOptions.hostTargets(hosts, inventory: inventory)
        }
        var runId = RunID.make()
        if deploy.resume, let t = targets.first,
           let last = journal.runs(host: t.name).first(where: { !$0.isFinished && !$0.isRolledBack && $0.runbook == name }), let id = last.runId {
            runId = id
            note("\(t.name): resuming run \(id) (\(name))")
        }
        for i in targets.indices {
            let d = try base.applying(hostVars: inventory.hosts[targets[i].name]?.vars)
            targets[i].runbook = try make(d, targets[i].name, inventory)
        }
        self.targets = targets
        runbook = targets[0].runbook!
        options = RunOptions(mode: deploy.dryRun ? .dryRun : .apply, runId: runId, target: hostOptions.targetPaths,
                             journal: journal, parallel: hostOptions.parallel, resume: deploy.resume)
    }
}

/// `ccrun database --inventory FILE`: the guide's "Creating Database".
struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "database",
        abstract: "Create the cc database, its tables and the users cc_ro and cc_rw (guide: Creating Database).")
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var options: DeployOptions
    func run() async throws {
        throw ExitCode(try await runGuide(DatabaseRunbook.name, hosts: [], hostOptions: hostOptions, options: options, output: output) { d, _, _ in
            DatabaseRunbook.make(d)
        })
    }
}

/// `ccrun nfs-master HOST`: the guide's "Configuring NFS server".
struct NFSMasterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "nfs-master",
        abstract: "Data volume, /srv directories, ccr watchdog and the NFS exports (guide: Configuring NFS server).")
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var options: DeployOptions
    @Argument(help: "The NFS server host (inventory name, ssh_config alias or address).")
    var host: String
    func run() async throws {
        throw ExitCode(try await runGuide(NFSMasterRunbook.name, hosts: [host], hostOptions: hostOptions, options: options, output: output) { d, _, _ in
            try NFSMasterRunbook.make(d)
        })
    }
}

/// `ccrun repo-node HOST...`: the guide's "Configuring repository servers".
struct RepoNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "repo-node",
        abstract: "NFS mounts, ccr configured with cc_rw, the ccr service on 3030 (guide: Configuring repository servers).")
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var options: DeployOptions
    @Argument(help: "Repository hosts.")
    var hosts: [String]
    func run() async throws {
        throw ExitCode(try await runGuide(RepoNodeRunbook.name, hosts: hosts, hostOptions: hostOptions, options: options, output: output) { d, _, _ in
            try RepoNodeRunbook.make(d)
        })
    }
}

/// `ccrun web-node HOST...`: the guide's "Configuring web servers".
struct WebNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "web-node",
        abstract: "NFS mounts, ccr web with cc_ro, Apache as reverse proxy (guide: Configuring web servers).")
    @OptionGroup var hostOptions: HostOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var options: DeployOptions
    @Argument(help: "Web hosts.")
    var hosts: [String]
    func run() async throws {
        throw ExitCode(try await runGuide(WebNodeRunbook.name, hosts: hosts, hostOptions: hostOptions, options: options, output: output) { d, _, _ in
            try WebNodeRunbook.make(d)
        })
    }
}
