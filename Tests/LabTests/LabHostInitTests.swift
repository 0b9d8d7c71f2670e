import Foundation
@testable import Lab
import Testing

/// Host-free: what `ccrun lab up --init systemd` records, and what later `lab` commands read back.
@Suite("Lab host init kinds")
struct LabHostInitTests {
    @Test("a systemd lab's inventory marks every host and makes its NFS server nfs-ganesha")
    func systemdInventory() throws {
        var spec = LabSpec.main()
        spec.hostInit = .systemd
        let inventory = LabInventoryFile.make(for: spec)
        #expect(inventory.hosts.values.allSatisfy { $0.vars[LabInventoryFile.initVar] == "systemd" })
        // The kernel has no nfsd, and a systemd host's default is the kernel server.
        #expect(inventory.hosts["nfs-master"]?.vars["nfsServerKind"] == "ganesha")
        #expect(inventory.hosts["repo-node"]?.vars["nfsServerKind"] == nil)
        let decoded = try JSONDecoder().decode(LabInventoryFile.self, from: Data(try inventory.encoded().utf8))
        #expect(decoded.hostInit == .systemd)
    }

    @Test("a sysv lab's inventory is as before: no init variable, the NFS server kind left to the host")
    func sysvInventory() {
        let inventory = LabInventoryFile.make(for: .main())
        #expect(inventory.hostInit == .sysv)
        #expect(inventory.hosts.values.allSatisfy { $0.vars[LabInventoryFile.initVar] == nil && $0.vars["nfsServerKind"] == nil })
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
