import Foundation
import SupportKit
import Testing

/// bench/peers/ holds the repo-node runbook written as an Ansible playbook and a pyinfra deploy, so
/// the benchmark (bench/run) compares tools doing the same work. This suite proves they do: each
/// tool finds nothing to change on a host another tool configured, and each still sees a change
/// made by hand (so "nothing to change" is not an answer they give regardless).
///
/// Hosts: host12 (configured by ccrun), host13 (Ansible), host14 (pyinfra), made bare first with
/// `ccrun lab reset-host`; nfs-master and the database are configured by `ccrun` (idempotent).
/// Needs the lab and the peers' venv (scripts/setup installs ansible-core and pyinfra into
/// /opt/ccrun-peers, or $CCRUN_PEERS_VENV); under CI=true a missing one is a failure.
@Suite(.serialized, .enabled(if: LabEnvironment.shouldRun && PeerTools.shouldRun,
                             "needs the lab (`ccrun lab up`) and the peers' venv (scripts/setup installs it)"))
struct PeerConvergenceTests {
    static let byTool = ["ccrun": "host12", "ansible": "host13", "pyinfra": "host14"]

    @Test(.timeLimit(.minutes(30)))
    func eachToolFindsNothingToChangeOnHostsTheOthersConfigured() throws {
        let peers = try PeerTools.load()
        let (c, a, p) = (Self.byTool["ccrun"]!, Self.byTool["ansible"]!, Self.byTool["pyinfra"]!)
        for args in [["database"], ["nfs-master", "nfs-master"]] {
            let r = try peers.ccrun(args)
            try #require(r.status == 0, "ccrun \(args.joined(separator: " ")) exited \(r.status):\n\(r.output.suffix(3000))")
        }
        try peers.reset([c, a, p])
        for host in [c, a, p] { try peers.installAnsibleRequirements(host) }

        // Each tool configures its own bare host.
        let byCcrun = try peers.ccrun(["repo-node", c])
        try #require(byCcrun.status == 0, "ccrun repo-node \(c) exited \(byCcrun.status):\n\(byCcrun.output.suffix(4000))")
        let byAnsible = try peers.ansible([a], check: false)
        try #require(byAnsible.status == 0 && byAnsible.recap[a]?.failed == 0, "ansible-playbook on \(a):\n\(byAnsible.output.suffix(4000))")
        #expect((byAnsible.recap[a]?.changed ?? 0) > 0, "Ansible changed nothing on a bare host")
        let byPyinfra = try peers.pyinfra([p], dry: false)
        try #require(byPyinfra.status == 0, "pyinfra on \(p):\n\(byPyinfra.output.suffix(4000))")
        #expect(byPyinfra.changes > 0, "pyinfra changed nothing on a bare host")

        // Each tool audits the hosts the other two configured.
        let ansibleCheck = try peers.ansible([c, p], check: true)
        #expect(ansibleCheck.status == 0, "ansible-playbook --check exited \(ansibleCheck.status):\n\(ansibleCheck.output.suffix(4000))")
        for host in [c, p] {
            let recap = try #require(ansibleCheck.recap[host], "no PLAY RECAP line for \(host):\n\(ansibleCheck.output.suffix(3000))")
            #expect(recap.changed == 0 && recap.failed == 0 && recap.ok >= 10,
                    "Ansible --check on \(host): ok=\(recap.ok) changed=\(recap.changed) failed=\(recap.failed)\n\(ansibleCheck.output.suffix(4000))")
        }
        let pyinfraDry = try peers.pyinfra([c, a], dry: true)
        #expect(pyinfraDry.status == 0 && pyinfraDry.changes == 0, "pyinfra --dry on \(c), \(a) found changes:\n\(pyinfraDry.output.suffix(4000))")
        #expect(pyinfraDry.operations >= 15, "pyinfra's dry run listed \(pyinfraDry.operations) operations")
        let ccrunDry = try peers.ccrun(["repo-node", a, p, "--dry-run"])
        #expect(ccrunDry.status == 0, "ccrun repo-node --dry-run on \(a), \(p) exited \(ccrunDry.status) (0 = nothing to change):\n\(ccrunDry.output.suffix(4000))")

        // A change by hand (one fstab line's options) is seen by all three.
        let drifted = c
        _ = try peers.ssh(drifted, "sed -i 's#^\\([^ ]*\\) /srv/logs nfs rw,#\\1 /srv/logs nfs ro,#' /etc/fstab && grep -q ' /srv/logs nfs ro,' /etc/fstab")
        let ccrunSees = try peers.ccrun(["repo-node", drifted, "--dry-run"])
        #expect(ccrunSees.status == 2, "ccrun --dry-run after an fstab edit exited \(ccrunSees.status):\n\(ccrunSees.output.suffix(3000))")
        let ansibleSees = try peers.ansible([drifted], check: true)
        #expect(ansibleSees.recap[drifted]?.changed == 1, "Ansible --check after an fstab edit:\n\(ansibleSees.output.suffix(3000))")
        let pyinfraSees = try peers.pyinfra([drifted], dry: true)
        #expect(pyinfraSees.changes == 1, "pyinfra --dry after an fstab edit:\n\(pyinfraSees.output.suffix(3000))")
    }
}
