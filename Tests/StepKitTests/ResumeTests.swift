import Foundation
import Testing
@testable import StepKit

/// Simulates SIGKILL of the controller: after `killAt` calls, every call fails, and the call
/// at the kill point either never reaches the host (`before`) or does its work but its answer
/// is lost (`after`: "between a step's remote change and its journal record").
final class KillingHost: RemoteHost, @unchecked Sendable {
    struct Killed: Error {}
    let inner = LocalHost()
    let killAt: Int
    let afterwards: Bool
    private let lock = NSLock()
    private var calls = 0
    init(killAt: Int, afterwards: Bool) { self.killAt = killAt; self.afterwards = afterwards }
    var name: String { "localhost" }

    private func gate() throws -> Bool {   // returns true when this call is the kill point
        let n = lock.withLock { calls += 1; return calls }
        if n > killAt { throw Killed() }
        return n == killAt
    }
    func run(_ script: String, stdin: Data?, timeout: Duration?) async throws -> ScriptResult {
        let kill = try gate()
        if kill && !afterwards { throw Killed() }
        let r = try await inner.run(script, stdin: stdin, timeout: timeout)
        if kill { throw Killed() }
        return r
    }
    func upload(_ data: Data, to path: String, mode: UInt16) async throws {
        let kill = try gate()
        if kill && !afterwards {
            // Half an upload: a partial temporary file is left behind.
            FileManager.default.createFile(atPath: path, contents: data.prefix(data.count / 2))
            throw Killed()
        }
        try await inner.upload(data, to: path, mode: mode)
        if kill { throw Killed() }
    }
    func readFile(_ path: String) async throws -> Data {
        _ = try gate(); return try await inner.readFile(path)
    }
}

@Suite(.serialized) struct ResumeTests {
    let secret = Secret(label: "db", value: "PLANTED-resume")
    let binary = Data((0..<100_000).map { UInt8($0 % 253) })

    @Test func resumeAfterAKillAtEveryPointEndsLikeAnUninterruptedRun() async throws {
        // Reference: an uninterrupted run.
        let ref = try Sandbox()
        try "/dev/xvdf /srv ext4 defaults 0 0\n".write(toFile: ref.path("/etc/fstab"), atomically: true, encoding: .utf8)
        _ = await Runner(runbook: sampleSteps(ref, secret: secret, binary: binary), options: RunOptions(target: ref.target, journal: ref.journal)).run(on: LocalHost())
        let expected = ref.manifest().mapKeys { $0 }

        // Count the calls of a full run, then kill at each of them (before and after the call).
        var killPoints: [(Int, Bool)] = []
        for n in 1...32 { killPoints.append((n, n % 2 == 0)) }
        var exercised = 0
        for (n, after) in killPoints {
            let sb = try Sandbox()
            try "/dev/xvdf /srv ext4 defaults 0 0\n".write(toFile: sb.path("/etc/fstab"), atomically: true, encoding: .utf8)
            let book = sampleSteps(sb, secret: secret, binary: binary)
            let runId = RunID.make()
            // Each "process" has its own pid; the killed one is dead when resume comes.
            let deadPid: Int32 = 999_999
            var owner = LockOwner.current(runId: runId); owner.pid = deadPid
            let killed = await Runner(runbook: book, options: RunOptions(runId: runId, target: sb.target, journal: sb.journal, owner: owner))
                .run(on: KillingHost(killAt: n, afterwards: after))
            if killed.error == nil && !killed.failed { continue }   // kill point beyond the run's end
            exercised += 1
            let resumed = await Runner(runbook: book, options: RunOptions(runId: runId, target: sb.target, journal: sb.journal, resume: true))
                .run(on: LocalHost())
            #expect(resumed.error == nil && !resumed.failed, "kill at \(n) after=\(after): \(resumed.error ?? "") \(resumed.steps.filter { $0.state == .failed }.map { $0.message ?? "" })")
            #expect(sb.manifest().mapKeys { $0 } == expected, "kill at \(n) after=\(after)")
            let fstab = try String(contentsOfFile: sb.path("/etc/fstab"), encoding: .utf8)
            #expect(fstab.components(separatedBy: "/srv ").count == 2, "no duplicated line")
            // Never applied twice: at most one "changed" done record per step.
            let records = sb.journal.history(host: "localhost", runId: runId).records
            let changedDone = records.filter { $0.kind == .done && $0.status == "changed" }.compactMap(\.stepId)
            #expect(Set(changedDone).count == changedDone.count, "kill at \(n): a step was applied twice")
            // The run can then be rolled back as a whole: its undo data survived the kill.
            if n == 9 {
                let h = try #require(await Rollback.latestRun(on: LocalHost(), journal: sb.journal, target: sb.target))
                let rb = await Rollback(options: RunOptions(target: sb.target, journal: sb.journal)).run(on: LocalHost(), history: h)
                #expect(!rb.failed)
                #expect(sb.manifest() == ["etc": ref.manifest()["etc"]!, "etc/fstab": ref.manifestOf(text: "/dev/xvdf /srv ext4 defaults 0 0\n", mode: "644")])
            }
        }
        #expect(exercised >= 20, "a full run makes about 25 calls: each is a kill point")
    }

    /// Issue #20, point 7: a runbook changed between the kill and `resume` is refused before
    /// anything is applied, naming the step and the ways out; the unchanged runbook still resumes.
    @Test func aChangedRunbookIsNotResumedSilently() async throws {
        let sb = try Sandbox()
        let book = sampleSteps(sb, secret: secret, binary: binary)
        let runId = RunID.make()
        var owner = LockOwner.current(runId: runId); owner.pid = 999_999
        let killed = await Runner(runbook: book, options: RunOptions(runId: runId, target: sb.target, journal: sb.journal, owner: owner))
            .run(on: KillingHost(killAt: 9, afterwards: true))
        #expect(killed.error != nil || killed.failed)
        let afterKill = sb.manifest()
        let applied = try #require(sb.journal.history(host: "localhost", runId: runId).firstIntents.first?.stepId)

        // The first step the run applied, with another mode; then the same step left out.
        var changedSteps = book.steps
        changedSteps[0] = Directory(sb.path("/srv/ccr/data"), mode: "700")
        #expect(changedSteps[0].id == applied)
        for (changed, removed) in [(Runbook(book.name, steps: changedSteps), false), (Runbook(book.name, steps: Array(book.steps.dropFirst())), true)] {
            let refused = await Runner(runbook: changed, options: RunOptions(runId: runId, target: sb.target, journal: sb.journal, resume: true))
                .run(on: LocalHost())
            let error = try #require(refused.error)
            #expect(refused.failure?.kind == .refused, "a changed runbook is the operator's decision")
            #expect(error.contains("cannot resume run \(runId)") && error.contains("step \(applied)"), "\(error)")
            #expect(error.contains(removed ? "is no longer in it" : "has other parameters"), "\(error)")
            #expect(error.contains("ccrun rollback localhost"), "the way out: \(error)")
            #expect(refused.steps.allSatisfy { $0.state == .skipped })
            #expect(sb.manifest() == afterKill, "nothing applied by a refused resume")
        }
        let resumed = await Runner(runbook: book, options: RunOptions(runId: runId, target: sb.target, journal: sb.journal, resume: true))
            .run(on: LocalHost())
        #expect(resumed.error == nil && !resumed.failed, "\(resumed.error ?? "")")
    }
}

extension Dictionary {
    func mapKeys(_ f: (Key) -> Key) -> [Key: Value] { Dictionary(uniqueKeysWithValues: map { (f($0.key), $0.value) }) }
}

extension Sandbox {
    func manifestOf(text: String, mode: String) -> String { "\(SHA256Digest.hex(text)) \(mode) root:root" }
}
