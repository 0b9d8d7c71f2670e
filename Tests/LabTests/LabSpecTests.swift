import Runbooks
import Testing
@testable import Lab

/// The lab's topology as data: no root, no hosts.
@Suite struct LabSpecTests {
    /// `--fleet` appends its hosts: every numbered host keeps its name and address (tests use
    /// host5 ... host14 of a 14-host lab, the benchmarks count from host15).
    @Test(arguments: [LabSpec.main(hosts: 14), .main(hosts: 4), .scratch(hosts: 2)])
    func theFleetIsAppendedAfterTheNumberedHosts(_ plain: LabSpec) {
        var fleet = plain
        fleet.fleet = true
        #expect(Array(fleet.hostNames.prefix(plain.hostCount)) == plain.hostNames)
        #expect(Array(fleet.hostNames.suffix(3)) == ["repo-node-2", "web-node-2", "lb"])
        for (index, name) in plain.hostNames.enumerated() { #expect(fleet.address(of: name) == plain.address(ofHostAt: index)) }
        #expect(fleet.address(of: "lb") == fleet.address(ofHostAt: plain.hostCount + 2))

        let inventory = DeploymentInventory.make(for: fleet)
        #expect(inventory.hasFleet && !DeploymentInventory.make(for: plain).hasFleet)
        #expect(inventory.hosts["repo-node-2"]?.roles == ["repo-node"])
        #expect(inventory.hosts["web-node-2"]?.roles == ["web-node"])
        #expect(inventory.hosts["lb"]?.roles == ["lb"])
        if plain.hostCount >= 3 { #expect(inventory.hosts["repo-node"]?.roles == ["repo-node"]) }
        if plain.hostCount >= 5 { #expect(inventory.hosts["host5"]?.roles == ["fanout"]) }
    }

    @Test func theMainLabWith14HostsPutsTheLoadBalancerAt26() {
        var spec = LabSpec.main(hosts: 14)
        spec.fleet = true
        #expect(spec.address(of: "host14") == "198.51.100.23")
        #expect(spec.address(of: "lb") == "198.51.100.26")
    }
}
