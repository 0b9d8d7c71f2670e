// NFS pieces shared by the server (nfs-master) and client (repo-node, web-node) sections.
import Foundation
import StepKit

/// Which NFS server the host runs: the kernel's nfsd (/etc/exports, exportfs: the guide's) or the
/// userspace nfs-ganesha (EXPORT blocks in /etc/ganesha/ganesha.conf), for kernels without nfsd
/// (containers, the lab).
///
/// The inventory decides when it says (`vars.nfsServerKind` of the NFS server: kernel or
/// ganesha). Otherwise: the kernel server where nfsd is loaded or can be loaded (its module is
/// installed), and on every RPM or systemd host (the guide's Amazon Linux, where nfs-utils loads
/// the module when it starts; /proc/filesystems lists nfsd only once it is loaded, so it alone
/// would choose ganesha on a fresh host); ganesha only on a sysv Debian host whose kernel has no nfsd.
/// /proc/fs/nfsd itself is no sign: every kernel's procfs has that empty mount point; its
/// `exports` file appears only once the nfsd file system is mounted there.
public enum NFSServerKind: String, Sendable, CaseIterable {
    case kernel, ganesha

    /// The probe as the runbooks use it: `configured` (from the inventory) wins.
    public static func probe(configured: NFSServerKind? = nil) -> Probe<NFSServerKind> {
        let key = "nfs-server-kind" + (configured.map { ":" + $0.rawValue } ?? "")
        let script = configured.map { "echo \($0.rawValue)" } ?? """
            if grep -qw nfsd /proc/filesystems 2>/dev/null || [ -e /proc/fs/nfsd/exports ] \
              || [ -d "/lib/modules/$(uname -r)/kernel/fs/nfsd" ] || [ -d /run/systemd/system ] \
              || { command -v rpm >/dev/null 2>&1 && ! command -v dpkg >/dev/null 2>&1; }; then echo kernel; else echo ganesha; fi
            """
        return Probe<NFSServerKind>(FactQuery(key: key, script: script, isolation: .inline)) {
            NFSServerKind(rawValue: $0.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .ganesha
        }
    }
}

/// One line of the guide's /etc/exports.
public struct NFSExport: Sendable, Hashable {
    public var path: String
    public var clients: String
    public var options: [String]
    public var exportsLine: String { "\(path) \(clients)(\(options.joined(separator: ",")))" }
    public var readWrite: Bool { !options.contains("ro") }
    public var sync: Bool { options.contains("sync") }
    public var rootSquash: Bool { !options.contains("no_root_squash") }

    /// The same export as a ganesha EXPORT block (rw/ro -> Access_Type, no_root_squash -> Squash,
    /// sync/async -> Disable_ACL stays with no_acl, sync is ganesha's default commit behaviour).
    func ganeshaBlock(id: Int) -> String {
        """
        EXPORT {
            Export_Id = \(id);
            Path = \(path);
            Pseudo = \(path);
            Protocols = 3, 4;
            Transports = TCP, UDP;
            Access_Type = \(readWrite ? "RW" : "RO");
            Squash = \(rootSquash ? "Root_Squash" : "No_Root_Squash");
            Disable_ACL = \(options.contains("no_acl") ? "true" : "false");
            # \(sync ? "sync" : "async") in /etc/exports terms
            CLIENT { Clients = \(clients); }
            FSAL { Name = VFS; }
        }

        """
    }
}

/// The exports, rendered for the server the host runs: /etc/exports (lines matched by path)
/// plus `exportfs -ar` only when the file changed; or ganesha's configuration and a restart.
public struct NFSExports: Step {
    public let exports: [NFSExport]
    public let description: String
    /// The inventory's choice of NFS server, when it makes one.
    public let kind: NFSServerKind?
    public static let exportsPath = "/etc/exports"
    public static let ganeshaPath = "/etc/ganesha/ganesha.conf"
    public init(_ exports: [NFSExport], kind: NFSServerKind? = nil, description: String) {
        self.exports = exports; self.kind = kind; self.description = description
    }
    var kindProbe: Probe<NFSServerKind> { NFSServerKind.probe(configured: kind) }
    public var id: String { "nfs-exports" }
    var exportsProbe: Probe<FileState?> { FileProbe.probe(Self.exportsPath) }
    var ganeshaProbe: Probe<FileState?> { FileProbe.probe(Self.ganeshaPath) }
    public var facts: [FactQuery] { [SystemProbe.probe.query, kindProbe.query, exportsProbe.query, ganeshaProbe.query] }

    /// /etc/exports with each of our lines replacing the line for the same path (or appended).
    public func exportsText(from old: String) -> String {
        LineEditor.edit(old, lines: exports.map(\.exportsLine), key: .exportPath) ?? old
    }

    public var ganeshaText: String {
        "# CC Repository exports (written by ccrun from the deployment guide's /etc/exports)\n\n"
            + exports.enumerated().map { $0.element.ganeshaBlock(id: $0.offset + 1) }.joined(separator: "\n")
    }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        switch try facts[kindProbe] {
        case .kernel:
            let old = try facts[exportsProbe]?.content.map { String(decoding: $0, as: UTF8.self) } ?? ""
            let file = File(Self.exportsPath, content: SecretText(exportsText(from: old)), mode: "644")
            guard case var .change(c) = try file.plan(facts, context: context) else { return .satisfied }
            // Changes the kernel's export table, which no step probes.
            c.actions.append(.shell(ShellAction("exportfs -ar", script: "exportfs -ar", affects: .keys([]))))
            c.undo.append(.runScript(summary: "exportfs -ar", script: "exportfs -ar"))
            return .change(c)
        case .ganesha:
            let file = File(Self.ganeshaPath, content: SecretText(ganeshaText), mode: "644")
            guard case var .change(c) = try file.plan(facts, context: context) else { return .satisfied }
            // ganesha re-reads EXPORT blocks on restart (its reload only adds exports).
            let restart = "if service nfs-ganesha status >/dev/null 2>&1; then service nfs-ganesha restart; fi"
            c.actions.append(.shell(ShellAction("restart nfs-ganesha to load the exports", script: restart, affects: .keys([]))))
            c.undo.append(.runScript(summary: "restart nfs-ganesha", script: restart))
            return .change(c)
        }
    }
}

/// The guide's "set up NFS client" steps shared by repository and web servers.
public enum NFSClient {
    /// nfs-utils and rpcbind (RPM) / nfs-common and rpcbind (Debian); rpcbind and the lock
    /// service (nfslock / nfs-common's statd) started and enabled.
    public static func steps() -> [any Step] {
        [ByFact.packages(apt: ["nfs-common", "rpcbind"], rpm: ["nfs-utils", "rpcbind"], "install the NFS client (nfs-utils or nfs-common, and rpcbind)")]
            + ByFact.service(apt: "rpcbind", rpm: "rpcbind", answers: .tcpPort(111), "rpcbind")
            + lockService()
    }

    /// Guide (repository and web servers): "sudo service nfslock start" / "sudo chkconfig nfslock on";
    /// (NFS server): "sudo service nfslock start" / "sudo chkconfig nfslock on".
    /// Decision: kept on every host. nfslock is rpc.statd, the status monitor NFSv3 locking (NLM)
    /// needs on both client and server (nfs-ganesha does NLM itself but asks the host's rpc.statd
    /// for NSM, as Debian's own unit pulls rpc-statd in). RPM hosts call it `nfslock`; on Debian the
    /// same daemon is started by nfs-common's init script, whose `status` also asks for rpc.idmapd
    /// (NFSv4 only, not run here), so "running" is checked by rpc.statd itself.
    /// On systemd hosts (Debian and Amazon Linux 2023 alike) the daemon's unit is `rpc-statd`:
    /// Debian masks `nfs-common` there and AL2023 has no `nfslock`. It is a static unit (no
    /// [Install]; the NFS server's unit and NFS mounts start it), so there is nothing to enable.
    public static func lockService() -> [any Step] {
        let description = "the NFS lock service (nfslock: rpc.statd)", check = ServiceCheck.process("rpc.statd")
        @Sendable func variant(_ facts: FactSet) throws -> String {
            let system = try facts[SystemProbe.probe]
            if system.initSystem == .systemd { return "systemd" }
            guard let pm = system.packageManager else { throw StepRefusal("no apt-get, dnf or yum on this \(system.distribution) host") }
            return pm == .apt ? "apt" : "rpm"
        }
        return [ByFact(id: "running:nfs-common|nfslock", description + " started",
                       candidates: ["apt": ServiceRunning("nfs-common", answers: check), "rpm": ServiceRunning("nfslock", answers: check),
                                    "systemd": ServiceRunning("rpc-statd", answers: check)], select: variant),
                ByFact(id: "enabled:nfs-common|nfslock", description + " enabled at boot",
                       candidates: ["apt": ServiceEnabled("nfs-common"), "rpm": ServiceEnabled("nfslock"),
                                    "systemd": ServiceEnabled("rpc-statd")], select: variant)]
    }

    /// The three fstab lines, mounted (`sudo mount -a`).
    public static func mounts(server: String, web: String, logs: String, archive: String) -> [any Step] {
        [
            Mount(nfs: server, Paths.web, at: Paths.web, options: web),
            Mount(nfs: server, Paths.logs, at: Paths.logs, options: logs),
            Mount(nfs: server, Paths.archive, at: Paths.archive, options: archive),
        ]
    }
}
