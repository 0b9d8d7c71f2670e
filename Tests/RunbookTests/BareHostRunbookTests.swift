import Foundation
import SupportKit
import Testing

/// The host runbooks from bare lab hosts, through the built `ccrun` as a user runs it: nfs-master
/// on host8 (it has its own blank /dev/xvdf), repo-node on host9 and web-node on host10, both
/// mounting host8's exports. Each test starts with `ccrun lab reset-host host8 host9 host10`, so a
/// rerun on the same lab starts bare again.
///
/// Serialized: both tests use the same three hosts (CI runs the suites one at a time anyway).
@Suite(.serialized, .enabled(if: LabEnvironment.shouldRun && Fixtures.shouldRunSharedTests,
                             "needs the lab with 14 hosts (`ccrun lab up --hosts 14`) and the shared fixtures"))
struct BareHostRunbookTests {
    /// The guide commands in the guide's order, each on its bare host.
    static let cases: [(runbook: String, host: String)] = [("nfs-master", "host8"), ("repo-node", "host9"), ("web-node", "host10")]
    static let server = "host8"

    /// One scratch place per test: an inventory naming host8 as the NFS server, and the
    /// controller's journal directory (so runs of other tests are not "the last run" here).
    struct Setup {
        let lab: LabHostShell
        let inventory: String
        let stateDir: String
        let ship: [String]
        let directory: URL

        init() throws {
            lab = try LabHostShell.load()
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("bare-hosts-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            inventory = try lab.inventory(nfsServer: BareHostRunbookTests.server, in: directory)
            stateDir = directory.appendingPathComponent("state").path
            ship = ["--ccr-binary", try LabDeployTests.shipBinary()]
        }

        func args(_ runbook: String, _ host: String, _ extra: [String] = []) -> [String] {
            [runbook, "--inventory", inventory, "--state-dir", stateDir, "--json"] + ship + extra + [host]
        }

        /// host8, host9, host10 made bare, and the `cc` database the services connect to.
        func resetHosts() throws {
            let reset = try CCRunProcess.run(["lab", "reset-host"] + BareHostRunbookTests.cases.map(\.host))
            try #require(reset.status == 0, "ccrun lab reset-host: \(reset.text)")
            for c in BareHostRunbookTests.cases {
                let probe = try lab.run(c.host, "test ! -e /usr/local/bin/ccr && test ! -e /etc/ccr && ! grep -q /srv /etc/fstab && ! dpkg-query -W -f '${db:Status-Status}\\n' nfs-common apache2 nfs-ganesha 2>/dev/null | grep -qx installed")
                try #require(probe.status == 0, "\(c.host) is not bare after reset-host:\n\(probe.output)")
            }
            let db = try CCRunProcess.run(["database", "--inventory", inventory, "--state-dir", stateDir] + ship)
            try #require(db.status == 0, "ccrun database: \(db.text)")
        }

        func cleanUp() { try? FileManager.default.removeItem(at: directory) }
    }

    @Test(.timeLimit(.minutes(40)))
    func dryRunApplySecondRunAndRollbackFromBareHosts() throws {
        let s = try Setup()
        defer { s.cleanUp() }
        try s.resetHosts()
        var pristine: [String: [String]] = [:], applied: [String: [String]] = [:]
        for c in Self.cases { pristine[c.host] = try s.lab.manifest(c.host) }

        for c in Self.cases {
            // A dry-run on the bare host: every step would change or depends on one that would,
            // exit 2, and the host is exactly as before.
            let dry = try CCRunProcess.run(s.args(c.runbook, c.host, ["--dry-run"]))
            #expect(dry.status == 2, "dry-run \(c.runbook) on \(c.host): \(dry.text)")
            #expect(!dry.steps.isEmpty, "no steps in the dry-run report of \(c.runbook): \(dry.text)")
            let settled = dry.steps.filter { !["would change", "depends"].contains($0.state) }
            #expect(settled.isEmpty, "dry-run \(c.runbook) on bare \(c.host): steps not 'would change'/'depends': \(settled.map { "\($0.id) \($0.state)" })")
            let afterDry = try s.lab.manifest(c.host)
            #expect(afterDry == pristine[c.host], "dry-run \(c.runbook) changed \(c.host):\n\(LabHostShell.difference(pristine[c.host]!, afterDry))")

            let apply = try CCRunProcess.run(s.args(c.runbook, c.host))
            try #require(apply.status == 0, "ccrun \(c.runbook) \(c.host): \(apply.text)")
            applied[c.host] = try s.lab.manifest(c.host)
            print("first run of \(c.runbook) on bare \(c.host): \(String(format: "%.1f", apply.seconds)) s wall")

            let second = try CCRunProcess.run(s.args(c.runbook, c.host))
            #expect(second.status == 0, "second ccrun \(c.runbook) \(c.host): \(second.text)")
            let notOK = second.steps.filter { $0.state != "ok" }
            #expect(!second.steps.isEmpty && notOK.isEmpty, "second run of \(c.runbook) not all ok: \(notOK.map { "\($0.id) \($0.state)" })")
            let afterSecond = try s.lab.manifest(c.host)
            #expect(afterSecond == applied[c.host], "second run of \(c.runbook) changed \(c.host):\n\(LabHostShell.difference(applied[c.host]!, afterSecond))")
            print("second run of \(c.runbook) on \(c.host): \(String(format: "%.2f", second.seconds)) s wall (ccrun process, incl. reading the ccr binary)")
        }

        // The deployed services run (the dry-run/apply above was not a paper exercise).
        #expect(try s.lab.running(Self.server, "ganesha.nfsd"), "nfs-ganesha is not running on \(Self.server)")
        #expect(try s.lab.running("host9", "ccr serve"), "ccr serve is not running on host9")
        #expect(try s.lab.running("host10", "apache2"), "apache2 is not running on host10")

        // Rollback, last deployed first (the clients' mounts of host8's volume go before host8's own).
        for c in Self.cases.reversed() {
            let rollback = ["rollback", "--inventory", s.inventory, "--state-dir", s.stateDir, c.host]
            var rb = try CCRunProcess.run(rollback)
            var said = rb.stdout
            if c.runbook == "nfs-master" && rb.status != 0 {
                // The clients' services wrote logs onto the master's volume: data the run did not
                // create. Rollback keeps it and stops there, naming the folder; the operator moves
                // the data away and runs rollback again, which continues where it stopped.
                #expect(rb.stdout.contains("holds files this run did not create"), "ccrun rollback \(c.host): \(rb.text)")
                try s.lab.check(c.host, "for d in /srv/logs /srv/archive /srv/web; do [ ! -d $d ] || find $d -mindepth 1 -delete; done",
                                "moving the services' data away")
                rb = try CCRunProcess.run(rollback)
                said += rb.stdout
            }
            #expect(rb.status == 0, "ccrun rollback \(c.host): \(rb.text)")
            if c.runbook == "nfs-master" {
                let mkfs = said.split(separator: "\n").filter { $0.contains("irreversible") && $0.contains("ext4") }
                #expect(!mkfs.isEmpty, "rollback of nfs-master did not report the mkfs step as irreversible:\n\(said)")
            }
            let after = try s.lab.manifest(c.host), before = pristine[c.host]!
            #expect(LabHostShell.withoutVersions(after) == LabHostShell.withoutVersions(before),
                    "rollback of \(c.runbook) did not restore \(c.host):\n\(LabHostShell.difference(LabHostShell.withoutVersions(before), LabHostShell.withoutVersions(after)))")
            let upgraded = LabHostShell.versionChanges(before, after)
            if !upgraded.isEmpty { print("rollback of \(c.runbook) on \(c.host): packages upgraded by the run's installs stay upgraded: \(upgraded)") }
        }
        for (host, needle) in [(Self.server, "ganesha.nfsd"), (Self.server, "rpcbind"), (Self.server, "ccr watchdog"),
                               ("host9", "ccr serve"), ("host10", "apache2"), ("host10", "ccr web")] {
            #expect(try !s.lab.running(host, needle), "\(needle) still runs on \(host) after rollback")
        }
    }

    /// Each runbook killed (SIGKILL of the separate ccrun process) at chained points — in the
    /// middle of uploading ccr, before a later step, right after a change but before its journal
    /// record — resumed after each kill, ends with the manifest of an uninterrupted run.
    @Test(.timeLimit(.minutes(40)))
    func killedRunsResumeToTheManifestOfAnUninterruptedRun() throws {
        let s = try Setup()
        defer { s.cleanUp() }

        // Reference: the manifests of an uninterrupted run from bare hosts.
        try s.resetHosts()
        var reference: [String: [String]] = [:]
        var plans: [String: [(id: String, state: String)]] = [:]
        for c in Self.cases {
            plans[c.host] = try CCRunProcess.run(s.args(c.runbook, c.host, ["--dry-run"])).steps
            let r = try CCRunProcess.run(s.args(c.runbook, c.host))
            try #require(r.status == 0, "uninterrupted ccrun \(c.runbook) \(c.host): \(r.text)")
            reference[c.host] = try s.lab.manifest(c.host)
        }

        try s.resetHosts()
        for c in Self.cases {
            let plan = try #require(plans[c.host], "no plan for \(c.host)")
            let upload = try #require(plan.firstIndex { $0.id == "upload:/usr/local/bin/ccr" }, "no ccr upload step in \(c.runbook)")
            let lastChange = try #require(plan.lastIndex { $0.state == "would change" }, "no changing step in \(c.runbook)")
            let points = ["upload-bytes:8388608", "before-step:\(min(upload + 2, lastChange))", "after-change:\(lastChange)"]
            for (n, point) in points.enumerated() {
                let extra = n == 0 ? [] : ["--resume"]
                let k = try CCRunProcess.killed(s.args(c.runbook, c.host, extra), at: point)
                #expect(k.reached, "ccrun \(c.runbook) on \(c.host) ended before the stop point \(point): \(k.outcome.text)")
            }
            // The last resume through `ccrun resume`, which finds the runbook by the name in the journal.
            let resumed = try CCRunProcess.run(["resume", "--inventory", s.inventory, "--state-dir", s.stateDir, "--json"] + s.ship + [c.host])
            #expect(resumed.status == 0, "resume of \(c.runbook) on \(c.host) after \(points): \(resumed.text)")
            let after = try s.lab.manifest(c.host)
            #expect(after == reference[c.host], "\(c.runbook) killed at \(points) and resumed differs from an uninterrupted run on \(c.host):\n\(LabHostShell.difference(reference[c.host]!, after))")
            let again = try CCRunProcess.run(s.args(c.runbook, c.host))
            #expect(again.status == 0 && again.steps.allSatisfy { $0.state == "ok" }, "a run after the resume of \(c.runbook) was not all ok: \(again.steps.filter { $0.state != "ok" }.map(\.id))")
        }
    }
}
