#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A database password. Its description is always masked, so it cannot leak through string
/// interpolation into logs or error messages; only the connector reads `revealed`.
public struct DatabasePassword: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    private let value: String
    public init(_ value: String) { self.value = value }
    /// The clear text, for handing to the database client library only.
    public var revealed: String { value }
    public var isEmpty: Bool { value.isEmpty }
    public var description: String { "<password masked>" }
    public var debugDescription: String { "<password masked>" }
}

/// Where caption metadata lives.
public enum StoreConfiguration: Sendable, Hashable, CustomStringConvertible {
    /// Embedded SQLite database file (created and migrated by ccr).
    case sqlite(path: String)
    /// MySQL or MariaDB; the schema is applied beforehand by an admin (`ccr schema --dialect mysql`).
    case mysql(host: String, port: Int, user: String, password: DatabasePassword, database: String)

    public var description: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .mysql(let host, let port, let user, _, let database): return "mysql://\(user)@\(host):\(port)/\(database)"
        }
    }
}

/// Tuning knobs of a store; the defaults suit production.
public struct StoreOptions: Sendable {
    /// Folder of the durable spool used during database outages; nil disables spooling
    /// (writes then fail with `StoreError.unreachable`).
    public var spoolDirectory: String?
    /// A store for readers only (`ccr web` with cc_ro): every write throws `StoreError.readOnly`.
    public var readOnly: Bool
    /// How often a pending spool is retried.
    public var retryIntervalSeconds: Double
    /// Connect/read/write timeout for MySQL; how long SQLite waits on a locked database.
    public var timeoutSeconds: Double
    /// How long the live feed waits for a missing line id (a concurrent transaction that has not
    /// committed yet) before passing over it.
    public var liveSettleMilliseconds: Int64
    /// Bytes the spool may hold (`[database] spool_limit`); beyond them, writes fail.
    public var spoolLimitBytes: UInt64

    /// 1 GiB: about two days of one busy tuner's lines, or an hour of 1,000 tuners'.
    public static let defaultSpoolLimitBytes: UInt64 = 1 << 30
    /// Bounds on reads (connections, search words and queue, statement time): see `ReadLimits`.
    public var reads = ReadLimits()

    public init(spoolDirectory: String? = nil, readOnly: Bool = false, retryIntervalSeconds: Double = 1,
                timeoutSeconds: Double = 5, liveSettleMilliseconds: Int64 = 500, spoolLimitBytes: UInt64 = defaultSpoolLimitBytes) {
        self.spoolLimitBytes = spoolLimitBytes
        self.spoolDirectory = spoolDirectory
        self.readOnly = readOnly
        self.retryIntervalSeconds = retryIntervalSeconds
        self.timeoutSeconds = timeoutSeconds
        self.liveSettleMilliseconds = liveSettleMilliseconds
    }
}

/// Everything that can go wrong in the store, with what to do about it.
public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible, LocalizedError {
    /// The database cannot be reached (server down, network, disk locked). Writes are spooled.
    case unreachable(database: String, reason: String)
    /// The database user lacks a right (e.g. cc_ro writing). Not spooled: fix the configuration.
    case permissionDenied(database: String, reason: String)
    /// Login refused (wrong user or password). Not spooled.
    case authenticationFailed(database: String, user: String)
    /// The server asks for an authentication plugin that the (statically linked) client loads
    /// from a folder and could not: MySQL 8's caching_sha2_password without its plugin file.
    case authenticationPluginMissing(database: String, message: String)
    /// The database's schema is missing or older than this ccr.
    case schemaOutdated(database: String, found: Int?, required: Int)
    /// Any other database error.
    case database(database: String, code: Int, message: String)
    /// The spool file cannot be written or read.
    case spool(path: String, reason: String)
    /// A write on a store opened read-only.
    case readOnly
    /// The store was closed.
    case closed
    /// Bad input (e.g. an empty search).
    case invalidArgument(String)
    /// A read stopped by a `ReadLimits` bound or a cancellation; not a database fault.
    case readLimited(ReadStop)

    public var description: String {
        switch self {
        case .unreachable(let db, let reason):
            return "database unreachable (\(db)): \(reason)"
        case .permissionDenied(let db, let reason):
            return "database permission denied (\(db)): \(reason); check the user's grants"
        case .authenticationFailed(let db, let user):
            return "database login refused for user '\(user)' (\(db)): check the user name and password"
        case .authenticationPluginMissing(let db, let message):
            return "database login needs an authentication plugin this ccr could not load (\(db)): \(message). "
                + "Install MariaDB Connector/C's plugins (Amazon Linux, RHEL: mariadb-connector-c; Debian, Ubuntu: libmariadb3), "
                + "or point MARIADB_PLUGIN_DIR at a folder holding caching_sha2_password.so"
        case .schemaOutdated(let db, let found, let required):
            let have = found.map { "version \($0)" } ?? "no schema"
            return "database schema outdated (\(db)): found \(have), need version \(required); apply `ccr schema --dialect mysql` with the admin account"
        case .database(let db, let code, let message):
            return "database error \(code) (\(db)): \(message)"
        case .spool(let path, let reason):
            return "spool \(path): \(reason)"
        case .readOnly:
            return "store opened read-only: writes are not allowed"
        case .closed:
            return "store closed"
        case .invalidArgument(let what):
            return "invalid argument: \(what)"
        case .readLimited(let stop):
            return "read stopped: \(stop)"
        }
    }

    public var errorDescription: String? { description }

    /// True for outages, where writes are spooled and retried.
    public var isTransient: Bool {
        if case .unreachable = self { return true }
        return false
    }
}

/// Opens a store: SQLite (migrated on open) or MySQL/MariaDB (schema version checked).
public func openStore(_ configuration: StoreConfiguration, options: StoreOptions = StoreOptions()) async throws -> any CaptionStore {
    try await SQLCaptionStore.open(configuration, options: options)
}
