import LeanFoundation
import StepKit

/// The inventory file of a CC Repository deployment, as `ccrun lab up` writes it and every ccrun
/// command reads it (docs/inventory.md): StepKit's hosts and sudo user, plus what the guide's
/// runbooks need beside them (the database, the NFS server, the tuners' password, the AWS
/// account, the lab's apt repository). One JSON object: the engine's keys and these sit side by
/// side, so the file's format is the one it always was.
public struct DeploymentInventory: Codable, Sendable, Equatable {
    /// The database the runbooks create the schema and accounts in (admin password: a file's path).
    public struct Database: Codable, Sendable, Equatable {
        public var host: String
        public var port: Int?
        public var adminUser: String
        public var adminPasswordFile: String?
        /// The database and the two accounts the runbooks create (the guide's `cc`, `cc_ro`, `cc_rw`).
        public var name: String?
        public var readOnlyUser: String?
        public var readWriteUser: String?

        public init(host: String, port: Int? = nil, adminUser: String, adminPasswordFile: String? = nil,
                    name: String? = nil, readOnlyUser: String? = nil, readWriteUser: String? = nil) {
            self.host = host; self.port = port; self.adminUser = adminUser; self.adminPasswordFile = adminPasswordFile
            self.name = name; self.readOnlyUser = readOnlyUser; self.readWriteUser = readWriteUser
        }

        /// The admin endpoint, with the password read from its file.
        public func adminEndpoint() throws -> DatabaseEndpoint {
            let pw = try adminPasswordFile.map { try Secret(label: "db-admin-password", contentsOfFile: $0) } ?? Secret(label: "db-admin-password", value: "")
            return DatabaseEndpoint(host: host, port: port ?? 3306, user: adminUser, password: pw)
        }
    }

    /// Where the AWS account is: the part of the "aws" object the lab writes. `ccrun aws` reads
    /// the whole object (CloudAPI's `AWSSettings`, a superset of these keys) from the same file.
    public struct AWS: Codable, Sendable, Equatable {
        public var endpoint: String?
        public var region: String?
        public var credentialsFile: String?
        public init(endpoint: String? = nil, region: String? = nil, credentialsFile: String? = nil) {
            self.endpoint = endpoint; self.region = region; self.credentialsFile = credentialsFile
        }
    }

    /// The engine's part: hosts and sudo user.
    public var base: Inventory
    public var database: Database?
    /// The NFS master's inventory name (default: the host with role nfs-master).
    public var nfsServer: String?
    public var aws: AWS?
    /// False turns the tuners' password off (`ccr serve` then accepts any tuner); by default the
    /// deployment generates one (like the database passwords: a 0600 file, or CCR_TUNER_PASSWORD).
    public var tunerPassword: Bool?
    /// The lab's apt repository (`deb [trusted=yes] URL ./`), reachable from the lab's hosts only.
    public var aptRepository: String?

    public init(hosts: [String: Inventory.Host], sudoUser: Inventory.SudoUser? = nil, database: Database? = nil, nfsServer: String? = nil,
                aws: AWS? = nil, tunerPassword: Bool? = nil, aptRepository: String? = nil) {
        base = Inventory(hosts: hosts, sudoUser: sudoUser)
        self.database = database; self.nfsServer = nfsServer; self.aws = aws
        self.tunerPassword = tunerPassword; self.aptRepository = aptRepository
    }

    /// The engine's hosts (`base.hosts`).
    public var hosts: [String: Inventory.Host] {
        get { base.hosts }
        set { base.hosts = newValue }
    }
    /// The engine's sudo user (`base.sudoUser`).
    public var sudoUser: Inventory.SudoUser? {
        get { base.sudoUser }
        set { base.sudoUser = newValue }
    }

    /// Host names with a role, in name order.
    public func hosts(withRole role: String) -> [String] { base.hosts(withRole: role) }

    public static func load(_ path: String) throws -> DeploymentInventory {
        try Inventory.load(path, as: DeploymentInventory.self)
    }

    /// The file as the lab writes it: sorted keys, indented, slashes as they are.
    public func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }

    private enum CodingKeys: String, CodingKey { case database, nfsServer, aws, tunerPassword, aptRepository }

    /// The engine's keys and the deployment's are read from the same object.
    public init(from decoder: any Decoder) throws {
        base = try Inventory(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        database = try c.decodeIfPresent(Database.self, forKey: .database)
        nfsServer = try c.decodeIfPresent(String.self, forKey: .nfsServer)
        aws = try c.decodeIfPresent(AWS.self, forKey: .aws)
        tunerPassword = try c.decodeIfPresent(Bool.self, forKey: .tunerPassword)
        aptRepository = try c.decodeIfPresent(String.self, forKey: .aptRepository)
    }

    /// And written into one object: the engine's keys, then the deployment's beside them.
    public func encode(to encoder: any Encoder) throws {
        try base.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(database, forKey: .database)
        try c.encodeIfPresent(nfsServer, forKey: .nfsServer)
        try c.encodeIfPresent(aws, forKey: .aws)
        try c.encodeIfPresent(tunerPassword, forKey: .tunerPassword)
        try c.encodeIfPresent(aptRepository, forKey: .aptRepository)
    }
}
