import Foundation
import SupportKit
import Testing

/// The guide's runbooks on real systemd hosts (`ccrun lab up --init systemd`: systemd is PID 1 in
/// every host, booted by systemd-nspawn), driven as a user would with the built `ccrun`: apply
/// from bare, the units active and enabled, a tuner stream whose SRT comes back through Apache
/// byte for byte, a second run all ok, a dry-run with nothing to do, a restart of each host
/// after which its services are active again, and a rollback of web-node then a new run.
///
/// Also on systemd: a run SIGKILLed after its last change and resumed at once (the lock taken
/// over), and services that die after their start failing the run with their journal's reason.
///
/// Lean on purpose (CI's whole budget is 90 minutes): one pass, the checks that differ on systemd.
/// The sysv suites (LabDeployTests and others) cover resume and failure reporting in depth; they
/// skip themselves on a systemd lab, and this suite skips itself on a sysv one.
@Suite(.serialized, .enabled(if: LabEnvironment.hasSystemdHosts && Fixtures.shouldRunSharedTests,
                             "needs a lab of systemd hosts (`ccrun lab up --init systemd`) and the shared fixtures"))
struct SystemdLabTests {
    /// The deployment's service on each host, as systemd names it.
    static let units = [("nfs-master", "ccr-watchdog"), ("repo-node", "ccr"), ("web-node", "ccr-web")]

    @Test(.timeLimit(.minutes(15)))
    func guideOnSystemdHostsFromBareThroughRestart() async throws {
        let deploy = LabDeployTests()
        let lab = try LabDeployTests.Lab.load()
        let ccrun = try LabDeployTests.ccrunBinary()
        let ship = try LabDeployTests.shipBinary()
        let shell = try LabHostShell.load()
        let expectedSRT = try Data(contentsOf: try Fixtures.shared("the.tudors.sendto.srt"))

        // Bare hosts (fresh layers, blank data volume), so a rerun on the same lab starts over too.
        let reset = try LabDeployTests.run(ccrun, ["lab", "reset-host", "nfs-master", "repo-node", "web-node"])
        try #require(reset.status == 0, "ccrun lab reset-host: \(reset.output)")
        for host in ["nfs-master", "repo-node", "web-node"] {
            let pid1 = try shell.check(host, "cat /proc/1/comm; systemctl is-system-running --wait >/dev/null || true", "PID 1")
            try #require(pid1.hasPrefix("systemd"), "PID 1 of \(host) is not systemd: \(pid1)")
        }

        let started = Date()
        for args in LabDeployTests.runbooks(lab.inventory) {
            if args[0] == "repo-node" {
                try killThenResume(args, ship: ship)
                continue
            }
            let r = try deploy.apply(ccrun, args, ship: ship)
            try #require(r.status == 0, "ccrun \(args.joined(separator: " ")) exited \(r.status):\n\(r.output.suffix(4000))")
        }
        print(String(format: "systemd hosts: the four runbooks from bare (repo-node killed once and resumed) in %.1f s", Date().timeIntervalSince(started)))
        try expectUnitsActiveAndEnabled(shell, when: "after the first run")

        let program = try await deploy.streamAndDownload(lab)
        try deploy.expectSecondRunAllOK(lab, ccrun: ccrun, ship: ship)
        for args in LabDeployTests.runbooks(lab.inventory) {
            let r = try deploy.apply(ccrun, args + ["--dry-run"], ship: ship)
            #expect(r.status == 0, "ccrun \(args[0]) --dry-run after converging exited \(r.status):\n\(r.output.suffix(3000))")
        }

        let restart = Date()
        try await deploy.checkRestartedHostsComeBack(lab, ccrun: ccrun, program: program, expectedSRT: expectedSRT)
        print(String(format: "systemd hosts: three restarted, services and SRT back in %.1f s", Date().timeIntervalSince(restart)))
        try expectUnitsActiveAndEnabled(shell, when: "after a restart of the host")

        // Rollback on a systemd host: the unit is stopped and removed, then a run puts it back.
        let web = LabDeployTests.runbooks(lab.inventory)[3]
        let rollback = try LabDeployTests.run(ccrun, ["rollback", "--inventory", lab.inventory, "web-node"])
        try #require(rollback.status == 0, "ccrun rollback web-node exited \(rollback.status):\n\(rollback.output.suffix(3000))")
        let gone = try shell.run("web-node", "systemctl is-active ccr-web; test -e /etc/systemd/system/ccr-web.service && echo unit-left; true")
        #expect(!gone.output.hasPrefix("active") && !gone.output.contains("unit-left"), "ccr-web after rollback: \(gone.output)")
        let again = try deploy.apply(ccrun, web, ship: ship)
        #expect(again.status == 0, "web-node after rollback:\n\(again.output.suffix(3000))")
        let web2 = try shell.run("web-node", "systemctl is-active ccr-web; systemctl is-enabled ccr-web")
        #expect(web2.output == "active\nenabled\n", "ccr-web after rollback and a new run: \(web2.output)")

        // Issue 23 on systemd: units that die after their start (a database password that no
        // longer matches) fail the run with the reason from their journal, until it is fixed.
        try deploy.checkServicesThatDieFailTheRun(lab, ccrun: ccrun, ship: ship)
    }

    /// The repo-node runbook SIGKILLed right after its last change (before the journal records
    /// it), then `ccrun resume` at once: the dead run's lock is taken over (the report says so)
    /// and the run completes, with its units active.
    func killThenResume(_ args: [String], ship: String) throws {
        let host = try #require(args.last)
        let plan = try CCRunProcess.run(args + ["--ccr-binary", ship, "--dry-run", "--json"])
        let lastChange = try #require(plan.steps.lastIndex { $0.state == "would change" }, "no change planned on bare \(host): \(plan.text)")
        let k = try CCRunProcess.killed(args + ["--ccr-binary", ship], at: "after-change:\(lastChange)")
        try #require(k.reached, "ccrun \(args[0]) ended before its last change: \(k.outcome.text)")
        let resumed = try CCRunProcess.run(["resume", "--inventory", args[2], "--ccr-binary", ship, host])
        try #require(resumed.status == 0, "ccrun resume \(host) after SIGKILL: \(resumed.text)")
        #expect(resumed.stdout.contains("\(host): took over the lock of run ") && resumed.stdout.contains("on this machine has exited"),
                "the resume does not say it took over the dead run's lock: \(resumed.text)")
    }

    /// `systemctl is-active` says active and `systemctl is-enabled` says enabled for each unit.
    func expectUnitsActiveAndEnabled(_ shell: LabHostShell, when: String) throws {
        for (host, unit) in Self.units {
            let r = try shell.run(host, "systemctl is-active \(unit); systemctl is-enabled \(unit)")
            #expect(r.output == "active\nenabled\n", "\(unit) on \(host) \(when): \(r.output)")
        }
    }
}
