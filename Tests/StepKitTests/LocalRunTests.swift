import Foundation
import Testing
@testable import StepKit

/// A temporary root standing in for a target's file system (LocalHost runs /bin/sh here).
final class Sandbox: @unchecked Sendable {
    let root: URL
    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("stepkit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("etc"), withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: root) }
    func path(_ p: String) -> String { root.path + p }
    var target: TargetPaths { TargetPaths(stateDirectory: path("/var/lib/ccrun")) }
    var journal: LocalJournal { LocalJournal(directory: root.appendingPathComponent("local-state")) }

    /// path -> "sha256 mode owner:group" for every file and directory under the target tree,
    /// leaving out ccrun's own state (journal, lock, backups) and the controller's journal.
    func manifest() -> [String: String] {
        var out: [String: String] = [:]
        let fm = FileManager.default
        guard let e = fm.enumerator(atPath: root.path) else { return out }
        for case let rel as String in e {
            if rel == "var" || rel.hasPrefix("var/") || rel.hasPrefix("local-state") { continue }
            let full = root.path + "/" + rel
            guard let attrs = try? fm.attributesOfItem(atPath: full) else { continue }
            let mode = String((attrs[.posixPermissions] as? Int) ?? 0, radix: 8)
            let owner = "\(attrs[.ownerAccountName] ?? "?"):\(attrs[.groupOwnerAccountName] ?? "?")"
            if attrs[.type] as? FileAttributeType == .typeDirectory { out[rel] = "dir \(mode) \(owner)" }
            else { out[rel] = "\(SHA256Digest.hex(fm.contents(atPath: full) ?? Data())) \(mode) \(owner)" }
        }
        return out
    }

    /// Every byte under the root, as one string (for "secret found nowhere" checks).
    func allBytes(excluding: Set<String> = []) -> String {
        var s = ""
        let fm = FileManager.default
        for case let rel as String in fm.enumerator(atPath: root.path)! where !excluding.contains(rel) {
            s += rel + "\n" + String(decoding: fm.contents(atPath: root.path + "/" + rel) ?? Data(), as: UTF8.self)
        }
        return s
    }
}

/// A runbook using the step types that work without privileges beyond root on files.
func sampleSteps(_ sb: Sandbox, secret: Secret, binary: Data) -> Runbook {
    Runbook("local-sample", steps: [
        Directory(sb.path("/srv/ccr/data"), mode: "750"),
        Directory(sb.path("/srv/ccr/archive"), mode: "755"),
        File(sb.path("/etc/ccr.conf"), content: "listen=0.0.0.0:3000\ndb.password=\(secret)\n", mode: "600"),
        File(sb.path("/etc/motd"), content: "CC Repository node\n"),
        LineInFile(sb.path("/etc/fstab"), line: "/dev/xvdf /srv ext4 defaults,nofail 0 0", key: .fstabMountPoint),
        LineInFile(sb.path("/etc/exports"), line: "/srv/ccr *(rw,sync,no_subtree_check)", key: .exportPath),
        Upload(binary, to: sb.path("/srv/ccr/ccr-binary"), mode: "755"),
        GuardedCommand(id: "stamp", "initialise data directory", command: "echo ready > \(Shell.quote(sb.path("/srv/ccr/data/.ready")))",
                       creates: sb.path("/srv/ccr/data/.ready"), undo: "rm -f \(Shell.quote(sb.path("/srv/ccr/data/.ready")))"),
    ])
}

@Suite(.serialized) struct LocalRunTests {
    let secret = Secret(label: "db", value: "PLANTED-7f3e9a-secret")
    let binary = Data((0..<200_000).map { UInt8(($0 * 7) % 256) })

    func options(_ sb: Sandbox, mode: RunOptions.Mode = .apply, runId: String = RunID.make(), resume: Bool = false) -> RunOptions {
        RunOptions(mode: mode, runId: runId, target: sb.target, journal: sb.journal, resume: resume)
    }

    @Test func applyThenSecondRunIsAllOkInTwoRoundTripsAndChangesNothing() async throws {
        let sb = try Sandbox()
        try "UUID=root / ext4 defaults 0 1\n/dev/xvdf /srv ext4 defaults 0 0\n".write(toFile: sb.path("/etc/fstab"), atomically: true, encoding: .utf8)
        let book = sampleSteps(sb, secret: secret, binary: binary)
        let first = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        #expect(first.error == nil)
        #expect(first.steps.allSatisfy { $0.state == .changed }, "\(first.steps.map { "\($0.id) \($0.state) \($0.message ?? "")" })")
        let fstab = try String(contentsOfFile: sb.path("/etc/fstab"), encoding: .utf8)
        #expect(fstab == "UUID=root / ext4 defaults 0 1\n/dev/xvdf /srv ext4 defaults,nofail 0 0\n")
        let conf = try String(contentsOfFile: sb.path("/etc/ccr.conf"), encoding: .utf8)
        #expect(conf.contains("PLANTED-7f3e9a-secret"))
        #expect(sb.manifest()["etc/ccr.conf"]?.hasSuffix(" 600 root:root") == true)

        let before = sb.manifest()
        let second = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        #expect(second.steps.allSatisfy { $0.state == .ok })
        #expect(second.roundTrips == 2, "after a run that changed things: lock+probe, release")
        #expect(sb.manifest() == before)
        #expect(!FileManager.default.fileExists(atPath: sb.target.lock))
        // After a run that changed nothing: one probe, no lock taken.
        let third = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        #expect(third.steps.allSatisfy { $0.state == .ok })
        #expect(third.roundTrips == 1)
        #expect(sb.manifest() == before)
        #expect(!FileManager.default.fileExists(atPath: sb.target.lock))
    }

    @Test func dryRunReportsDriftExactlyChangesNothingAndApplyRepairs() async throws {
        let sb = try Sandbox()
        let book = sampleSteps(sb, secret: secret, binary: binary)
        _ = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        // Drift by hand: edit a file, remove a line, chmod a directory.
        try "hacked\n".write(toFile: sb.path("/etc/motd"), atomically: true, encoding: .utf8)
        try "".write(toFile: sb.path("/etc/exports"), atomically: true, encoding: .utf8)
        chmod(sb.path("/srv/ccr/archive"), 0o700)
        let drifted = sb.manifest()

        let report = await Runner(runbook: book, options: options(sb, mode: .dryRun)).run([HostTarget(LocalHost())])
        #expect(report.exitCode == 2)
        let states = Dictionary(uniqueKeysWithValues: report.hosts[0].steps.map { ($0.id, $0.state) })
        #expect(states["file:" + sb.path("/etc/motd")] == .wouldChange)
        #expect(states["dir:" + sb.path("/srv/ccr/archive")] == .wouldChange)
        #expect(report.hosts[0].steps.filter { $0.state == .wouldChange }.count == 3)
        let motd = try #require(report.hosts[0].steps.first { $0.id == "file:" + sb.path("/etc/motd") })
        #expect(motd.diff?.contains("-hacked\n+CC Repository node\n") == true)
        #expect(sb.manifest() == drifted, "dry-run must not touch the host")
        #expect(!FileManager.default.fileExists(atPath: sb.target.lock))

        let repair = await Runner(runbook: book, options: options(sb)).run([HostTarget(LocalHost())])
        #expect(repair.exitCode == 0)
        let clean = await Runner(runbook: book, options: options(sb, mode: .dryRun)).run([HostTarget(LocalHost())])
        #expect(clean.exitCode == 0)
    }

    @Test func rollbackRestoresEveryTouchedPathByteIdentical() async throws {
        let sb = try Sandbox()
        try "original fstab\n".write(toFile: sb.path("/etc/fstab"), atomically: true, encoding: .utf8)
        try "old motd\n".write(toFile: sb.path("/etc/motd"), atomically: true, encoding: .utf8)
        chmod(sb.path("/etc/motd"), 0o640)
        chown(sb.path("/etc/motd"), 1, 1)
        let before = sb.manifest()
        let book = sampleSteps(sb, secret: secret, binary: binary)
        let applied = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        #expect(applied.error == nil && !applied.failed)
        #expect(sb.manifest() != before)

        let history = try #require(await Rollback.latestRun(on: LocalHost(), journal: sb.journal, target: sb.target))
        let rb = await Rollback(options: options(sb)).run(on: LocalHost(), history: history)
        #expect(!rb.failed, "\(rb.items.filter { $0.state == .failed })")
        #expect(sb.manifest() == before)
        // A second rollback finds nothing left to undo.
        #expect(await Rollback.latestRun(on: LocalHost(), journal: sb.journal, target: sb.target) == nil)
    }

    @Test func secondConcurrentRunIsRefusedAndStaleLockTakenOver() async throws {
        let sb = try Sandbox()
        let book = Runbook("lock", steps: [File(sb.path("/etc/a"), content: "a\n")])
        // A live holder on this controller: this test process, for another run.
        let live = LockOwner.current(runId: "other-run")
        let holder = TargetLock(paths: sb.target, owner: live)
        _ = try await LocalHost().run(holder.acquireScript)
        let refused = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        #expect(refused.error?.contains("is locked by ccrun run other-run") == true)
        #expect(refused.error?.contains("still running on this machine") == true, "\(refused.error ?? "")")
        #expect(!FileManager.default.fileExists(atPath: sb.path("/etc/a")))

        // The holder died: its pid no longer exists.
        let dead = Process(); dead.executableURL = URL(fileURLWithPath: "/bin/true"); try dead.run(); dead.waitUntilExit()
        _ = try await LocalHost().run("rm -f \(Shell.quote(sb.target.lock))")
        var gone = LockOwner.current(runId: "killed-run"); gone.pid = dead.processIdentifier
        _ = try await LocalHost().run(TargetLock(paths: sb.target, owner: gone).acquireScript)
        let took = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        #expect(took.error == nil && took.steps.first?.state == .changed)
        #expect(!FileManager.default.fileExists(atPath: sb.target.lock))
    }

    /// A run with nothing to change takes no lock, yet it does not report "ok" over a run in
    /// progress: another run's lock sends it down the locked path, which refuses.
    @Test func aNoOpRunStillRespectsAnotherRunsLock() async throws {
        let sb = try Sandbox()
        let book = Runbook("lock", steps: [File(sb.path("/etc/a"), content: "a\n")])
        #expect(await Runner(runbook: book, options: options(sb)).run(on: LocalHost()).error == nil)
        #expect(await Runner(runbook: book, options: options(sb)).run(on: LocalHost()).roundTrips == 2)
        #expect(await Runner(runbook: book, options: options(sb)).run(on: LocalHost()).roundTrips == 1, "the no-lock probe is tried")
        let live = LockOwner.current(runId: "other-run")   // this test process: alive
        _ = try await LocalHost().run(TargetLock(paths: sb.target, owner: live).acquireScript)
        let refused = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        #expect(refused.error?.contains("is locked by ccrun run other-run") == true)
        #expect(refused.steps.allSatisfy { $0.state == .skipped })
    }

    @Test func secretsAreFoundNowhereButInTheirConfigFile() async throws {
        let sb = try Sandbox()
        let book = sampleSteps(sb, secret: secret, binary: binary)
        let lines = LinesBox()
        let r1 = await Runner(runbook: book, options: options(sb)).run([HostTarget(LocalHost())]) { host, step in
            lines.append(ReportPrinter(colour: false).line(host: host, step))
        }
        // Change the secret: the plan shows a change but never the old or new value.
        let other = Secret(label: "db", value: "PLANTED-second-secret")
        let r2 = await Runner(runbook: sampleSteps(sb, secret: other, binary: binary), options: options(sb, mode: .dryRun)).run([HostTarget(LocalHost())]) { host, step in
            lines.append(ReportPrinter(colour: false).line(host: host, step))
        }
        #expect(r2.exitCode == 2)
        let outputs = try r1.json() + r2.json() + lines.all.joined()
        #expect(!outputs.contains("PLANTED"))
        let tree = sb.allBytes(excluding: [String(sb.path("/etc/ccr.conf").dropFirst(sb.root.path.count + 1))])
        #expect(!tree.contains("PLANTED"), "journals (target and local), backups and other files hold no secret")
    }
}

final class LinesBox: @unchecked Sendable {
    private let lock = NSLock(); private var lines: [String] = []
    func append(_ s: String) { lock.withLock { lines.append(s) } }
    var all: [String] { lock.withLock { lines } }
}
