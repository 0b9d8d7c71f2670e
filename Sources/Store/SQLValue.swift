/// A value bound to or read from SQL. Both backends speak only these four types.
enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)

    var int64: Int64? {
        switch self {
        case .int(let v): return v
        case .double(let d): return Int64(d)
        case .text(let s): return Int64(s) ?? Double(s).map { Int64($0) }
        case .null: return nil
        }
    }
    var string: String? {
        switch self {
        case .text(let s): return s
        case .int(let v): return String(v)
        case .double(let d): return String(d)
        case .null: return nil
        }
    }
}

extension Optional where Wrapped == String {
    var sql: SQLValue { map { .text($0) } ?? .null }
}
extension Optional where Wrapped == Int64 {
    var sql: SQLValue { map { .int($0) } ?? .null }
}

/// The SQL flavour a schema script or statement is written for.
public enum SQLDialect: String, Sendable, CaseIterable {
    case sqlite
    case mysql
}

/// One open database connection, used from a single thread only (its `DatabaseThread`).
/// Errors are thrown already classified as `StoreError` (outage, permission, ...).
protocol DatabaseConnection: AnyObject {
    var dialect: SQLDialect { get }
    /// Step between consecutive auto-increment ids (MySQL's auto_increment_increment).
    var autoIncrementStep: Int64 { get }
    /// Runs a statement with `?` placeholders; returns the number of rows changed.
    @discardableResult
    func execute(_ sql: String, _ parameters: [SQLValue]) throws -> Int
    /// Runs a query with `?` placeholders and returns all rows.
    func query(_ sql: String, _ parameters: [SQLValue]) throws -> [[SQLValue]]
    func begin() throws
    func commit() throws
    func rollback()
    func close()
    /// Runs `body`, stopping its statements when `ticket` says so (time limit, cancellation) with
    /// `StoreError.readLimited`. For reads only.
    func interruptible<T>(by ticket: ReadTicket, _ body: () throws -> T) throws -> T
}

extension DatabaseConnection {
    /// Runs `body` in one transaction, rolled back when it throws.
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try begin()
        do {
            let result = try body()
            try commit()
            return result
        } catch {
            rollback()
            throw error
        }
    }

    /// SQL for "the database's clock now, in ms since the Unix epoch".
    var nowMillisecondsSQL: String {
        switch dialect {
        case .sqlite: return "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"
        case .mysql: return "CAST(ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000) AS SIGNED)"
        }
    }

    var insertIgnore: String {
        dialect == .sqlite ? "INSERT OR IGNORE" : "INSERT IGNORE"
    }
}
