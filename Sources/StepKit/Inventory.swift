import LeanFoundation

/// The engine's part of an inventory file: the hosts (how to reach each, its roles and
/// variables) and the sudo user. What a deployment adds to the file (its database, its
/// servers, its cloud account) is its own type's, decoded from the same object beside these keys
/// (the CC deployment's is in Runbooks); this type ignores them, so the engine stays free of any
/// one deployment's schema.
/// Secrets are not inside: only paths to 0600 files.
public struct Inventory: Codable, Sendable, Equatable {
    public struct Host: Codable, Sendable, Equatable {
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
    public struct SudoUser: Codable, Sendable, Equatable {
        public var user: String
        public var identityFile: String?
        public init(user: String, identityFile: String? = nil) { self.user = user; self.identityFile = identityFile }
    }

    public var hosts: [String: Host]
    public var sudoUser: SudoUser?

    public init(hosts: [String: Host], sudoUser: SudoUser? = nil) {
        self.hosts = hosts; self.sudoUser = sudoUser
    }

    /// Reads `path` as `T` (this type, or a deployment's inventory that embeds it), with errors
    /// that name the file.
    public static func load<T: Decodable>(_ path: String, as type: T.Type = Inventory.self) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else { throw InventoryError.unreadable(path) }
        do { return try JSONDecoder().decode(T.self, from: data) } catch { throw InventoryError.invalid(path, "\(error)") }
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
