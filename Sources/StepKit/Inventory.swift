import LeanFoundation

/// The inventory file `ccrun lab up` writes and every ccrun command accepts (see
/// notes/inventory.md). Secrets are not inside: only paths to 0600 files.
public struct Inventory: Codable, Sendable {
    public struct Host: Codable, Sendable {
        public var address: String
        public var port: Int?
        public var user: String?
        public var identityFile: String?
        public var knownHosts: String?
        public var roles: [String]?
        public var vars: [String: String]?
        public init(address: String, port: Int? = nil, user: String? = nil, identityFile: String? = nil, knownHosts: String? = nil, roles: [String]? = nil, vars: [String: String]? = nil) {
            self.address = address; self.port = port; self.user = user; self.identityFile = identityFile
            self.knownHosts = knownHosts; self.roles = roles; self.vars = vars
        }
    }
    public struct SudoUser: Codable, Sendable { public var user: String; public var identityFile: String? }
    public struct Database: Codable, Sendable {
        public var host: String
        public var port: Int?
        public var adminUser: String
        public var adminPasswordFile: String?
        /// The database and the two accounts the runbooks create (the guide's `cc`, `cc_ro`, `cc_rw`).
        public var name: String?
        public var readOnlyUser: String?
        public var readWriteUser: String?
        /// The admin endpoint, with the password read from its file.
        public func adminEndpoint() throws -> DatabaseEndpoint {
            let pw = try adminPasswordFile.map { try Secret(label: "db-admin-password", contentsOfFile: $0) } ?? Secret(label: "db-admin-password", value: "")
            return DatabaseEndpoint(host: host, port: port ?? 3306, user: adminUser, password: pw)
        }
    }
    public struct AWS: Codable, Sendable { public var endpoint: String?; public var region: String?; public var credentialsFile: String? }

    public var hosts: [String: Host]
    public var sudoUser: SudoUser?
    public var database: Database?
    public var nfsServer: String?
    public var aws: AWS?
    /// False turns the tuners' password off (`ccr serve` then accepts any tuner); by default the
    /// deployment generates one (like the database passwords: a 0600 file, or CCR_TUNER_PASSWORD).
    public var tunerPassword: Bool?

    public init(hosts: [String: Host], sudoUser: SudoUser? = nil, database: Database? = nil, nfsServer: String? = nil, aws: AWS? = nil) {
        self.hosts = hosts; self.sudoUser = sudoUser; self.database = database; self.nfsServer = nfsServer; self.aws = aws
    }

    public static func load(_ path: String) throws -> Inventory {
        guard let data = FileManager.default.contents(atPath: path) else { throw InventoryError.unreadable(path) }
        do { return try JSONDecoder().decode(Inventory.self, from: data) } catch { throw InventoryError.invalid(path, "\(error)") }
    }

    /// Host names with a role, in name order.
    public func hosts(withRole role: String) -> [String] {
        hosts.filter { $0.value.roles?.contains(role) ?? false }.keys.sorted()
    }
}

public enum InventoryError: Error, CustomStringConvertible {
    case unreadable(String), invalid(String, String), unknownHost(String, [String])
    public var description: String {
        switch self {
        case let .unreadable(p): "cannot read inventory \(p)"
        case let .invalid(p, e): "inventory \(p) is not valid: \(e)"
        case let .unknownHost(h, known): "host \(h) is not in the inventory (known: \(known.joined(separator: ", ")))"
        }
    }
}
