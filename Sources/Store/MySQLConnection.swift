import CMariaDB
import Glibc
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A MySQL/MariaDB connection through MariaDB Connector/C, confined to one `DatabaseThread`.
///
/// Values are sent with the text protocol: integers formatted, strings escaped by
/// `mysql_real_escape_string` for the connection's utf8mb4 character set (which also honours
/// the server's NO_BACKSLASH_ESCAPES mode). No automatic reconnect: a lost connection surfaces
/// as `StoreError.unreachable`, the owner drops it and connects again on the next call.
final class MySQLConnection: DatabaseConnection {
    let dialect = SQLDialect.mysql
    private(set) var autoIncrementStep: Int64 = 1
    private var handle: UnsafeMutablePointer<MYSQL>?
    private let label: String
    private let user: String
    private let statementSeconds: Double?

    /// `mysql_library_init` is not thread-safe; run it once before any connection.
    private static let libraryInitialised: Bool = {
        mysql_server_init(0, nil, nil) == 0
    }()

    /// `queryTimeoutSeconds`: how long one statement may take before the connection counts as
    /// lost (readers allow long searches; the writer wants to notice a hung server quickly).
    /// `statementSeconds`: the server stops each SELECT of this session after that long (readers of
    /// `ccr web`); nil leaves the server's setting.
    init(host: String, port: Int, user: String, password: DatabasePassword, database: String, timeoutSeconds: Double,
         queryTimeoutSeconds: Double? = nil, statementSeconds: Double? = nil) throws {
        self.label = "mysql://\(user)@\(host):\(port)/\(database)"
        self.user = user
        self.statementSeconds = statementSeconds
        _ = Self.libraryInitialised
        guard let mysql = mysql_init(nil) else {
            throw StoreError.unreachable(database: label, reason: "mysql_init: out of memory")
        }
        handle = mysql
        var timeout = UInt32(max(1, timeoutSeconds.rounded(.up)))
        mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, &timeout)
        var queryTimeout = UInt32(max(1, (queryTimeoutSeconds ?? timeoutSeconds).rounded(.up)))
        mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, &queryTimeout)
        mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, &queryTimeout)
        mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        if let plugins = Self.pluginDirectory { mysql_options(mysql, MYSQL_PLUGIN_DIR, plugins) }
        // CLIENT_FOUND_ROWS: UPDATE reports matched rows, so an unchanged heartbeat still counts.
        let connected = mysql_real_connect(mysql, host, user, password.revealed, database, UInt32(port), nil, UInt(CLIENT_FOUND_ROWS))
        if connected == nil {
            let failure = lastError()
            close()
            throw failure
        }
        if let step = try query("SELECT @@auto_increment_increment", []).first?.first?.int64, step > 0 {
            autoIncrementStep = step
        }
        if let statementSeconds { try limitStatements(seconds: statementSeconds) }
    }

    /// Where the client's authentication plugins are loaded from. ccr links Connector/C
    /// statically, and that library holds only mysql_native_password: MySQL 8's default,
    /// caching_sha2_password (and sha256_password, ed25519, dialog), is a plugin file it loads at
    /// login from a folder compiled in as Debian's. The distribution's own folder is used
    /// instead where there is one (Amazon Linux and RHEL's mariadb-connector-c, Debian and
    /// Ubuntu's libmariadb3); `MARIADB_PLUGIN_DIR` in the environment, which the library reads
    /// itself, wins over both.
    static let pluginDirectories = [
        "/usr/lib64/mariadb/plugin",
        "/usr/lib/x86_64-linux-gnu/libmariadb3/plugin",
        "/usr/lib/aarch64-linux-gnu/libmariadb3/plugin",
    ]

    static let pluginDirectory: String? = {
        guard getenv("MARIADB_PLUGIN_DIR") == nil else { return nil }
        return pluginDirectories.first { access($0, R_OK | X_OK) == 0 }
    }()

    /// MariaDB names the limit max_statement_time (seconds), MySQL max_execution_time (ms, SELECT
    /// only); the one the server does not know fails with 1193 (unknown variable).
    private func limitStatements(seconds: Double) throws {
        do {
            try execute("SET SESSION max_statement_time = \(seconds)", [])
        } catch StoreError.database(_, 1193, _) {
            try execute("SET SESSION max_execution_time = \(Int((seconds * 1000).rounded(.up)))", [])
        }
    }

    /// Server errors for a statement stopped by its time limit: MariaDB's 1969, MySQL's 3024.
    static let statementTimeLimitCodes: Set<Int> = [1969, 3024]

    /// The server enforces the time limit (see `limitStatements`); a cancellation is honoured
    /// before the statement starts only (stopping a running one would take a second connection).
    func interruptible<T>(by ticket: ReadTicket, _ body: () throws -> T) throws -> T {
        if let stop = ticket.stop { throw StoreError.readLimited(stop) }
        do {
            return try body()
        } catch StoreError.database(_, let code, _) where Self.statementTimeLimitCodes.contains(code) {
            throw StoreError.readLimited(.timeLimit(seconds: statementSeconds ?? 0))
        }
    }

    deinit { close() }

    func close() {
        if let handle { mysql_close(handle) }
        handle = nil
    }

    /// Turns the connector's last error into a `StoreError`, by kind: outages are transient.
    private func lastError() -> StoreError {
        guard let handle else { return .unreachable(database: label, reason: "connection closed") }
        let code = Int(mysql_errno(handle))
        let message = String(cString: mysql_error(handle))
        return Self.classify(code: code, message: message, database: label, user: user)
    }

    static func classify(code: Int, message: String, database: String, user: String) -> StoreError {
        switch code {
        case 2002, 2003, 2005, 2006, 2013, 2026, 2055, // client: cannot connect, gone, lost
             1040, 1053, 1077, 1152, 1158, 1159, 1160, 1161, 1205, 1213, 1927, 4031: // server: busy, shutdown, killed, timeouts
            return .unreachable(database: database, reason: "\(message) (\(code))")
        case 1045, 1698:
            return .authenticationFailed(database: database, user: user)
        case 2059: // CR_AUTH_PLUGIN_CANNOT_LOAD
            return .authenticationPluginMissing(database: database, message: message)
        case 1044, 1142, 1143, 1227, 1370:
            return .permissionDenied(database: database, reason: message)
        case 1146:
            return .schemaOutdated(database: database, found: nil, required: Schema.currentVersion(for: .mysql))
        default:
            return .database(database: database, code: code, message: message)
        }
    }

    private func escaped(_ string: String) -> String {
        guard let handle else { return "" }
        let source = Array(string.utf8)
        var target = [CChar](repeating: 0, count: source.count * 2 + 1)
        let length = source.withUnsafeBufferPointer { from in
            from.withMemoryRebound(to: CChar.self) { from in
                mysql_real_escape_string(handle, &target, from.baseAddress, UInt(from.count))
            }
        }
        return String(decoding: target[0..<Int(length)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Replaces each `?` outside quoted literals with the next parameter, escaped.
    func render(_ sql: String, _ parameters: [SQLValue]) -> String {
        var output = ""
        output.reserveCapacity(sql.utf8.count + parameters.count * 16)
        var remaining = parameters[...]
        var quote: Character?
        for character in sql {
            if let open = quote {
                if character == open { quote = nil }
                output.append(character)
            } else if character == "'" || character == "\"" || character == "`" {
                quote = character
                output.append(character)
            } else if character == "?", let value = remaining.popFirst() {
                switch value {
                case .null: output += "NULL"
                case .int(let v): output += String(v)
                case .double(let d): output += String(d)
                case .text(let s): output += "'" + escaped(s) + "'"
                }
            } else {
                output.append(character)
            }
        }
        return output
    }

    private func run(_ sql: String, _ parameters: [SQLValue]) throws {
        guard let handle else { throw StoreError.unreachable(database: label, reason: "not connected") }
        let text = render(sql, parameters)
        let rc = text.withCString { mysql_real_query(handle, $0, UInt(strlen($0))) }
        if rc != 0 { throw lastError() }
    }

    @discardableResult
    func execute(_ sql: String, _ parameters: [SQLValue]) throws -> Int {
        try run(sql, parameters)
        guard let handle else { return 0 }
        if let result = mysql_store_result(handle) { mysql_free_result(result) }
        let affected = mysql_affected_rows(handle)
        return affected == UInt64.max ? 0 : Int(affected)
    }

    func query(_ sql: String, _ parameters: [SQLValue]) throws -> [[SQLValue]] {
        try run(sql, parameters)
        guard let handle else { throw StoreError.unreachable(database: label, reason: "not connected") }
        guard let result = mysql_store_result(handle) else {
            if mysql_errno(handle) != 0 { throw lastError() }
            return []
        }
        defer { mysql_free_result(result) }
        let columns = Int(mysql_num_fields(result))
        var numeric = [Bool](repeating: false, count: columns)
        if let fields = mysql_fetch_fields(result) {
            for index in 0..<columns {
                switch fields[index].type {
                case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_LONG, MYSQL_TYPE_LONGLONG, MYSQL_TYPE_INT24:
                    numeric[index] = true
                default:
                    numeric[index] = false
                }
            }
        }
        var rows: [[SQLValue]] = []
        while let row = mysql_fetch_row(result) {
            guard let lengths = mysql_fetch_lengths(result) else { break }
            var values: [SQLValue] = []
            values.reserveCapacity(columns)
            for index in 0..<columns {
                guard let pointer = row[index] else { values.append(.null); continue }
                let text = pointer.withMemoryRebound(to: UInt8.self, capacity: Int(lengths[index])) {
                    String(decoding: UnsafeBufferPointer(start: $0, count: Int(lengths[index])), as: UTF8.self)
                }
                if numeric[index], let number = Int64(text) {
                    values.append(.int(number))
                } else {
                    values.append(.text(text))
                }
            }
            rows.append(values)
        }
        return rows
    }

    func begin() throws { try execute("START TRANSACTION", []) }
    func commit() throws { try execute("COMMIT", []) }
    func rollback() { _ = try? execute("ROLLBACK", []) }
}
