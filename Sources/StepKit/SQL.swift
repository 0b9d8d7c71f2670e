import LeanFoundation

/// Where and as whom to reach a MySQL/MariaDB server. The password is a `Secret`: the
/// description shows user@host:port/db only.
public struct DatabaseEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: Secret
    public var database: String?
    public init(host: String, port: Int = 3306, user: String, password: Secret, database: String? = nil) {
        self.host = host; self.port = port; self.user = user; self.password = password; self.database = database
    }
    public var description: String { "\(user)@\(host):\(port)" + (database.map { "/\($0)" } ?? "") }
}

/// Runs SQL from the controller. A protocol so tests can use a fake and the engine does not
/// care which client library sits below.
public protocol SQLExecutor: Sendable {
    /// Runs `sql` (one or more statements); returns the rows of the last result set.
    func execute(_ sql: SecretText, on endpoint: DatabaseEndpoint) throws -> [[String?]]
}

/// The default of `RunOptions.sql`: the engine links no database client, so a run with SQL steps
/// names the one it uses (ccrun passes `MariaDBExecutor`, from the MariaDBClient module).
public struct UnconfiguredSQLExecutor: SQLExecutor {
    public init() {}
    public func execute(_ sql: SecretText, on endpoint: DatabaseEndpoint) throws -> [[String?]] {
        throw SQLError.noClient(endpoint.description)
    }
}

public enum SQLError: Error, CustomStringConvertible, Sendable {
    case connect(String, String)
    /// The server refused the login (wrong password, unknown account: ER_ACCESS_DENIED_ERROR).
    case accessDenied(String, String)
    case statement(String, String)
    /// The run was given no SQL client (an engine set-up error).
    case noClient(String)
    public var description: String {
        switch self {
        case let .noClient(ep): "no SQL client configured for \(ep): pass RunOptions(sql:) (ccrun uses MariaDBExecutor)"
        case let .connect(ep, m): "cannot connect to MySQL/MariaDB \(ep): \(m)"
        case let .accessDenied(ep, m): "MySQL/MariaDB \(ep) refused the login: \(m)"
        case let .statement(ep, m): "SQL failed on \(ep): \(m)"
        }
    }
}


/// Values in SQL text: a string literal that means the same whatever the server's sql_mode (with
/// or without NO_BACKSLASH_ESCAPES) is not possible, so scripts that carry one start with
/// `SQLLiteral.standardEscapes`, which turns backslash escapes on for the session.
public enum SQLLiteral {
    public static let standardEscapes = "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '');\n"

    /// `'text'` with `\`, `'`, NUL, newline, return and Ctrl-Z escaped (after `standardEscapes`).
    public static func quoted(_ text: String) -> String { "'" + escaped(text) + "'" }

    /// A secret as a quoted literal, still a secret (masked in reports, scrubbed from errors).
    public static func quoted(_ secret: Secret) -> Secret {
        Secret(label: secret.label, value: quoted(secret.reveal()))
    }

    static func escaped(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "'": out += "\\'"
            case "\0": out += "\\0"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\u{1A}": out += "\\Z"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

/// An SQL script against MySQL/MariaDB, run from the controller through Connector/C.
/// Satisfied when the `unless` query returns at least one row. Secrets in the script are
/// masked in every report and never in a command line. Undo runs `undoSQL` (secret-free)
/// when given; otherwise the step is irreversible.
///
/// `unlessAs` runs the `unless` query logged in as another account (the one the step manages):
/// a login the server refuses then means "not satisfied", so "the password is right" is checked
/// by logging in with it, on MySQL 5.7, 8.x and MariaDB alike (no PASSWORD(), which MySQL 8
/// removed, and no hash format to compare).
///
/// `existed` tells a creation from a repair: when that query returns a row before the change
/// (the account or tables were there, only different), `undoSQL` would destroy what the run did
/// not create, so the change is then irreversible, with `existedReason`.
public struct SQLScript: Step {
    public let id: String
    public let description: String
    public let database: DatabaseEndpoint
    public let script: SecretText
    public let unless: SecretText?
    public let undoSQL: String?
    public let existed: SecretText?
    public let existedReason: String
    public let unlessAs: DatabaseEndpoint?

    public init(id: String, _ description: String, on database: DatabaseEndpoint, script: SecretText,
                unless: SecretText? = nil, unlessAs: DatabaseEndpoint? = nil, undo: String? = nil,
                existed: SecretText? = nil, existedReason: String = "it existed before this run") {
        self.id = "sql:" + id; self.description = description; self.database = database
        self.script = script; self.unless = unless; self.unlessAs = unlessAs; self.undoSQL = undo
        self.existed = existed; self.existedReason = existedReason
    }

    var unlessQuery: FactQuery? {
        let endpoint = unlessAs ?? database
        return unless.map { FactQuery(key: "sql:\(endpoint):\($0.masked)", sql: $0, on: endpoint, refusedLoginMeansNoRows: unlessAs != nil) }
    }
    public var existedQuery: FactQuery? { existed.map { FactQuery(key: "sql:\(database):\($0.masked)", sql: $0, on: database) } }
    public var facts: [FactQuery] { [unlessQuery, existedQuery].compactMap { $0 } }
    public var affects: FactScope { .keys(Set(facts.map(\.key))) }
    public var secrets: [Secret] { script.secrets + (unless?.secrets ?? []) + [database.password] + (unlessAs.map { [$0.password] } ?? []) }
    public var reversibility: Reversibility { undoSQL == nil ? .irreversible("no undo SQL for \(id)") : .reversible }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        /// A query's answer: at least one row (SQL facts hold the row count).
        func hasRows(_ q: FactQuery) throws -> Bool {
            guard let out = facts.outputs[q.key] else { throw FactError.missing(q.key) }
            return out.status == 0 && (Int(out.stdout) ?? 0) > 0
        }
        if let q = unlessQuery, try hasRows(q) { return .satisfied }
        var undo: UndoAction = undoSQL.map { .runSQL(endpoint: database.description, script: $0) } ?? .irreversible(reason: "no undo SQL given for \(id)")
        if let q = existedQuery, try hasRows(q) { undo = .irreversible(reason: "\(id): \(existedReason)") }
        return .change(Change(actions: [.sql(SQLAction(endpoint: database, script: script))],
                              diff: "SQL on \(database):\n\(script.masked)\n", undo: [undo]))
    }
}
