import Foundation
import SupportKit
import Testing
import Transport
@testable import StepKit

/// The libssh2 connection as a RemoteHost (the same few lines as ccrun's adapter; tests cannot
/// import an executable target).
struct LabHost: RemoteHost {
    let connection: SSHConnection
    var name: String { connection.target.name }
    func run(_ script: String, stdin: Data?, timeout: Duration?) async throws -> ScriptResult {
        let o = try await connection.run(script, stdin: stdin, timeout: timeout)
        return ScriptResult(stdout: o.stdout, stderr: o.stderr, exitStatus: o.exitStatus)
    }
    func upload(_ data: Data, to path: String, mode: UInt16) async throws { try await connection.upload(data, to: path, mode: UInt32(mode)) }
    func readFile(_ path: String) async throws -> Data {
        guard let d = try await connection.readFile(path) else { throw HostError.protocolError(host: name, detail: "no \(path)") }
        return d
    }
    func disconnect() async { await connection.close() }

    static func connect(_ name: String) async throws -> LabHost {
        let inv = try Inventory.load(LabEnvironment.inventoryPath)
        let h = try #require(inv.hosts[name])
        let target = SSHTarget(name: name, host: h.address, port: h.port ?? 22, user: h.user ?? "root",
                               identityFiles: [h.identityFile!], knownHostsPath: h.knownHosts!)
        return LabHost(connection: try await SSHConnection.connect(target))
    }
}

/// Lab tests run on host5, a host no runbook test uses (no data device: mkfs and mount are covered host-free), under a
/// directory of their own, and roll everything back at the end.
@Suite(.serialized, .enabled(if: LabEnvironment.shouldRun, Comment(rawValue: LabEnvironment.skipReason)))
struct LabRunTests {
    static let hostName = "host5"
    let root = "/srv/ccrun-stepkit-test"
    let secret = Secret(label: "planted", value: "PLANTED-lab-\(UUID().uuidString.prefix(8))")

    func runbook() -> Runbook {
        Runbook("lab-sample", steps: [
            PackageInstalled(["rpcbind", "tree"]),
            ServiceRunning("rpcbind", answers: .tcpPort(111)),
            ServiceEnabled("rpcbind"),
            Directory(root, mode: "755"),
            Directory(root + "/data", mode: "750"),
            File(root + "/app.conf", content: "listen=3000\npassword=\(secret)\n", mode: "600"),
            File(root + "/motd", content: "hello from ccrun\n"),
            LineInFile(root + "/exports", line: "\(root)/data 198.51.100.0/24(rw,sync)", key: .exportPath),
            LineInFile(root + "/fstab", line: "/dev/xvdf \(root)/data ext4 defaults,nofail 0 0", key: .fstabMountPoint),
            Upload(Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }), to: root + "/ccr.bin", mode: "755"),
            GuardedCommand(id: "init", "initialise", command: "date > \(root)/data/.init", creates: root + "/data/.init", undo: "rm -f \(root)/data/.init"),
        ])
    }

    /// path hash mode owner for the test tree and /etc, plus the installed packages and rpcbind's
    /// boot links. System users that maintainer scripts add are out of scope (README).
    func manifest(_ host: any RemoteHost) async throws -> String {
        let out = try await host.run("""
            { find \(root) /etc -xdev \\( -type f -o -type d -o -type l \\) 2>/dev/null | LC_ALL=C sort | grep -Ev '^/etc/(passwd|group|shadow|gshadow|subuid|subgid)-?$|^/etc/ld.so.cache$' | while read -r p; do
              if [ -f "$p" ]; then h=$(sha256sum < "$p" | cut -c1-16); else h=-; fi; echo "$p $h $(stat -c '%a %U:%G' "$p")"; done
              dpkg-query -W; ls /etc/rc2.d; }
            """)
        return out.stdoutText
    }

    func options(_ mode: RunOptions.Mode = .apply, journal: LocalJournal) -> RunOptions {
        RunOptions(mode: mode, journal: journal)
    }

    @Test func applySecondRunDriftRepairRollbackOnARealHost() async throws {
        let host = try await LabHost.connect(Self.hostName)
        defer { Task { await host.disconnect() } }
        let journalDir = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-lab-journal-\(UUID().uuidString)")
        let journal = LocalJournal(directory: journalDir)
        defer { try? FileManager.default.removeItem(at: journalDir) }
        _ = try await host.run("rm -rf \(root); service rpcbind stop >/dev/null 2>&1; true")
        let pristine = try await manifest(host)
        let book = runbook()
        var printed: [String] = []

        // 1. apply
        let first = await Runner(runbook: book, options: options(journal: journal)).run([HostTarget(host)])
        printed += first.hosts[0].steps.map { ReportPrinter(colour: false).line(host: Self.hostName, $0) }
        #expect(first.exitCode == 0, "\(first.hosts[0].steps.filter { $0.state == .failed }.map { "\($0.id): \($0.message ?? "")" }) \(first.hosts[0].error ?? "")")
        let applied = try await manifest(host)

        // 2. second run: every step ok, manifest unchanged, two round trips (lock+probe, release: the
        //    run before changed things, so the lock is taken with the first probe)
        let second = await Runner(runbook: book, options: options(journal: journal)).run([HostTarget(host)])
        #expect(second.hosts[0].steps.allSatisfy { $0.state == .ok }, "\(second.hosts[0].steps.filter { $0.state != .ok }.map { "\($0.id) \($0.state) \($0.message ?? "")" })")
        #expect(second.hosts[0].roundTrips == 2)
        #expect(try await manifest(host) == applied)

        // 3. drift by hand: edited file, stopped service, removed line, a package removed with
        //    dpkg (the package list the runs above left in the controller's cache is stale now)
        #expect(FactCache(journal: journal, host: Self.hostName).load()[PackagesProbe.key] != nil)
        _ = try await host.run("echo tampered > \(root)/motd; service rpcbind stop; sed -i '/data/d' \(root)/exports; dpkg --remove tree >/dev/null")
        let drifted = try await manifest(host)
        let audit = await Runner(runbook: book, options: options(.dryRun, journal: journal)).run([HostTarget(host)])
        printed += audit.hosts[0].steps.map { ReportPrinter(colour: false).line(host: Self.hostName, $0) }
        #expect(audit.exitCode == 2)
        let changed = Set(audit.hosts[0].steps.filter { $0.state == .wouldChange }.map(\.id))
        #expect(changed == ["packages:rpcbind,tree", "running:rpcbind", "file:\(root)/motd", "line:\(root)/exports:\(root)/data"])
        #expect(try await manifest(host) == drifted, "dry-run changed the host")
        let repair = await Runner(runbook: book, options: options(journal: journal)).run([HostTarget(host)])
        #expect(repair.exitCode == 0)
        #expect(try await manifest(host) == applied)

        // 4. rollback: back to the pristine manifest (files, packages, service links)
        //    The repair run is the latest; roll it back, then the first run.
        for _ in 0..<2 {
            let h = try #require(await Rollback.latestRun(on: host, journal: journal, target: TargetPaths()))
            let rb = await Rollback(options: RunOptions(journal: journal)).run(on: host, history: h)
            #expect(!rb.failed, "\(rb.items.filter { $0.state == .failed })")
        }
        _ = try await host.run("rm -rf /var/lib/ccrun/backup")
        #expect(try await manifest(host) == pristine)
        let running = try await host.run("ps -e -o comm= | grep -qx rpcbind")
        #expect(running.exitStatus != 0, "rpcbind was not running before the run")

        // 5. the planted secret is nowhere but in its config file (which rollback removed)
        let grep = try await host.run("grep -rl \(Shell.quote(secret.reveal())) / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; true")
        #expect(grep.stdoutText.isEmpty, "found in: \(grep.stdoutText)")
        let local = try FileManager.default.subpathsOfDirectory(atPath: journalDir.path).compactMap { try? String(contentsOfFile: journalDir.path + "/" + $0, encoding: .utf8) }.joined()
        #expect(!local.contains(secret.reveal()))
        #expect(!(try first.json() + audit.json() + printed.joined()).contains(secret.reveal()))
    }

    @Test func concurrentRunRefusedAndStaleLockTakenOver() async throws {
        let host = try await LabHost.connect(Self.hostName)
        defer { Task { await host.disconnect() } }
        let book = Runbook("lock", steps: [Directory(root + "-lock")])
        // Held by a live process on this controller (this test process, for another run): refused,
        // naming the process, and nothing advises removing the lock.
        let live = LockOwner.current(runId: "other")
        _ = try await host.run(TargetLock(paths: TargetPaths(), owner: live).acquireScript)
        let refused = await Runner(runbook: book, options: RunOptions()).run(on: host)
        #expect(refused.error?.contains("locked by ccrun run other (pid \(getpid()) on") == true, "\(refused.error ?? "")")
        #expect(refused.error?.contains("still running on this machine") == true && refused.error?.contains("remove") == false, "\(refused.error ?? "")")
        _ = try await host.run("rm -f /var/lib/ccrun/lock")
        var dead = LockOwner.current(runId: "killed"); dead.pid = 999_999
        _ = try await host.run(TargetLock(paths: TargetPaths(), owner: dead).acquireScript)
        let took = await Runner(runbook: book, options: RunOptions()).run(on: host)
        #expect(took.error == nil && took.steps.first?.state == .changed)
        #expect(took.notes == ["took over the lock of run killed (pid 999999 on \(dead.controller)): pid 999999 on this machine has exited"])
        _ = try await host.run("rmdir \(root)-lock")
    }
}
