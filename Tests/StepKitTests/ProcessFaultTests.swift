import Foundation
import SupportKit
import Testing
import Transport
@testable import StepKit
#if canImport(Glibc)
import Glibc
#endif

/// A temp directory for one test's `ccrun` runs: an inventory of host6 and host7 only (no
/// database: the SQL step is left out, the db host belongs to the runbook tests), a planted
/// secret file, the controller's journal directory, and every process's output for the
/// secret check.
final class FaultWorkspace {
    let directory: URL
    let inventory: String
    let secretFile: String
    let stateDirectory: URL
    let secret: String
    private(set) var processes: [CCRunProcess] = []

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-fault-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let lab = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: LabEnvironment.inventoryPath))) as? [String: Any])
        var inv = lab
        let hosts = try #require(lab["hosts"] as? [String: Any])
        inv["hosts"] = hosts.filter { ["host6", "host7"].contains($0.key) }
        inv.removeValue(forKey: "database")
        inventory = directory.appendingPathComponent("inventory.json").path
        try JSONSerialization.data(withJSONObject: inv).write(to: URL(fileURLWithPath: inventory))
        secret = "PLANTED-fault-\(UUID().uuidString.prefix(12))"
        secretFile = directory.appendingPathComponent("secret").path
        _ = FileManager.default.createFile(atPath: secretFile, contents: Data((secret + "\n").utf8), attributes: [.posixPermissions: 0o600])
        stateDirectory = directory.appendingPathComponent("state")
    }

    /// Starts `ccrun ARGS --inventory … --secret-file …` (commands that take them), stopping at `stop`.
    func start(_ args: [String], stop: String? = nil, inventory useInventory: Bool = true) throws -> CCRunProcess {
        var full = args
        if useInventory { full += ["--inventory", inventory] }
        if ["sample", "resume"].contains(args.first) { full += ["--secret-file", secretFile] }
        var env = ["CCRUN_STATE_DIR": stateDirectory.path]
        if let stop { env[CCRunProcess.stopAtVariable] = stop }
        let p = try CCRunProcess(full, environment: env, logDirectory: directory)
        processes.append(p)
        return p
    }

    /// Runs to the end; returns the exit status.
    func run(_ args: [String], inventory: Bool = true, timeout: Duration = .seconds(300)) async throws -> (status: Int32, process: CCRunProcess) {
        let p = try start(args, inventory: inventory)
        return (try await p.exitStatus(timeout: timeout), p)
    }

    /// Starts, waits for the stop point, SIGKILLs. Returns the killed process (its output).
    @discardableResult
    func kill(_ args: [String], at stop: String) async throws -> CCRunProcess {
        let p = try start(args, stop: stop)
        do { try await p.waitUntilStopped() } catch { await p.kill(); throw error }
        await p.kill()
        return p
    }

    func killAll() async { for p in processes { await p.kill() } }

    /// Everything the controller side wrote: journals and every process's stdout and stderr.
    func controllerText() -> String {
        let journals = (FileManager.default.subpaths(atPath: stateDirectory.path) ?? [])
            .filter { $0.hasSuffix(".jsonl") }
            .compactMap { try? String(contentsOfFile: stateDirectory.path + "/" + $0, encoding: .utf8) }
        return journals.joined() + processes.map(\.output).joined()
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// What the sample runbook touches on a host, and how to put a host back to bare.
enum SampleHost {
    static let root = "/srv/ccr-sample"

    /// The bytes the sample uploads (the same generator as ccrun's SampleRunbook), for comparing.
    static let blobSHA256: String = {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var bytes = [UInt8](repeating: 0, count: 5 << 20)
        for i in bytes.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        return SHA256Digest.hex(Data(bytes))
    }()

    /// Undoes whatever the sample (or a failed test) left: packages purged with what they pulled
    /// in, files, the exports line, the engine's state, a test tmpfs, apt sources.
    static let bareScript = """
        umount \(root) 2>/dev/null
        if [ -f /etc/apt/sources.list.ccrun-test ]; then mv -f /etc/apt/sources.list.ccrun-test /etc/apt/sources.list; rm -rf /var/lib/apt/lists/*; fi
        service rpcbind stop >/dev/null 2>&1
        i=0; while (for f in /proc/[0-9]*/comm; do read -r c < "$f" 2>/dev/null || continue; case "$c" in dpkg|apt-get) exit 0;; esac; done; exit 1) && [ $i -lt 600 ]; do i=$((i+1)); sleep 0.2; done
        [ -n "$(dpkg --audit 2>/dev/null)" ] && DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -q --autoremove rpcbind tree >/dev/null 2>&1
        rm -rf \(root) /etc/ccr-sample /var/lib/ccrun /tmp/.ccrun-upload-*
        [ -f /etc/exports ] && sed -i '\\#^\(root)/data #d' /etc/exports
        [ -f /etc/exports ] && [ ! -s /etc/exports ] && rm -f /etc/exports
        true
        """

    /// path sha mode owner of every path the sample touches, the installed packages and the boot
    /// links. The guarded command's marker holds a date: its content is left out.
    static let manifestScript = """
        find \(root) /etc/ccr-sample /etc/exports /etc/init.d /etc/rc2.d /etc/rcS.d /etc/default -xdev \\( -type f -o -type d -o -type l \\) 2>/dev/null | LC_ALL=C sort | while read -r p; do
          if [ -f "$p" ] && [ "$p" != \(root)/data/.initialised ]; then h=$(sha256sum < "$p" | cut -c1-16); else h=-; fi
          echo "$p $h $(stat -c '%a %U:%G' "$p")"; done
        dpkg-query -W
        """

    /// Temp names an upload or the engine could leave behind; must come back empty.
    static let leftoversScript = "find \(root) /etc /tmp /var/lib/ccrun -xdev \\( -name '*.ccrun-tmp*' -o -name '.ccrun-upload-*' -o -name '.ccrun-tmp-*' -o -name '*.ccrun-????????' -o -name 'lock.new' \\) 2>/dev/null; true"

    static func bare(_ host: any RemoteHost) async throws {
        let r = try await host.run(bareScript, stdin: nil, timeout: .seconds(300))
        #expect(r.exitStatus == 0, "making \(host.name) bare: \(r.stderrText)")
    }

    static func manifest(_ host: any RemoteHost) async throws -> String {
        try await host.run(manifestScript, stdin: nil, timeout: .seconds(60)).stdoutText
    }

    static func expectCleanOfTemporaryFiles(_ host: any RemoteHost, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let left = try await host.run(leftoversScript).stdoutText
        #expect(left.isEmpty, "temporary files left on \(host.name): \(left)", sourceLocation: sourceLocation)
    }

    /// The engine's invariants after a run: no temp files, dpkg clean, no line twice.
    static func expectClean(_ host: any RemoteHost, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await expectCleanOfTemporaryFiles(host, sourceLocation: sourceLocation)
        let audit = try await host.run("dpkg --audit 2>&1; true").stdoutText
        #expect(audit.isEmpty, "dpkg --audit on \(host.name): \(audit)", sourceLocation: sourceLocation)
        let dups = try await host.run("for f in /etc/exports /etc/fstab; do [ -f $f ] && grep -v '^[[:space:]]*$' $f | sort | uniq -d | sed \"s|^|$f: |\"; done; true").stdoutText
        #expect(dups.isEmpty, "duplicated lines: \(dups)", sourceLocation: sourceLocation)
        let exports = try await host.run("grep -c '^\(root)/data ' /etc/exports").stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(exports == "1", "the export line appears \(exports) times", sourceLocation: sourceLocation)
    }

    /// Files on the host holding the secret, other than the one config file meant to hold it.
    static func secretHolders(_ host: any RemoteHost, secret: String) async throws -> [String] {
        let out = try await host.run("grep -rlF -f /dev/stdin / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev 2>/dev/null; true",
                                     stdin: Data((secret + "\n").utf8), timeout: .seconds(300))
        return out.stdoutText.split(separator: "\n").map(String.init).filter { $0 != "/etc/ccr-sample/ccr.conf" }
    }

    /// Lines of a report naming steps in a state, e.g. "changed".
    static func steps(_ output: String, _ state: String) -> [String] {
        output.split(separator: "\n").filter { $0.contains(": \(state) ") }.map(String.init)
    }
}

/// The engine's fault tests through separate `ccrun` processes on host6 and host7 (issue 3's
/// "Done when" and issue 8's fault suite): SIGKILL at chained points then resume, a link cut,
/// a changed host key, an unreachable address, sudo and ssh_config logins, a full disk and an
/// unreachable package repository. Each test makes its host bare first and again at the end,
/// so a rerun on the same lab starts from the same state.
@Suite(.serialized, .enabled(if: LabEnvironment.shouldRun, Comment(rawValue: LabEnvironment.skipReason)))
struct ProcessFaultTests {
    /// Waits on the target until dpkg is unpacking or configuring (apt-get holds the dpkg lock
    /// then), and says which.
    static let waitForDpkgScript = """
        i=0; while [ $i -lt 6000 ]; do
          for d in /proc/[0-9]*; do
            read -r c < $d/comm 2>/dev/null || continue
            [ "$c" = dpkg ] || continue
            a=$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)
            case "$a" in *--unpack*|*--configure*|*--install*) echo "dpkg running: $a"; exit 0;; esac
          done
          i=$((i + 1)); sleep 0.02
        done; exit 1
        """

    @Test(.timeLimit(.minutes(15)))
    func chainedKillsThenResumeEndLikeAnUninterruptedRun() async throws {
        let ws = try FaultWorkspace()
        defer { ws.remove() }
        let host = try await LabHost.connect("host6")
        defer { Task { await host.disconnect() } }
        try await SampleHost.bare(host)

        // Kill 1: inside the package install, while dpkg runs on the target.
        let first = try ws.start(["sample", "host6"])
        let dpkg = try await host.run(Self.waitForDpkgScript, stdin: nil, timeout: .seconds(150))
        await first.kill()
        #expect(dpkg.exitStatus == 0, "dpkg never ran; ccrun said: \(first.output)")
        // Kills 2-5: a step boundary, between a remote change and its journal record (a
        // directory-free file step and a line step), and in the middle of the 5 MB SFTP upload.
        // Each resume first has to take over the killed run's lock and, the first time, finish
        // or wait out the interrupted dpkg.
        for point in ["before-step:3", "after-change:6", "after-change:7", "upload-bytes:2000000"] {
            let p = try await ws.kill(["resume", "host6"], at: point)
            #expect(p.stderr.contains("test stop point \(point) reached"))
        }
        let midUpload = try await host.run("ls -A \(SampleHost.root)").stdoutText
        #expect(!midUpload.split(separator: "\n").contains("ccr.bin"), "the target file appeared before the upload finished: \(midUpload)")

        let (status, last) = try await ws.run(["resume", "host6", "--json"])
        #expect(status == 0, "final resume: \(last.output)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(last.stdout.split(separator: "\n", maxSplits: 1).dropFirst().joined().utf8)) as? [String: Any],
                                  "no JSON report: \(last.stdout)")
        let hostReport = try #require((report["hosts"] as? [[String: Any]])?.first)
        let steps = try #require(hostReport["steps"] as? [[String: Any]])
        // The killed run's lock was taken over at once, and the report says whose and why.
        let notes = hostReport["notes"] as? [String] ?? []
        #expect(notes.contains { $0.hasPrefix("took over the lock of run ") && $0.contains("on this machine") }, "\(notes)")
        #expect(steps.count == 10 && steps.allSatisfy { ["ok", "changed"].contains($0["state"] as? String) }, "\(steps.map { "\($0["id"] ?? "") \($0["state"] ?? "")" })")
        let resumed = try await SampleHost.manifest(host)
        try await SampleHost.expectClean(host)
        let sha = try await host.run("sha256sum < \(SampleHost.root)/ccr.bin").stdoutText.prefix(64)
        #expect(String(sha) == SampleHost.blobSHA256)

        // No step applied twice: one `done` record per step in the target's journal.
        let journal = try await host.run("cat /var/lib/ccrun/journal/*.jsonl").stdout
        let done = JournalRecord.parse(journal).filter { $0.kind == .done }.compactMap(\.stepId)
        #expect(done.count == Set(done).count, "steps recorded done twice: \(done)")

        // The planted secret: only in its config file on the target; nowhere on the controller.
        #expect(try await SampleHost.secretHolders(host, secret: ws.secret).isEmpty)
        #expect(!ws.controllerText().contains(ws.secret))

        // The same host, rolled back, then one uninterrupted run: the same manifest.
        let rollback = try await ws.run(["rollback", "host6"])
        #expect(rollback.status == 0, "rollback: \(rollback.process.output)")
        let straight = try await ws.run(["sample", "host6"])
        #expect(straight.status == 0, "uninterrupted run: \(straight.process.output)")
        #expect(try await SampleHost.manifest(host) == resumed)
        await ws.killAll()
        try await SampleHost.bare(host)
    }

    /// A run killed in the middle of the 5 MB upload, then rolled back instead of resumed: the
    /// host is as before the run, the engine's temporary copy of the upload included.
    @Test(.timeLimit(.minutes(10)))
    func rollbackOfARunKilledMidUploadLeavesTheHostAsBefore() async throws {
        let ws = try FaultWorkspace()
        defer { ws.remove() }
        let host = try await LabHost.connect("host7")
        defer { Task { await host.disconnect() } }
        try await SampleHost.bare(host)
        let before = try await SampleHost.manifest(host)

        let killed = try await ws.kill(["sample", "host7"], at: "upload-bytes:2000000")
        #expect(killed.stderr.contains("test stop point upload-bytes:2000000 reached"))
        let partial = try await host.run("ls -A \(SampleHost.root)").stdoutText
        #expect(partial.contains(".ccr.bin.ccrun-tmp"), "the kill was meant to leave a partial upload: \(partial)")

        let rollback = try await ws.run(["rollback", "host7"])
        #expect(rollback.status == 0, "rollback: \(rollback.process.output)")
        try await SampleHost.expectCleanOfTemporaryFiles(host)
        #expect(try await SampleHost.manifest(host) == before, "rollback of the killed run did not restore host7")
        await ws.killAll()
        try await SampleHost.bare(host)
    }

    /// The machine-side end of a lab host's veth pair (the interface whose peer is in the host's
    /// network namespace).
    static func outsideVeth(of host: String) throws -> String {
        let namespace = try #require(LabEnvironment.namespace(of: host), "\(host) has no netns in \(LabEnvironment.inventoryPath)")
        let inside = try Shell.capture("/usr/sbin/ip", ["-n", namespace, "-o", "link", "show"])
        // "2: ccrlabp6@if15: <...>": the peer's ifindex follows "@if".
        let peerIndex = try #require(inside.split(separator: "\n").compactMap { line -> String? in
            guard let at = line.range(of: "@if") else { return nil }
            return String(line[at.upperBound...].prefix { $0.isNumber })
        }.first, "no veth in \(namespace): \(inside)")
        let outside = try Shell.capture("/usr/sbin/ip", ["-o", "link", "show"])
        let line = try #require(outside.split(separator: "\n").first { $0.hasPrefix("\(peerIndex): ") })
        return String(line.split(separator: " ")[1].split(separator: "@")[0])
    }

    @Test(.timeLimit(.minutes(10)))
    func linkCutEndsWithAClearErrorWithinTheLinkTimeoutThenResumeCompletes() async throws {
        let ws = try FaultWorkspace()
        defer { ws.remove() }
        let veth = try Self.outsideVeth(of: "host7")
        defer { _ = try? Shell.capture("/usr/sbin/ip", ["link", "set", veth, "up"]) }
        let host = try await LabHost.connect("host7")
        defer { Task { await host.disconnect() } }
        try await SampleHost.bare(host)

        let p = try ws.start(["sample", "host7", "--link-timeout", "3"], stop: "before-step:4")
        try await p.waitUntilStopped()
        _ = try Shell.capture("/usr/sbin/ip", ["link", "set", veth, "down"])
        let cut = ContinuousClock.now
        p.resume()
        let status = try await p.exitStatus(timeout: .seconds(60))
        let took = ContinuousClock.now - cut
        print("link cut: ccrun exited \(status) after \(took): \(p.stdout.suffix(600))")
        #expect(status == 1)
        #expect(took < .seconds(15), "link timeout 3 s, ended after \(took)")
        #expect(p.stdout.contains("host7") && (p.output.contains("lost") || p.output.contains("link")), "unclear error: \(p.output)")

        _ = try Shell.capture("/usr/sbin/ip", ["link", "set", veth, "up"])
        // The connection made before the cut is dead; wait for the host to answer again.
        var again: LabHost?
        for _ in 0..<30 where again == nil {
            again = try? await LabHost.connect("host7")
            if again == nil { try await Task.sleep(for: .seconds(1)) }
        }
        let host2 = try #require(again, "host7 does not answer after its link came back")
        defer { Task { await host2.disconnect() } }
        let resumed = try await ws.run(["resume", "host7"])
        #expect(resumed.status == 0, "resume after the link came back: \(resumed.process.output)")
        try await SampleHost.expectClean(host2)
        await ws.killAll()
        try await SampleHost.bare(host2)
    }

    /// Issue 23: a run SIGKILLed by a parent that has not waited for it yet (a script's
    /// `Popen` without `wait`) is a zombie, which `kill(pid, 0)` still finds; an immediate
    /// `ccrun resume` must take its lock over, and say so.
    @Test(.timeLimit(.minutes(5)))
    func aKilledRunNotYetReapedHasItsLockTakenOverAtOnce() async throws {
        let ws = try FaultWorkspace()
        defer { ws.remove() }
        let host = try await LabHost.connect("host7")
        defer { Task { await host.disconnect() } }
        try await SampleHost.bare(host)
        // The parent shell becomes a `sleep` that never reaps the ccrun it started.
        let log = ws.directory.appendingPathComponent("killed.out").path
        let parent = Process()
        parent.executableURL = URL(fileURLWithPath: "/bin/sh")
        parent.arguments = ["-c", "\"$0\" \"$@\" >\(log) 2>&1 & echo $!; exec sleep 300", try CCRunProcess.binary(),
                            "sample", "host7", "--inventory", ws.inventory, "--secret-file", ws.secretFile]
        parent.environment = ProcessInfo.processInfo.environment.merging(
            ["CCRUN_STATE_DIR": ws.stateDirectory.path, CCRunProcess.stopAtVariable: "before-step:3"]) { $1 }
        let pipe = Pipe()
        parent.standardOutput = pipe
        try parent.run()
        defer { kill(parent.processIdentifier, SIGKILL); parent.waitUntilExit() }
        let pid = try #require(Int32(String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
        func state() -> Character? {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
            return stat[stat.index(close, offsetBy: 2)]
        }
        let deadline = ContinuousClock.now + .seconds(120)
        while state() != "T" && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try #require(state() == "T", "ccrun never reached its stop point: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        kill(pid, SIGKILL)

        let resumed = try await ws.run(["resume", "host7"])
        #expect(resumed.status == 0, "\(resumed.process.output)")
        #expect(resumed.process.stdout.contains("host7: took over the lock of run ")
                && resumed.process.stdout.contains("pid \(pid) on this machine is dead"), "\(resumed.process.output)")
        try await SampleHost.expectClean(host)
        try await SampleHost.bare(host)
    }

    /// A lock from another controller is respected: the run names the way to check and to
    /// remove it; `ccrun unlock --run` removes only the lock of the run it names.
    @Test(.timeLimit(.minutes(5)))
    func anotherControllersLockIsRespectedAndUnlockRemovesOnlyTheNamedRun() async throws {
        let ws = try FaultWorkspace()
        defer { ws.remove() }
        let host = try await LabHost.connect("host7")
        defer { Task { await host.disconnect() } }
        try await SampleHost.bare(host)
        let other = LockOwner(runId: "20261201T000000.000Z-elsewhere", controller: "other-controller", pid: 4242, controllerBoot: "b")
        _ = try await host.run(TargetLock(paths: TargetPaths(), owner: other).acquireScript)

        let refused = try await ws.run(["sample", "host7"])
        #expect(refused.status == 1)
        #expect(refused.process.stdout.contains("Check on other-controller whether it is still running (`ps -o pid,args -p 4242`)")
                && refused.process.stdout.contains("`ccrun unlock host7 --run \(other.runId)`"), "\(refused.process.stdout)")
        let wrong = try await ws.run(["unlock", "host7", "--run", "20261201T000000.000Z-another"])
        #expect(wrong.status != 0 && wrong.process.output.contains("not by run 20261201T000000.000Z-another: nothing was removed"), "\(wrong.process.output)")
        #expect(try await host.run("grep -c '^run=\(other.runId)$' /var/lib/ccrun/lock").stdoutText == "1\n", "unlock of another run removed the lock")
        let named = try await ws.run(["unlock", "host7", "--run", other.runId])
        #expect(named.status == 0 && named.process.stdout.contains("removed the lock of ccrun run \(other.runId)"), "\(named.process.output)")
        #expect(try await host.run("[ ! -e /var/lib/ccrun/lock ]").exitStatus == 0)
        try await SampleHost.bare(host)
    }

    @Test(.timeLimit(.minutes(5)))
    func changedHostKeyIsRefusedBeforeAnythingRunsAndAMissingHostFailsAtTheConnectTimeout() async throws {
        let ws = try FaultWorkspace()
        defer { ws.remove() }
        let host = try await LabHost.connect("host7")
        defer { Task { await host.disconnect() } }
        try await SampleHost.bare(host)
        let before = try await SampleHost.manifest(host) + (try await host.run("ls -la /var/lib 2>&1").stdoutText)

        // A known_hosts naming host7's address with another key.
        let key = ws.directory.appendingPathComponent("other-key").path
        _ = try Shell.capture("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key])
        let pub = try String(contentsOfFile: key + ".pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        let known = ws.directory.appendingPathComponent("known_hosts").path
        try "198.51.100.16 \(pub)\n".write(toFile: known, atomically: true, encoding: .utf8)
        let refused = try await ws.run(["sample", "host7", "--known-hosts", known])
        print("changed key: \(refused.process.output)")
        #expect(refused.status == 1)
        #expect(refused.process.output.contains("host7") && refused.process.output.lowercased().contains("host key"), "unclear: \(refused.process.output)")
        let after = try await SampleHost.manifest(host) + (try await host.run("ls -la /var/lib 2>&1").stdoutText)
        #expect(after == before, "the target changed although its key was refused")

        // No host at all on a lab address: ends at the connect timeout, naming the address.
        let inv = try Inventory.load(LabEnvironment.inventoryPath)
        let h7 = try #require(inv.hosts["host7"])
        let missing = try await ws.run(["sample", "198.51.100.99", "--connect-timeout", "3",
                                        "--identity", h7.identityFile!, "--known-hosts", h7.knownHosts!], inventory: false, timeout: .seconds(60))
        print("unreachable: \(missing.process.output) after \(missing.process.elapsed)")
        #expect(missing.status == 1)
        #expect(missing.process.elapsed < .seconds(10), "connect timeout 3 s, took \(missing.process.elapsed)")
        #expect(missing.process.output.contains("198.51.100.99"), "unclear: \(missing.process.output)")
    }

    @Test(.timeLimit(.minutes(10)))
    func sampleRunsThroughSudoAndThroughAnSSHConfigAlias() async throws {
        let ws = try FaultWorkspace()
        defer { ws.remove() }
        let host = try await LabHost.connect("host7")
        defer { Task { await host.disconnect() } }
        try await SampleHost.bare(host)
        let inv = try Inventory.load(LabEnvironment.inventoryPath)
        let sudoUser = try #require(inv.sudoUser)
        let h7 = try #require(inv.hosts["host7"])

        // 1. The inventory's sudo user (`deploy`) with `sudo -n`.
        let sudo = try await ws.run(["sample", "host7", "--sudo"])
        #expect(sudo.status == 0, "sudo run: \(sudo.process.output)")
        #expect(sudo.process.stdout.contains("host7: changed"), "\(sudo.process.stdout)")
        let conf = try await host.run("stat -c '%a %U:%G' /etc/ccr-sample/ccr.conf \(SampleHost.root)/ccr.bin").stdoutText
        #expect(conf == "600 root:root\n755 root:root\n")

        // 2. An ssh_config alias (HostName, User, IdentityFile, UserKnownHostsFile), after drift
        //    made by hand: the alias run repairs it.
        _ = try await host.run("rm -f /etc/ccr-sample/ccr.conf; sed -i '\\#^\(SampleHost.root)/data #d' /etc/exports")
        let config = ws.directory.appendingPathComponent("ssh_config").path
        try """
            Host ccr-fault-alias
                HostName \(h7.address)
                User \(sudoUser.user)
                IdentityFile \(sudoUser.identityFile ?? h7.identityFile!)
                UserKnownHostsFile \(h7.knownHosts!)

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let alias = try await ws.run(["sample", "ccr-fault-alias", "--ssh-config", config, "--sudo"], inventory: false)
        #expect(alias.status == 0, "alias run: \(alias.process.output)")
        let changed = SampleHost.steps(alias.process.stdout, "changed")
        #expect(changed.count == 2 && changed.allSatisfy { $0.hasPrefix("ccr-fault-alias:") }, "\(alias.process.stdout)")
        let again = try await ws.run(["sample", "ccr-fault-alias", "--ssh-config", config, "--sudo", "--dry-run"], inventory: false)
        #expect(again.status == 0, "a dry-run after the repair: \(again.process.output)")
        try await SampleHost.expectClean(host)
        #expect(try await SampleHost.secretHolders(host, secret: ws.secret).isEmpty)
        #expect(!ws.controllerText().contains(ws.secret))
        try await SampleHost.bare(host)
    }

    @Test(.timeLimit(.minutes(10)))
    func fullDiskKeepsTheOldFileAndResumeCompletesOnceSpaceIsFree() async throws {
        let ws = try FaultWorkspace()
        defer { ws.remove() }
        let host = try await LabHost.connect("host7")
        defer { Task { await host.disconnect() } }
        try await SampleHost.bare(host)
        // A 1 MB file system over the directory the sample writes its 5 MB binary to, holding
        // an older binary.
        let root = SampleHost.root
        let setup = try await host.run("mkdir -p \(root) && mount -t tmpfs -o size=1m ccrun-test \(root) && printf 'old binary\\n' > \(root)/ccr.bin && chmod 755 \(root)/ccr.bin")
        try #require(setup.exitStatus == 0, "tmpfs: \(setup.stderrText)")
        let oldSHA = try await host.run("sha256sum < \(root)/ccr.bin").stdoutText

        let full = try await ws.run(["sample", "host7"])
        print("full disk: \(full.process.stdout.suffix(800))")
        #expect(full.status == 1)
        #expect(full.process.stdout.contains("host7") && full.process.stdout.contains("not enough space to write \(root)/ccr.bin"), "unclear: \(full.process.stdout)")
        #expect(try await host.run("sha256sum < \(root)/ccr.bin").stdoutText == oldSHA, "the old file changed")
        let listing = try await host.run("ls -A \(root)").stdoutText
        #expect(listing == "ccr.bin\ndata\n", "left in \(root): \(listing)")

        _ = try await host.run("mount -o remount,size=32m \(root)")
        let resumed = try await ws.run(["resume", "host7"])
        #expect(resumed.status == 0, "resume with space: \(resumed.process.output)")
        #expect(String(try await host.run("sha256sum < \(root)/ccr.bin").stdoutText.prefix(64)) == SampleHost.blobSHA256)
        try await SampleHost.expectClean(host)
        try await SampleHost.bare(host)
    }

    @Test(.timeLimit(.minutes(10)))
    func unreachablePackageRepositoryFailsThePackageStepWithAClearError() async throws {
        let ws = try FaultWorkspace()
        defer { ws.remove() }
        let host = try await LabHost.connect("host7")
        defer { Task { await host.disconnect() } }
        try await SampleHost.bare(host)
        // Nothing answers on 198.51.100.250; bare() puts the saved sources back.
        let setup = try await host.run("cp -p /etc/apt/sources.list /etc/apt/sources.list.ccrun-test && echo 'deb [trusted=yes] http://198.51.100.250/ ./' > /etc/apt/sources.list && rm -rf /var/lib/apt/lists/*")
        try #require(setup.exitStatus == 0)
        let r = try await ws.run(["sample", "host7", "--command-timeout", "90"], timeout: .seconds(150))
        print("unreachable repository: \(r.process.stdout.suffix(800)) after \(r.process.elapsed)")
        #expect(r.status == 1)
        let failed = SampleHost.steps(r.process.stdout, "failed")
        #expect(failed.count == 1 && failed.first?.contains("Install rpcbind and tree") == true, "\(r.process.stdout)")
        #expect(r.process.stdout.contains("198.51.100.250"), "the error does not name the repository: \(r.process.stdout)")
        #expect(r.process.elapsed < .seconds(100))
        try await SampleHost.bare(host)
        let restored = try await host.run("cat /etc/apt/sources.list").stdoutText
        #expect(!restored.contains("198.51.100.250"))
    }
}

extension Shell {
    /// Runs a local program, returns stdout; throws with its stderr when it fails.
    static func capture(_ path: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw StepRefusal("\(path) \(args.joined(separator: " ")) failed: \(String(decoding: errData, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
