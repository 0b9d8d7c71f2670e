import Foundation
import Runbooks
import StepKit
import SupportKit
import Testing
import Transport

/// The yum/dnf path of the package steps, run for real: Debian's dnf 4 on lab host11, made the
/// lab's RPM host stand-in by `Fixtures/rpm/rpm-host-standin.sh` (apt and dpkg hidden from the
/// SSH PATH, a stand-in /etc/os-release), with a file:// repository of stand-in rpms built at test
/// time from `Fixtures/rpm/ccrun-lab-standins.spec` (rpmbuild and createrepo_c on this machine).
/// The engine picks dnf by probing; no test passes a package manager.
///
/// Every test first restores host11's rpm side (all rpms erased, dnf history gone), then
/// pre-installs the stand-in `apr` with plain `rpm -i`, the "rpm that was there before".
///
/// On a lab of systemd hosts (`ccrun lab up --init systemd --hosts 5`) the same tests run on host5:
/// dnf with systemd as PID 1, the closest stand-in for Amazon Linux 2023 that can run here.
@Suite(.serialized, .enabled(if: LabEnvironment.available || Fixtures.isCI, "lab not running (run `ccrun lab up` as root first)"))
struct DnfPathTests {
    static let hostName = LabEnvironment.hasSystemdHosts ? "host5" : "host11"
    static let repoDirectory = "/var/lib/ccrun-lab-standin-repo"
    static let preinstalled = "apr"

    // MARK: the stand-in RPM host

    /// The lab host over libssh2, as the engine's RemoteHost.
    struct DnfLabHost: RemoteHost {
        let connection: SSHConnection
        var name: String { connection.target.name }
        func run(_ script: String, stdin: Data? = nil, timeout: Duration? = nil) async throws -> ScriptResult {
            let o = try await connection.run(script, stdin: stdin, timeout: timeout)
            return ScriptResult(stdout: o.stdout, stderr: o.stderr, exitStatus: o.exitStatus)
        }
        func upload(_ data: Data, to path: String, mode: UInt16) async throws { try await connection.upload(data, to: path, mode: UInt32(mode)) }
        func readFile(_ path: String) async throws -> Data {
            guard let d = try await connection.readFile(path) else { throw HostError.protocolError(host: name, detail: "no \(path)") }
            return d
        }
        func disconnect() async { await connection.close() }

        static func connect(_ name: String) async throws -> DnfLabHost {
            let inv = try Inventory.load(LabEnvironment.inventoryPath)
            let h = try #require(inv.hosts[name], "\(name) is not in the lab inventory: run `ccrun lab up --hosts 14`")
            let target = SSHTarget(name: name, host: h.address, port: h.port ?? 22, user: h.user ?? "root",
                                   identityFiles: [try #require(h.identityFile)], knownHostsPath: try #require(h.knownHosts))
            return DnfLabHost(connection: try await SSHConnection.connect(target))
        }

        /// Runs a script that must succeed.
        @discardableResult
        func must(_ script: String, stdin: Data? = nil, _ what: String) async throws -> String {
            let out = try await run(script, stdin: stdin, timeout: .seconds(900))
            if out.exitStatus != 0 {
                Issue.record("\(what) failed (\(out.exitStatus)): \(out.stderrText.suffix(800))")
                throw HostError.commandFailed(host: name, what: what, status: out.exitStatus, stderr: out.stderrText)
            }
            return out.stdoutText
        }
    }

    static var fixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/rpm")
    }

    /// Runs a machine-side tool; a missing tool is an actionable failure.
    static func tool(_ name: String, _ args: [String], in dir: URL? = nil) throws -> Data {
        let path = try #require(["/usr/bin/\(name)", "/usr/local/bin/\(name)"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                "\(name) not found on this machine: run scripts/setup (apt-get install rpm createrepo-c)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        if let dir { p.currentDirectoryURL = dir }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "\(name) \(args.joined(separator: " ")): \(String(decoding: errData.suffix(800), as: UTF8.self))")
        return data
    }

    /// The stand-in rpms and their repodata, as a gzipped tar: rpmbuild + createrepo_c + tar.
    static func buildRepository() throws -> Data {
        let top = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-rpm-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: top) }
        let repo = top.appendingPathComponent("repo")
        try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
        _ = try tool("rpmbuild", ["-bb", "--quiet", "--define", "_topdir \(top.path)",
                                  fixtures.appendingPathComponent("ccrun-lab-standins.spec").path])
        let rpms = top.appendingPathComponent("RPMS/noarch")
        for name in try FileManager.default.contentsOfDirectory(atPath: rpms.path) where name.hasSuffix(".rpm") {
            try FileManager.default.copyItem(at: rpms.appendingPathComponent(name), to: repo.appendingPathComponent(name))
        }
        _ = try tool("createrepo_c", ["-q", repo.path])
        return try tool("tar", ["czf", "-", "-C", repo.path, "."])
    }

    /// Restores host11 as the RPM host stand-in with only the pre-installed rpm, and returns a
    /// fresh connection (the SSH PATH from /etc/environment applies to new connections only).
    static func prepareHost() async throws -> DnfLabHost {
        let tarball = try buildRepository()
        let setup = try Data(contentsOf: fixtures.appendingPathComponent("rpm-host-standin.sh"))
        let first = try await DnfLabHost.connect(hostName)
        do {
            try await first.must("/bin/sh -s restore", stdin: setup, "making \(hostName) the RPM host stand-in")
            try await first.must("rm -rf \(repoDirectory) && mkdir -p \(repoDirectory) && tar xzf - -C \(repoDirectory)",
                                 stdin: tarball, "copying the stand-in repository")
            try await first.must("rpm -i \(repoDirectory)/\(preinstalled)-1.0-1.noarch.rpm 2>/dev/null; rpm -q \(preinstalled)",
                                 "pre-installing \(preinstalled)")
        } catch {
            await first.disconnect()
            throw error
        }
        await first.disconnect()
        return try await DnfLabHost.connect(hostName)
    }

    /// Runs `body` on a freshly prepared host, then closes the connection, awaited: a
    /// disconnect left to a detached task could still be running when the test process exits.
    static func withPreparedHost(_ body: (DnfLabHost) async throws -> Void) async throws {
        let host = try await prepareHost()
        do {
            try await body(host)
        } catch {
            await host.disconnect()
            throw error
        }
        await host.disconnect()
    }

    static func installedRPMs(_ host: DnfLabHost) async throws -> Set<String> {
        Set(try await host.must("rpm -qa --qf '%{NAME}\\n'", "rpm -qa").split(separator: "\n").map(String.init))
    }

    static func journal() -> (LocalJournal, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-dnf-journal-\(UUID().uuidString)")
        return (LocalJournal(directory: dir), dir)
    }

    static func failures(_ r: HostReport) -> String {
        "\(r.steps.filter { $0.state == .failed || $0.state == .depends }.map { "\($0.id): \($0.message ?? "")" }) \(r.error ?? "")"
    }

    /// Rolls back every run of this journal that changed something, newest first.
    static func rollBackAll(_ host: DnfLabHost, _ journal: LocalJournal) async throws {
        while let h = await Rollback.latestRun(on: host, journal: journal, target: TargetPaths()) {
            let rb = await Rollback(options: RunOptions(journal: journal)).run(on: host, history: h)
            #expect(!rb.failed, "\(rb.error ?? "") \(rb.items.filter { $0.state == .failed }.map { $0.message ?? "" })")
            if rb.failed { return }
        }
    }

    // MARK: tests

    @Test func probeSeesAnRPMHostAndPicksDnf() async throws {
        try await Self.withPreparedHost { host in
            let batch = FactBatch([SystemProbe.probe.query, PackagesProbe.probe.query])
            let facts = try batch.parse(try await host.must(batch.script, "probing facts"))
            let system = try facts[SystemProbe.probe]
            #expect(system.packageManager == .dnf)
            #expect(system.initSystem == (LabEnvironment.hasSystemdHosts ? .systemd : .sysv), "\(Self.hostName)'s init: \(system.initSystem)")
            #expect(system.distribution == "ccrun-rpm-standin")
            #expect(!system.tools.contains("apt-get") && !system.tools.contains("dpkg-query"))
            #expect(system.tools.isSuperset(of: ["dnf", "rpm"]))
            let packages = try facts[PackagesProbe.probe]
            #expect(packages.dpkg == nil)
            #expect(packages.rpm == [Self.preinstalled])
        }
    }

    @Test func dryRunApplySecondRunAndRollbackWithDnf() async throws {
        try await Self.withPreparedHost { host in
            let (journal, dir) = Self.journal()
            defer { try? FileManager.default.removeItem(at: dir) }
            // nfs-utils requires rpcbind (pulled in); httpd requires apr (there before the run)
            let book = Runbook("dnf-sample", steps: [PackageInstalled(["nfs-utils", "httpd"])])
            let before = try await Self.installedRPMs(host)
            #expect(before == [Self.preinstalled])

            // dry-run: would install with dnf, changes nothing
            let plan = await Runner(runbook: book, options: RunOptions(mode: .dryRun, journal: journal)).run([HostTarget(host)])
            #expect(plan.exitCode == 2)
            let planned = try #require(plan.hosts.first?.steps.first)
            #expect(planned.state == .wouldChange)
            #expect(planned.actions == ["install nfs-utils httpd with dnf"])
            #expect(planned.diff == "+ package nfs-utils\n+ package httpd\n")
            #expect(try await Self.installedRPMs(host) == before, "the dry-run installed something")

            // apply: dnf installs both and the dependency
            let first = await Runner(runbook: book, options: RunOptions(journal: journal)).run([HostTarget(host)])
            #expect(first.exitCode == 0, "\(Self.failures(first.hosts[0]))")
            #expect(first.hosts[0].steps.first?.state == .changed)
            let rpmQ = try await host.run("rpm -q nfs-utils httpd rpcbind apr", stdin: nil, timeout: .seconds(60))
            #expect(rpmQ.exitStatus == 0, "rpm -q: \(rpmQ.stdoutText)")
            #expect(try await Self.installedRPMs(host) == ["nfs-utils", "httpd", "rpcbind", "apr"])
            let marker = try await host.run("cat /usr/share/ccrun-lab-standin-nfs-utils.txt", stdin: nil, timeout: .seconds(30))
            #expect(marker.stdoutText.contains("ccrun lab stand-in for nfs-utils"))

            // second run: ok, nothing installed or removed
            let second = await Runner(runbook: book, options: RunOptions(journal: journal)).run([HostTarget(host)])
            #expect(second.hosts[0].steps.allSatisfy { $0.state == .ok }, "\(second.hosts[0].steps.map { "\($0.id) \($0.state)" })")
            #expect(second.exitCode == 0)
            #expect(try await Self.installedRPMs(host) == ["nfs-utils", "httpd", "rpcbind", "apr"])

            // rollback: the run's packages and the dependency it pulled in go; apr stays
            let history = try #require(await Rollback.latestRun(on: host, journal: journal, target: TargetPaths()))
            let rb = await Rollback(options: RunOptions(journal: journal)).run(on: host, history: history)
            #expect(!rb.failed, "\(rb.error ?? "") \(rb.items.map { "\($0.summary) \($0.state) \($0.message ?? "")" })")
            #expect(rb.items.map(\.state) == [.undone])
            #expect(try await Self.installedRPMs(host) == before)
            let gone = try await host.run("ls /usr/share/ccrun-lab-standin-*.txt", stdin: nil, timeout: .seconds(30))
            #expect(gone.stdoutText.split(separator: "\n") == ["/usr/share/ccrun-lab-standin-apr.txt"])
        }
    }

    @Test func unknownPackageNameIsAClearError() async throws {
        try await Self.withPreparedHost { host in
            let (journal, dir) = Self.journal()
            defer { try? FileManager.default.removeItem(at: dir) }
            let before = try await Self.installedRPMs(host)
            let book = Runbook("dnf-unknown", steps: [PackageInstalled(["rpcbind", "ccrun-no-such-package"])])
            let run = await Runner(runbook: book, options: RunOptions(journal: journal)).run([HostTarget(host)])
            #expect(run.exitCode == 1)
            let step = try #require(run.hosts.first?.steps.first)
            #expect(step.state == .failed)
            let message = step.message ?? ""
            #expect(message.contains("install rpcbind ccrun-no-such-package with dnf failed"), "\(message)")
            #expect(message.contains("Unable to find a match: ccrun-no-such-package"), "\(message)")
            // dnf installs nothing when one name is unknown
            #expect(try await Self.installedRPMs(host) == before)
            try await Self.rollBackAll(host, journal)
            #expect(try await Self.installedRPMs(host) == before)
        }
    }

    /// The repo-node and web-node runbooks' own package steps (NFS client, ccr's C++ runtime and
    /// MySQL 8 login plugins, Apache), chosen by the probed facts: the RPM names go to dnf.
    @Test func runbookPackageStepsRunWithDnf() async throws {
        try await Self.withPreparedHost { host in
            let (journal, dir) = Self.journal()
            defer { try? FileManager.default.removeItem(at: dir) }
            let none = ServiceFiles(sysvScript: "#!/bin/sh\n", systemdUnit: "[Unit]\n")
            let d = Deployment(nfsServer: "nfs-master", admin: DatabaseEndpoint(host: "db", port: 3306, user: "admin", password: Secret(label: "admin", value: "unused-admin")),
                               readOnlyPassword: Secret(label: "cc_ro", value: "unused-ro"), readWritePassword: Secret(label: "cc_rw", value: "unused-rw"),
                               ccrBinary: Payload(Data("unused".utf8)), schemaSQL: "", serviceFiles: ["ccr": none, "ccr-web": none, "ccr-watchdog": none])
            var steps: [any Step] = []
            for step in try RepoNodeRunbook.make(d).steps + WebNodeRunbook.make(d).steps
            where step.id.hasPrefix("packages:") && !steps.contains(where: { $0.id == step.id }) {
                steps.append(step)
            }
            #expect(steps.count == 3, "\(steps.map(\.id))")
            let book = Runbook("runbook-packages", steps: steps)
            let before = try await Self.installedRPMs(host)

            let first = await Runner(runbook: book, options: RunOptions(journal: journal)).run([HostTarget(host)])
            #expect(first.exitCode == 0, "\(Self.failures(first.hosts[0]))")
            #expect(first.hosts[0].steps.allSatisfy { $0.state == .changed })
            #expect(first.hosts[0].steps.allSatisfy { $0.actions.allSatisfy { $0.hasSuffix("with dnf") } }, "\(first.hosts[0].steps.map(\.actions))")
            let expected: Set<String> = ["nfs-utils", "rpcbind", "libstdc++", "mariadb-connector-c", "httpd", "apr"]
            #expect(try await Self.installedRPMs(host) == expected)

            let second = await Runner(runbook: book, options: RunOptions(journal: journal)).run([HostTarget(host)])
            #expect(second.hosts[0].steps.allSatisfy { $0.state == .ok }, "\(second.hosts[0].steps.map { "\($0.id) \($0.state)" })")

            try await Self.rollBackAll(host, journal)
            #expect(try await Self.installedRPMs(host) == before)
        }
    }
}
