import CSQLite
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A SQLite connection through the C API, confined to one `DatabaseThread`.
///
/// Prepared statements are cached per SQL text: the store runs the same few statements over and
/// over, and preparing them dominates small inserts otherwise. The cache is bounded
/// (`maxCachedStatements`): a prepared multi-row INSERT with its FTS trigger program costs tens of
/// KB, and a cache keyed by every batch size ever seen grew ccr's memory with the lines written.
final class SQLiteConnection: DatabaseConnection {
    /// More distinct statements than the store uses (a dozen, plus 8 batch shapes per table).
    static let maxCachedStatements = 48
    /// Page cache per connection, in KiB (SQLite's default is 2,000 KiB). The writer appends at the
    /// end of a few B-trees and the live feed reads the newest rows: a small cache holds what is hot,
    /// and ccr keeps a writer and a reader connection per process.
    static let cacheKiB = 1024
    let dialect = SQLDialect.sqlite
    let autoIncrementStep: Int64 = 1
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    private let path: String

    /// WAL size (pages) at which the writer checkpoints in its own commit: a safety net only, as
    /// `SQLCaptionStore`'s checkpoint thread keeps the WAL far below it. SQLite's default, 1,000
    /// pages, made every few-hundredth commit copy the WAL into the database file and fsync it,
    /// holding up the captions queued behind that commit.
    static let writerAutoCheckpointPages = 16_384

    /// Opens (creating when `readOnly` is false) the database file in WAL mode.
    /// `autoCheckpointPages` overrides SQLite's automatic checkpoint threshold (0 turns it off).
    init(path: String, readOnly: Bool, busyTimeoutSeconds: Double, autoCheckpointPages: Int? = nil) throws {
        self.path = path
        let flags = readOnly
            ? SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
            : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        handle = db
        guard rc == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(db)
            handle = nil
            throw Self.classify(code: rc, message: message, path: path)
        }
        sqlite3_extended_result_codes(db, 0)
        sqlite3_busy_timeout(db, Int32(max(0, busyTimeoutSeconds * 1000)))
        try execute("PRAGMA cache_size=-\(Self.cacheKiB)", [])
        if !readOnly {
            _ = try query("PRAGMA journal_mode=WAL", [])
            // NORMAL in WAL mode: a commit survives a crash or kill -9 of ccr; only a power cut may
            // lose the last commits (the spool, which is fsync'd, covers outages, not power cuts).
            try execute("PRAGMA synchronous=NORMAL", [])
            // A multi-row INSERT (with its FTS trigger) keeps a statement journal of the pages it
            // changes; past 64 KiB SQLite spilled it to a temporary file: two pwrites per page,
            // 40% of the writes ccr made at 10,000 tuners. It stays in memory (a few hundred KB).
            try execute("PRAGMA temp_store=MEMORY", [])
            // A grouped commit (see the tuner server's CommitPacer) changes a few hundred pages;
            // spilling them into the WAL before the commit, when they outgrew the small cache,
            // wrote them twice. Unspilled, the cache holds them past `cacheKiB` until the commit.
            try execute("PRAGMA cache_spill=OFF", [])
            if let autoCheckpointPages { _ = try query("PRAGMA wal_autocheckpoint=\(autoCheckpointPages)", []) }
        }
    }

    deinit { close() }

    func close() {
        for statement in statements.values { sqlite3_finalize(statement) }
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    static func classify(code: Int32, message: String, path: String) -> StoreError {
        let db = "sqlite:\(path)"
        switch code & 0xff {
        case SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_PROTOCOL:
            return .unreachable(database: db, reason: "\(message) (SQLite \(code))")
        case SQLITE_READONLY, SQLITE_PERM, SQLITE_AUTH:
            return .permissionDenied(database: db, reason: message)
        default:
            if message.hasPrefix("no such table") { return .schemaOutdated(database: db, found: nil, required: Schema.currentVersion(for: .sqlite)) }
            return .database(database: db, code: Int(code), message: message)
        }
    }

    private func error(_ code: Int32) -> StoreError {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "closed"
        return Self.classify(code: code, message: message, path: path)
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        guard let handle else { throw StoreError.closed }
        if let cached = statements[sql] {
            sqlite3_reset(cached)
            sqlite3_clear_bindings(cached)
            return cached
        }
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else { throw error(rc) }
        if statements.count >= Self.maxCachedStatements {
            // No statement is running here (each call resets its statement before returning).
            for old in statements.values { sqlite3_finalize(old) }
            statements.removeAll(keepingCapacity: true)
        }
        statements[sql] = statement
        return statement
    }

    private func bind(_ parameters: [SQLValue], to statement: OpaquePointer) throws {
        for (offset, value) in parameters.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(statement, index)
            case .int(let v): rc = sqlite3_bind_int64(statement, index, v)
            case .double(let d): rc = sqlite3_bind_double(statement, index, d)
            case .text(let s):
                rc = s.utf8CString.withUnsafeBufferPointer { buffer in
                    csqlite_bind_text_transient(statement, index, buffer.baseAddress, Int32(buffer.count - 1))
                }
            }
            guard rc == SQLITE_OK else { throw error(rc) }
        }
    }

    @discardableResult
    func execute(_ sql: String, _ parameters: [SQLValue]) throws -> Int {
        let statement = try prepared(sql)
        defer { sqlite3_reset(statement) }
        try bind(parameters, to: statement)
        var rc = sqlite3_step(statement)
        while rc == SQLITE_ROW { rc = sqlite3_step(statement) }
        guard rc == SQLITE_DONE else { throw error(rc) }
        return Int(sqlite3_changes(handle))
    }

    func query(_ sql: String, _ parameters: [SQLValue]) throws -> [[SQLValue]] {
        let statement = try prepared(sql)
        defer { sqlite3_reset(statement) }
        try bind(parameters, to: statement)
        var rows: [[SQLValue]] = []
        let columns = sqlite3_column_count(statement)
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc) }
            var row: [SQLValue] = []
            row.reserveCapacity(Int(columns))
            for column in 0..<columns {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: row.append(.int(sqlite3_column_int64(statement, column)))
                case SQLITE_FLOAT: row.append(.double(sqlite3_column_double(statement, column)))
                case SQLITE_NULL: row.append(.null)
                default:
                    if let text = sqlite3_column_text(statement, column) {
                        let count = Int(sqlite3_column_bytes(statement, column))
                        row.append(.text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self)))
                    } else {
                        row.append(.null)
                    }
                }
            }
            rows.append(row)
        }
        return rows
    }

    /// Runs a script of several statements (schema migrations).
    func executeScript(_ sql: String) throws {
        guard let handle else { throw StoreError.closed }
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc) }
    }

    /// SQLite VM steps between two checks of a read's ticket: a check is a clock read, and a
    /// thousand steps take well under a millisecond, also inside an FTS5 phrase match.
    static let progressSteps: Int32 = 1000

    func interruptible<T>(by ticket: ReadTicket, _ body: () throws -> T) throws -> T {
        guard let handle else { throw StoreError.closed }
        let context = Unmanaged.passUnretained(ticket).toOpaque()
        sqlite3_progress_handler(handle, Self.progressSteps, { context in
            guard let context else { return 0 }
            return Unmanaged<ReadTicket>.fromOpaque(context).takeUnretainedValue().stop == nil ? 0 : 1
        }, context)
        defer { sqlite3_progress_handler(handle, 0, nil, nil) }
        // `ticket` outlives the handler: it is removed before this function returns.
        return try withExtendedLifetime(ticket) {
            do {
                return try body()
            } catch {
                if let stop = ticket.stop { throw StoreError.readLimited(stop) }
                throw error
            }
        }
    }

    func begin() throws { try execute("BEGIN IMMEDIATE", []) }
    func commit() throws { try execute("COMMIT", []) }
    func rollback() { _ = try? execute("ROLLBACK", []) }
}
