import Foundation
@testable import Lab
import Runbooks
import StepKit
import Testing

/// Host-free: what `ccrun lab up --init systemd` records, and what later `lab` commands read back.
@Suite("Lab host init kinds")
struct LabHostInitTests {
    @Test("a systemd lab's inventory marks every host and makes its NFS server nfs-ganesha")
    func systemdInventory() throws {
        var spec = LabSpec.main()
        spec.hostInit = .systemd
        let inventory = DeploymentInventory.make(for: spec)
        #expect(inventory.hosts.values.allSatisfy { $0.vars?[DeploymentInventory.initVar] == "systemd" })
        // The kernel has no nfsd, and a systemd host's default is the kernel server.
        #expect(inventory.hosts["nfs-master"]?.vars?["nfsServerKind"] == "ganesha")
        #expect(inventory.hosts["repo-node"]?.vars?["nfsServerKind"] == nil)
        let decoded = try JSONDecoder().decode(DeploymentInventory.self, from: Data(try inventory.encoded().utf8))
        #expect(decoded.hostInit == .systemd)
    }

    @Test("a sysv lab's inventory is as before: no init variable, the NFS server kind left to the host")
    func sysvInventory() {
        let inventory = DeploymentInventory.make(for: .main())
        #expect(inventory.hostInit == .sysv)
        #expect(inventory.hosts.values.allSatisfy { $0.vars?[DeploymentInventory.initVar] == nil && $0.vars?["nfsServerKind"] == nil })
    }

    @Test("each kind has its own root filesystem cache and package list")
    func rootfsPerKind() {
        var spec = LabSpec.main()
        #expect(spec.rootfsPath == "/var/cache/ccrun-lab/rootfs")
        spec.hostInit = .systemd
        #expect(spec.rootfsPath == "/var/cache/ccrun-lab/rootfs-systemd")
        #expect(Set(LabPackages.rootfs(for: .systemd)).isSuperset(of: ["systemd", "systemd-sysv", "dbus", "openssh-server"]))
        #expect(!LabPackages.rootfs(for: .sysv).contains("systemd"))
        #expect(LabPackages.machine.contains("systemd-container"))
    }
}

/// Issue #20, point 3: the lab writes the type ccrun reads. The file `ccrun lab up` writes
/// decodes with ccrun's `DeploymentInventory` (and the engine's `Inventory`), and writing it again
/// gives the same bytes, for each kind of lab.
@Suite("Lab inventory is ccrun's inventory")
struct LabInventoryContractTests {
    @Test("the inventory the lab writes decodes with ccrun's type and round-trips", arguments: [false, true])
    func labInventoryRoundTrips(fleet: Bool) throws {
        for hostInit in [LabHostInit.sysv, .systemd] {
            var spec = LabSpec.main()
            spec.fleet = fleet
            spec.hostInit = hostInit
            let text = try DeploymentInventory.make(for: spec).encoded()
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("lab-inventory-\(UUID().uuidString).json")
            try text.write(to: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: file) }
            let read = try DeploymentInventory.load(file.path)
            #expect(try read.encoded() == text)
            #expect(read.database?.adminPasswordFile == spec.dbPasswordFile && read.nfsServer == spec.nfsServerHost)
            #expect(read.aws?.endpoint == spec.motoEndpoint && read.aptRepository == "http://\(spec.bridgeAddress)/")
            #expect(try Inventory.load(file.path) == read.base)
            #expect(read.hostInit == hostInit && read.hasFleet == fleet)
        }
    }
}
