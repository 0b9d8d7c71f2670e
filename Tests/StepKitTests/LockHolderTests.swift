import Foundation
import Testing
@testable import StepKit
#if canImport(Glibc)
import Glibc
#endif

/// Who holds a target's lock, as judged from this controller: a lock is taken over at once only
/// when its holder is provably gone; otherwise the error says what to do (issue 23).
@Suite struct LockHolderTests {
    let me = LockOwner(runId: "resume-run", controller: "ctl-a", pid: 4000, controllerBoot: "boot-a", pidStart: 1)

    /// The lock a run made on this controller by pid `pid`, started at `start`.
    func lock(pid: Int32 = 3000, start: UInt64? = 777, controller: String = "ctl-a", boot: String = "boot-a") -> LockInfo {
        let owner = LockOwner(runId: "killed-run", controller: controller, pid: pid, controllerBoot: boot, pidStart: start)
        let text = TargetLock(paths: TargetPaths(), owner: owner).content + "targetBoot=t1"
        let parsed = TargetLock.parse("CCRUN-LOCK-HELD\n\(text)\ncurrentTargetBoot=t1\nCCRUN-LOCK-END\n")
        return parsed.info!
    }

    func table(_ entries: [Int32: ProcessTable.Entry]) -> ProcessTable { ProcessTable { entries[$0] } }

    @Test func aDeadOrExitingHolderOnThisControllerIsGone() {
        guard case let .gone(why) = lock().holder(for: me, processes: table([:])) else { Issue.record("a dead pid was not judged gone"); return }
        #expect(why == "pid 3000 on this machine has exited")
        // Killed but not reaped yet (or still being torn down): `kill(pid, 0)` succeeds, yet it is dead.
        let zombie = table([3000: .init(exiting: true, start: 777, command: "")])
        guard case let .gone(zwhy) = lock().holder(for: me, processes: zombie) else { Issue.record("an exiting pid was not judged gone"); return }
        #expect(zwhy.contains("pid 3000 on this machine is dead"))
    }

    @Test func aLiveCCRunOnThisControllerIsNamedWithItsCommand() {
        let alive = table([3000: .init(exiting: false, start: 777, command: "/usr/local/bin/ccrun nfs-master --inventory inv.json nfs-master")])
        #expect(lock().holder(for: me, processes: alive) == .alive(command: "/usr/local/bin/ccrun nfs-master --inventory inv.json nfs-master"))
        let error = LockError.heldHere(host: "nfs-master", by: lock(), command: "/usr/local/bin/ccrun nfs-master --inventory inv.json nfs-master")
        #expect(error.description.contains("pid 3000 on ctl-a"))
        #expect(error.description.contains("still running on this machine: `/usr/local/bin/ccrun nfs-master --inventory inv.json nfs-master`. Wait for it to finish"))
        #expect(!error.description.contains("remove"))
    }

    @Test func aReusedPidIsNotTheHolder() {
        // Same pid, another start time: another process now.
        let reused = table([3000: .init(exiting: false, start: 999, command: "/usr/bin/python3 x.py")])
        guard case let .gone(why) = lock().holder(for: me, processes: reused) else { Issue.record("a reused pid was judged alive"); return }
        #expect(why == "pid 3000 on this machine is now another process (`/usr/bin/python3 x.py`)")
        // A lock written before start times were recorded: only a ccrun counts as the holder.
        #expect(lock(start: nil).holder(for: me, processes: reused) == .gone("pid 3000 on this machine is now another program (`/usr/bin/python3 x.py`)"))
        let ccrun = table([3000: .init(exiting: false, start: 999, command: ".build/debug/ccrun resume host6")])
        #expect(lock(start: nil).holder(for: me, processes: ccrun) == .alive(command: ".build/debug/ccrun resume host6"))
    }

    @Test func anotherControllersRunIsRespectedAndTheMessageSaysHowToCheck() {
        let alive = table([:])
        #expect(lock(controller: "ctl-b").holder(for: me, processes: alive) == .elsewhere)
        let message = LockError.heldElsewhere(host: "web-node", by: lock(controller: "ctl-b")).description
        #expect(message.contains("Check on ctl-b whether it is still running (`ps -o pid,args -p 3000`)"))
        #expect(message.contains("`ccrun unlock web-node --run killed-run`, then `ccrun resume web-node`"))
        // Reboots end every holder: the controller's own, or the target's.
        #expect(lock(boot: "boot-old").holder(for: me, processes: table([3000: .init(exiting: false, start: 777, command: "ccrun")])) == .gone("this machine rebooted since it was taken"))
        var rebooted = lock(controller: "ctl-b")
        rebooted.currentTargetBoot = "t2"
        #expect(rebooted.holder(for: me, processes: alive) == .gone("the host rebooted since it was taken"))
    }

    /// The live table on real processes: this test process is alive with its start time; a child
    /// that exited and was not reaped (a zombie) is seen as exiting.
    @Test func theLiveProcessTableSeesZombiesAndStartTimes() async throws {
        let own = try #require(ProcessTable.live.process(getpid()))
        #expect(!own.exiting && own.start != nil && own.start == LockOwner.current(runId: "x").pidStart)
        // `sh` starts a short sleep in the background, then becomes a long sleep that never
        // waits for it: the short one stays a zombie.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "sleep 0.1 & echo $!; exec sleep 30"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        defer { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        let child = try #require(Int32(line.trimmingCharacters(in: .whitespacesAndNewlines)))
        try await Task.sleep(for: .milliseconds(600))
        #expect(kill(child, 0) == 0, "a zombie still answers kill(pid, 0)")
        #expect(ProcessTable.live.process(child)?.exiting == true)
        #expect(ProcessTable.live.process(p.processIdentifier)?.exiting == false)
    }
}
