// Pieces every guide section uses: what a deployment needs to know (from the inventory),
// steps chosen by probed facts, the ccr user, restarts when a configuration changes.
import LeanFoundation
import StepKit

/// What the runbooks need to know about a deployment. Built by ccrun from the inventory:
/// no address, password or path of the lab is written in a runbook.
public struct Deployment: Sendable {
    /// The NFS server as clients name it in fstab (`nfs_server` in the guide).
    public var nfsServer: String
    /// The admin account on the MySQL/MariaDB server (RDS in the guide).
    public var admin: DatabaseEndpoint
    /// The read-only (web) and read-write (ccr) accounts' passwords.
    public var readOnlyPassword: Secret
    public var readWritePassword: Secret
    /// The database name (`cc` in the guide).
    public var databaseName: String
    /// The web servers' read-only and ccr's read-write accounts (`cc_ro`, `cc_rw` in the guide).
    public var readOnlyUser: String
    public var readWriteUser: String
    /// The statically linked release `ccr` built on the controller (mapped, digest computed once).
    public var ccrBinary: Payload
    /// `ccr schema --dialect mysql` of that binary.
    public var schemaSQL: String
    /// packaging/init.d/* and packaging/systemd/*.service, by service name.
    public var serviceFiles: [String: ServiceFiles]
    /// The NFS master's data volume (`/dev/xvdf` in the guide).
    public var dataDevice: String
    public var forceMkfs: Bool
    /// The NFS server to run on the NFS master (inventory `vars.nfsServerKind`); nil: probed.
    public var nfsServerKind: NFSServerKind?
    /// The password tuners send (`ccextractor -tcppassword`); nil when the inventory turns it off.
    public var tunerPassword: Secret?
    /// The servers the load balancer sends tuners and visitors to: the inventory's hosts with
    /// roles repo-node and web-node.
    public var repoNodes: [BalancedServer] = []
    public var webNodes: [BalancedServer] = []
    /// The addresses of the inventory's load balancers (role lb): the repository servers take a
    /// PROXY header from them (`proxy_protocol_from`), which `send-proxy-v2` sends.
    public var loadBalancers: [String] = []

    public init(nfsServer: String, admin: DatabaseEndpoint, readOnlyPassword: Secret, readWritePassword: Secret,
                databaseName: String = "cc", readOnlyUser: String = "cc_ro", readWriteUser: String = "cc_rw",
                ccrBinary: Payload, schemaSQL: String, serviceFiles: [String: ServiceFiles],
                dataDevice: String = "/dev/xvdf", forceMkfs: Bool = false, tunerPassword: Secret? = nil) {
        self.tunerPassword = tunerPassword
        self.nfsServer = nfsServer; self.admin = admin; self.readOnlyPassword = readOnlyPassword
        self.readWritePassword = readWritePassword; self.databaseName = databaseName
        self.readOnlyUser = readOnlyUser; self.readWriteUser = readWriteUser; self.ccrBinary = ccrBinary
        self.schemaSQL = schemaSQL; self.serviceFiles = serviceFiles; self.dataDevice = dataDevice; self.forceMkfs = forceMkfs
    }

    /// This deployment for one host: its inventory `vars` that runbooks read (`dataDevice`,
    /// `nfsServerKind`), checked.
    public func applying(hostVars vars: [String: String]?) throws -> Deployment {
        var d = self
        if let dev = vars?["dataDevice"] { d.dataDevice = dev }
        if let kind = vars?["nfsServerKind"] {
            guard let k = NFSServerKind(rawValue: kind) else {
                throw StepRefusal("inventory vars.nfsServerKind is \"\(kind)\": expected \(NFSServerKind.allCases.map(\.rawValue).joined(separator: " or "))")
            }
            d.nfsServerKind = k
        }
        return d
    }

    func files(_ service: String) throws -> ServiceFiles {
        guard let f = serviceFiles[service] else { throw StepRefusal("no packaging files for service \(service) (packaging/init.d/\(service))") }
        return f
    }
}

/// A service's sysv script and systemd unit, as shipped in packaging/.
public struct ServiceFiles: Sendable, Hashable {
    public var sysvScript: String
    public var systemdUnit: String
    public init(sysvScript: String, systemdUnit: String) { self.sysvScript = sysvScript; self.systemdUnit = systemdUnit }

    /// Reads packaging/init.d/NAME and packaging/systemd/NAME.service under `root`.
    public static func load(_ name: String, packagingDirectory root: String) throws -> ServiceFiles {
        func read(_ p: String) throws -> String {
            guard let d = FileManager.default.contents(atPath: p) else { throw StepRefusal("cannot read \(p)") }
            return String(decoding: d, as: UTF8.self)
        }
        return ServiceFiles(sysvScript: try read("\(root)/init.d/\(name)"), systemdUnit: try read("\(root)/systemd/\(name).service"))
    }
}

/// Where the CC Repository lives on every host: the guide's directories.
public enum Paths {
    public static let srv = "/srv"
    public static let logs = "/srv/logs"
    public static let web = "/srv/web"
    public static let archive = "/srv/archive"
    public static let ccrBinary = "/usr/local/bin/ccr"
    public static let configDirectory = "/etc/ccr"
    public static let config = "/etc/ccr/ccr.conf"
    public static let stamps = "/var/lib/ccrun/stamps"
    /// Where a ccr service's sysv script (packaging/init.d, `LOGFILE`) sends its output: read
    /// for the reason when the service is not running (systemd hosts: the unit's journal).
    public static func serviceLog(_ service: String) -> String { "/var/log/\(service).log" }
    /// The ccr user has the same uid on every host, so files written over NFS keep their owner.
    public static let ccrUID = 930
}

// MARK: - Steps chosen by facts

/// One of several steps, chosen from probed facts (distribution, init system, NFS server kind):
/// distribution differences are facts, not forks of a runbook.
public struct ByFact: Step {
    public let id: String
    public let description: String
    public let selector: [FactQuery]
    public let candidates: [String: any Step]
    public let select: @Sendable (FactSet) throws -> String

    public init(id: String, _ description: String, selector: [FactQuery] = [], candidates: [String: any Step],
                select: @escaping @Sendable (FactSet) throws -> String) {
        self.id = id; self.description = description; self.selector = selector; self.candidates = candidates; self.select = select
    }

    public var facts: [FactQuery] {
        var seen = Set<String>(), out: [FactQuery] = []
        for q in [SystemProbe.probe.query] + selector + candidates.keys.sorted().flatMap({ candidates[$0]!.facts }) where seen.insert(q.key).inserted {
            out.append(q)
        }
        return out
    }
    public var affects: FactScope {
        var keys = Set<String>()
        for c in candidates.values {
            switch c.affects {
            case .everything: return .everything
            case let .keys(k): keys.formUnion(k)
            }
        }
        return .keys(keys)
    }
    public var secrets: [Secret] { candidates.values.flatMap(\.secrets) }
    public var reversibility: Reversibility {
        for c in candidates.values { if case .irreversible = c.reversibility { return c.reversibility } }
        return .reversible
    }
    public var fingerprint: String { SHA256Digest.hex(id + candidates.keys.sorted().map { $0 + "=" + candidates[$0]!.fingerprint }.joined(separator: ",")) }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        let key = try select(facts)
        guard let step = candidates[key] else { throw StepRefusal("\(id): no variant for \(key) (known: \(candidates.keys.sorted().joined(separator: ", ")))") }
        return try step.plan(facts, context: context)
    }

    /// Variants by package manager: "apt" or "rpm" (dnf and yum share package names).
    public static func perDistribution(id: String, _ description: String, apt: any Step, rpm: any Step) -> ByFact {
        ByFact(id: id, description, candidates: ["apt": apt, "rpm": rpm]) { facts in
            let system = try facts[SystemProbe.probe]
            guard let pm = system.packageManager else { throw StepRefusal("no apt-get, dnf or yum on this \(system.distribution) host") }
            return pm == .apt ? "apt" : "rpm"
        }
    }

    /// Packages whose names differ between Debian-likes and RPM distributions.
    public static func packages(apt: [String], rpm: [String], _ description: String) -> ByFact {
        perDistribution(id: "packages:" + apt.joined(separator: ","), description, apt: PackageInstalled(apt), rpm: PackageInstalled(rpm))
    }

    /// A service whose name differs (apache2 vs httpd): running (answering `check`) and enabled at boot.
    public static func service(apt: String, rpm: String, answers check: ServiceCheck? = nil, _ description: String) -> [any Step] {
        [perDistribution(id: "running:\(apt)|\(rpm)", description + " started", apt: ServiceRunning(apt, answers: check), rpm: ServiceRunning(rpm, answers: check)),
         perDistribution(id: "enabled:\(apt)|\(rpm)", description + " enabled at boot", apt: ServiceEnabled(apt), rpm: ServiceEnabled(rpm))]
    }
}

/// A service definition from packaging/: the sysv script in /etc/init.d on sysv hosts, the
/// systemd unit in /etc/systemd/system on systemd hosts (then `systemctl daemon-reload`).
public func serviceDefinition(_ name: String, files: ServiceFiles) -> any Step {
    let sysv = File("/etc/init.d/\(name)", content: SecretText(files.sysvScript), mode: "755")
    let unit = File("/etc/systemd/system/\(name).service", content: SecretText(files.systemdUnit), mode: "644")
    return ByFact(id: "service-definition:\(name)", "install the \(name) service (init script or systemd unit, as the host's init is)",
                  candidates: ["sysv": sysv, "systemd": ReloadingSystemd(unit)]) { facts in
        try facts[SystemProbe.probe].initSystem == .systemd ? "systemd" : "sysv"
    }
}

/// A systemd unit file; systemd re-reads units after it changes.
struct ReloadingSystemd: Step {
    let file: File
    init(_ file: File) { self.file = file }
    var id: String { file.id }
    var description: String { file.description }
    var facts: [FactQuery] { file.facts }
    var affects: FactScope { file.affects }
    func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        guard case var .change(c) = try file.plan(facts, context: context) else { return try file.plan(facts, context: context) }
        c.actions.append(.shell(ShellAction("systemctl daemon-reload", script: "systemctl daemon-reload")))
        return .change(c)
    }
}

// MARK: - Small shared steps

/// The `ccr` system user, with the same uid on every host (files on the NFS volume keep their owner).
public func ccrUser() -> any Step {
    let uid = Paths.ccrUID
    return GuardedCommand(id: "user-ccr", "create the ccr system user (uid \(uid) on every host)",
        command: "getent group ccr >/dev/null || groupadd -r -g \(uid) ccr; useradd -r -u \(uid) -g ccr -d /var/lib/ccr -s /bin/false ccr",
        unless: "id -u ccr >/dev/null 2>&1",
        undo: "userdel ccr 2>/dev/null; groupdel ccr 2>/dev/null; true")
}

/// Restarts (or reloads) a running service when one of the files it reads changed since the
/// last run: the files' SHA-256 sums are kept in /var/lib/ccrun/stamps. A stopped service is
/// left to the `ServiceRunning` step that follows.
///
/// WHY a step of its own (not a guarded command): its facts are the files themselves, so when an
/// earlier step of the same run uploads the binary or rewrites the configuration, the engine
/// re-probes them here and the restart happens in that same run.
public func restartWhenChanged(_ service: String, files: [String], reload: Bool = false) -> any Step {
    RestartWhenChanged(service: service, files: files, reload: reload)
}

struct RestartWhenChanged: Step {
    let service: String
    let files: [String]
    let reload: Bool
    var stampPath: String { "\(Paths.stamps)/\(service).sha256" }
    var id: String { "\(reload ? "reload" : "restart")-\(service)" }
    var description: String { "\(reload ? "reload" : "restart") \(service) when \(files.joined(separator: ", ")) changed" }
    var fileProbes: [Probe<FileState?>] { files.map { FileProbe.probe($0, content: false) } }
    var stampProbe: Probe<FileState?> { FileProbe.probe(stampPath) }
    var facts: [FactQuery] { fileProbes.map(\.query) + [stampProbe.query] }
    /// Everything: a restart changes what the service probes of later steps see (a service that
    /// does not come back must be seen stopped by the `ServiceRunning` step that follows).
    var affects: FactScope { .everything }

    func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        var wanted = ""
        for (file, probe) in zip(files, fileProbes) { wanted += "\(try facts[probe]?.sha256 ?? "-")  \(file)\n" }
        let current = try facts[stampProbe]?.content.map { String(decoding: $0, as: UTF8.self) }
        if current == wanted { return .satisfied }
        let verb = reload ? "reload" : "restart"
        let s = Shell.quote(service)
        let restart = """
            if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl is-active --quiet \(s) && systemctl \(verb) \(s); \
            elif [ -x /etc/init.d/\(s) ] && service \(s) status >/dev/null 2>&1; then service \(s) \(verb); fi
            mkdir -p \(Paths.stamps) && printf %s \(Shell.quote(wanted)) > \(Shell.quote(stampPath))
            """
        return .change(Change(actions: [.shell(ShellAction("\(verb) \(service) if running", script: restart))],
                              diff: current == nil ? "\(service): no record of the files it was started with\n" : "\(service): \(files.joined(separator: ", ")) changed\n",
                              undo: [.runScript(summary: "forget \(stampPath)", script: "rm -f \(Shell.quote(stampPath))")]))
    }
}
