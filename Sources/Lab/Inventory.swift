import LeanFoundation

/// The inventory file `ccrun lab up` writes (contract: notes/inventory.md). Secrets are not in it,
/// only paths to 0600 files.
public struct LabInventoryFile: Codable, Sendable, Equatable {
    public struct Host: Codable, Sendable, Equatable {
        public var address: String
        public var port: Int
        public var user: String
        public var identityFile: String
        public var knownHosts: String
        public var roles: [String]
        public var vars: [String: String]
    }

    public struct SudoUser: Codable, Sendable, Equatable {
        public var user: String
        public var identityFile: String
    }

    public struct Database: Codable, Sendable, Equatable {
        public var host: String
        public var port: Int
        public var adminUser: String
        public var adminPasswordFile: String
    }

    public struct AWS: Codable, Sendable, Equatable {
        public var endpoint: String
        public var region: String
        public var credentialsFile: String
    }

    public var hosts: [String: Host]
    public var sudoUser: SudoUser
    public var database: Database
    public var nfsServer: String?
    public var aws: AWS
    /// The lab's apt repository (`deb [trusted=yes] URL ./`), reachable from the hosts only.
    public var aptRepository: String?

    public static func load(from path: String) throws -> LabInventoryFile {
        try JSONDecoder().decode(LabInventoryFile.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    public func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }

    /// Host variable naming a host's init kind when it is not the default (sysv); `Lab.existing`
    /// reads it back so later `lab` commands treat the hosts as they were made.
    public static let initVar = "labInit"

    /// The init kind the hosts of this inventory were made with.
    public var hostInit: LabHostInit {
        hosts.values.compactMap { $0.vars[Self.initVar].flatMap(LabHostInit.init(rawValue:)) }.first ?? .sysv
    }

    /// True when the inventory holds the fleet's hosts (`ccrun lab up --fleet`).
    public var hasFleet: Bool { LabSpec.fleetHostNames.allSatisfy { hosts[$0] != nil } }

    /// Builds the inventory of a lab described by `spec`.
    static func make(for spec: LabSpec) -> LabInventoryFile {
        var hosts: [String: Host] = [:]
        for (index, name) in spec.hostNames.enumerated() {
            var vars = ["netns": spec.namespace(of: name), "hostname": name]
            if spec.blockDeviceHosts.contains(name) { vars["dataDevice"] = "/dev/xvdf" }
            if spec.hostInit != .sysv { vars[Self.initVar] = spec.hostInit.rawValue }
            // The machine's kernel has no nfsd, and a systemd host's default is the kernel
            // server (docs/lab.md "NFS in the lab"): the lab's NFS server is nfs-ganesha.
            if spec.hostInit == .systemd, name == spec.nfsServerHost { vars["nfsServerKind"] = "ganesha" }
            hosts[name] = Host(address: spec.address(ofHostAt: index), port: 22, user: "root",
                               identityFile: spec.identityFile, knownHosts: spec.knownHostsFile,
                               roles: [spec.role(of: name)], vars: vars)
        }
        return LabInventoryFile(
            hosts: hosts,
            sudoUser: SudoUser(user: "deploy", identityFile: spec.identityFile),
            database: Database(host: spec.address(ofHostAt: 0), port: spec.mariaDBPort,
                               adminUser: spec.mariaDBAdminUser, adminPasswordFile: spec.dbPasswordFile),
            nfsServer: spec.nfsServerHost,
            aws: AWS(endpoint: spec.motoEndpoint, region: spec.region, credentialsFile: spec.awsCredentialsFile),
            aptRepository: "http://\(spec.bridgeAddress)/")
    }
}
