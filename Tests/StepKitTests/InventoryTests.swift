import Foundation
import SupportKit
import Testing
@testable import StepKit

@Suite struct InventoryTests {
    @Test func decodesTheSharedInventoryFormat() throws {
        let inv = try Inventory.load(Fixtures.projectDirectory.appendingPathComponent("inventories/lab.json").path)
        #expect(inv.hosts.count == 4)
        #expect(inv.hosts["nfs-master"]?.vars?["dataDevice"] == "/dev/xvdf")
        #expect(inv.hosts["repo-node"]?.port == nil, "optional fields may be left out")
        #expect(inv.hosts(withRole: "web-node") == ["web-node"])
        #expect(inv.sudoUser?.user == "deploy")
    }

    /// Issue #20, point 3: the engine's inventory is hosts and a sudo user, nothing of the CC
    /// deployment (database, NFS server, AWS, tuners: Runbooks' `DeploymentInventory`). Read
    /// from the type itself, so a field added back fails here.
    @Test func theEngineInventoryHoldsHostsAndTheSudoUserOnly() throws {
        let fields = Mirror(reflecting: Inventory(hosts: [:])).children.compactMap(\.label)
        #expect(fields == ["hosts", "sudoUser"])
        let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(
            Inventory(hosts: ["h": .init(address: "192.0.2.1")], sudoUser: .init(user: "deploy")))) as? [String: Any]
        #expect(encoded.map { Set($0.keys) } == ["hosts", "sudoUser"])
    }

    @Test func editingTheSampleFilesReplacesKeyedLines() throws {
        let fstab = try String(contentsOf: Fixtures.projectDirectory.appendingPathComponent("runbooks/fstab.sample"), encoding: .utf8)
        let edited = try #require(LineEditor.edit(fstab, line: "/dev/xvdf /srv ext4 defaults,nofail 0 0", key: .fstabMountPoint, present: true))
        #expect(edited.components(separatedBy: " /srv ").count == 2)
        #expect(edited.contains("# /dev/xvdg /backup"), "comments are kept")
        let exports = try String(contentsOf: Fixtures.projectDirectory.appendingPathComponent("runbooks/exports.sample"), encoding: .utf8)
        let e2 = try #require(LineEditor.edit(exports, line: "/srv/ccr/live 198.51.100.0/24(rw,sync)", key: .exportPath, present: true))
        #expect(e2 == "/srv/ccr/archive 198.51.100.0/24(ro,sync,no_subtree_check)\n/srv/ccr/live 198.51.100.0/24(rw,sync)\n")
    }
}
