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
        #expect(inv.database?.port == 3306 && inv.nfsServer == "nfs-master")
    }

    @Test func databasePasswordComesFromItsFileAndStaysMasked() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pw-\(UUID().uuidString)")
        try "PLANTED-pw\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let db = Inventory.Database(host: "198.51.100.10", port: 3306, adminUser: "root", adminPasswordFile: file.path)
        let ep = try db.adminEndpoint()
        #expect(ep.password.reveal() == "PLANTED-pw")
        #expect(!"\(ep) \(ep.password)".contains("PLANTED"))
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
