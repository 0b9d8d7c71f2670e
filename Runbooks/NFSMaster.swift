// Guide: "Configuring NFS server" — the data volume on /srv, the repository directories,
// ccr-watchdog (now `ccr watchdog`), and the NFS server with the three exports.
import LeanFoundation
import StepKit

public enum NFSMasterRunbook {
    public static let name = "nfs-master"

    /// The guide's /etc/exports.
    public static let exports = [
        NFSExport(path: Paths.archive, clients: "*", options: ["rw", "async", "no_root_squash", "no_acl"]),
        NFSExport(path: Paths.web, clients: "*", options: ["rw", "sync", "no_root_squash", "no_acl"]),
        NFSExport(path: Paths.logs, clients: "*", options: ["rw", "sync", "no_root_squash", "no_acl"]),
    ]

    public static func make(_ d: Deployment) throws -> Runbook {
        let dev = d.dataDevice
        let kind = NFSServerKind.probe(configured: d.nfsServerKind)
        var steps: [any Step] = [
            // 4. sudo mkfs -t ext4 /dev/xvdf  (only when the volume is blank)
            FileSystem("ext4", on: dev, force: d.forceMkfs, description: "create an ext4 file system on \(dev) (only when it is blank)"),
            // 5.-6. fstab line, sudo mount -a
            Mount(dev, at: Paths.srv, type: "ext4", options: "defaults,nofail",
                  description: "add `\(dev) /srv ext4 defaults,nofail 0 0` to /etc/fstab and mount it"),
        ]
        // 8.-11. ccr shipped (with the ccr user, uid shared by all hosts) ...
        steps += ShipCCR.steps(d)
        // 7. sudo mkdir /srv/logs /srv/web /srv/archive
        steps += [
            Directory(Paths.logs, mode: "1777", description: "create /srv/logs (every service writes its log there)"),
            Directory(Paths.web, mode: "755", owner: "ccr", group: "ccr", description: "create /srv/web"),
            Directory(Paths.archive, mode: "755", owner: "ccr", group: "ccr", description: "create /srv/archive (ccr writes recordings there)"),
        ]
        // ... ccr-watchdog, configured with cc_rw in /etc/ccr, started and enabled
        steps += [
            ShipCCR.config(ShipCCR.databaseSection(d, user: d.readWriteUser, password: d.readWritePassword),
                           description: "write /etc/ccr/ccr.conf for the watchdog (database host, cc_rw and its password; 0600)"),
            serviceDefinition("ccr-watchdog", files: try d.files("ccr-watchdog")),
            restartWhenChanged("ccr-watchdog", files: [Paths.config, Paths.ccrBinary]),
            ServiceRunning("ccr-watchdog", answers: .all([.mainProcess(unit: "ccr-watchdog", pidFile: "/run/ccr-watchdog.pid"), ShipCCR.heartbeat("watchdog")]),
                           logFile: Paths.serviceLog("ccr-watchdog"),
                           description: "ccr-watchdog started, staying up and beating its heartbeat in the database (the guide's service ccr-watchdog start)"),
            ServiceEnabled("ccr-watchdog", description: "ccr-watchdog enabled at boot (the guide's chkconfig ccr-watchdog on)"),
        ]
        // 12.-15. the NFS server: packages, exports, services
        steps += [
            ByFact(id: "packages:nfs-server", "install the NFS server (nfs-utils and rpcbind; nfs-ganesha where the kernel has no nfsd)",
                   selector: [kind.query],
                   candidates: ["kernel-apt": PackageInstalled(["nfs-kernel-server", "rpcbind"]),
                                "kernel-rpm": PackageInstalled(["nfs-utils", "rpcbind"]),
                                "ganesha-apt": PackageInstalled(["nfs-ganesha", "nfs-ganesha-vfs", "rpcbind"]),
                                "ganesha-rpm": PackageInstalled(["nfs-ganesha", "nfs-ganesha-vfs", "rpcbind"])]) { f in
                let pm = try f[SystemProbe.probe].packageManager
                return "\(try f[kind].rawValue)-\(pm == .apt ? "apt" : "rpm")"
            },
            NFSExports(exports, kind: d.nfsServerKind, description: "export /srv/archive, /srv/web and /srv/logs (/etc/exports and exportfs -ar, or ganesha EXPORT blocks)"),
        ]
        steps += ByFact.service(apt: "rpcbind", rpm: "rpcbind", answers: .tcpPort(111), "rpcbind")
        steps += NFSClient.lockService()   // the guide's nfslock (see NFSClient.lockService)
        steps += [
            ByFact(id: "running:nfs-server", "the NFS server running: nfs-kernel-server, nfs or nfs-ganesha (the guide's service nfs start)", selector: [kind.query],
                   candidates: ["kernel-apt": ServiceRunning("nfs-kernel-server"), "kernel-rpm": ServiceRunning("nfs"),
                                "ganesha": ServiceRunning("nfs-ganesha", answers: .tcpPort(2049))], select: nfsVariant(kind)),
            ByFact(id: "enabled:nfs-server", "the NFS server enabled at boot (the guide's chkconfig nfs on)", selector: [kind.query],
                   candidates: ["kernel-apt": ServiceEnabled("nfs-kernel-server"), "kernel-rpm": ServiceEnabled("nfs"),
                                "ganesha": ServiceEnabled("nfs-ganesha")], select: nfsVariant(kind)),
        ]
        return Runbook(name, steps: steps)
    }

    static func nfsVariant(_ kind: Probe<NFSServerKind>) -> @Sendable (FactSet) throws -> String {
        { f in
            if try f[kind] == .ganesha { return "ganesha" }
            return try f[SystemProbe.probe].packageManager == .apt ? "kernel-apt" : "kernel-rpm"
        }
    }
}
