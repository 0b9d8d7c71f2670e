#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization

/// The `CaptionStore` over SQLite or MySQL/MariaDB.
///
/// `DatabaseThread`s, each with its own connection: the writer (FIFO writes, spool, replay) and
/// the readers (queries), so a slow search never delays captions being written. Searches may
/// have readers of their own (`ReadLimits.searchReaders`), so that they never delay a page
/// either. A read-only store (`ccr web`) has no writer at all. A SQLite writer has a third thread that checkpoints
/// the WAL every `checkpointInterval`, so that the writer's commits never wait for the database
/// file's fsync.
final class SQLCaptionStore: CaptionStore {
    private let label: String
    private let options: StoreOptions
    private let writer: DatabaseThread?
    private let pipeline: ThreadConfined<WritePipeline>?
    private let readers: ReaderPool
    /// Nil: searches run on `readers`.
    private let searchers: ReaderPool?
    private let gauge: SpoolGauge
    private let replayTask = Mutex<Task<Void, Never>?>(nil)
    private let checkpointer: DatabaseThread?
    private let checkpointTask = Mutex<Task<Void, Never>?>(nil)
    static let checkpointInterval = Duration.milliseconds(500)
    private let isClosed = Mutex(false)

    private init(label: String, options: StoreOptions, writer: DatabaseThread?, pipeline: ThreadConfined<WritePipeline>?,
                 readers: ReaderPool, searchers: ReaderPool?, checkpointer: DatabaseThread?, gauge: SpoolGauge) {
        self.gauge = gauge
        self.checkpointer = checkpointer
        self.label = label
        self.options = options
        self.writer = writer
        self.pipeline = pipeline
        self.readers = readers
        self.searchers = searchers
    }

    static func open(_ configuration: StoreConfiguration, options: StoreOptions) async throws -> SQLCaptionStore {
        let label = configuration.description
        let writerConnect: @Sendable () throws -> DatabaseConnection
        let readerConnect: @Sendable () throws -> DatabaseConnection
        var checkpointConnect: (@Sendable () throws -> DatabaseConnection)?
        switch configuration {
        case .sqlite(let path):
            let timeout = options.timeoutSeconds
            checkpointConnect = { try SQLiteConnection(path: path, readOnly: false, busyTimeoutSeconds: timeout, autoCheckpointPages: 0) }
            writerConnect = {
                let connection = try SQLiteConnection(path: path, readOnly: false, busyTimeoutSeconds: timeout,
                                                      autoCheckpointPages: SQLiteConnection.writerAutoCheckpointPages)
                try Migrator.migrate(connection)
                return connection
            }
            readerConnect = {
                let connection = try SQLiteConnection(path: path, readOnly: true, busyTimeoutSeconds: timeout)
                try Migrator.check(connection, label: label)
                return connection
            }
        case .mysql(let host, let port, let user, let password, let database):
            let timeout = options.timeoutSeconds
            let connect = { (queryTimeout: Double, statementSeconds: Double?) -> @Sendable () throws -> DatabaseConnection in
                {
                    let connection = try MySQLConnection(host: host, port: port, user: user, password: password, database: database,
                                                         timeoutSeconds: timeout, queryTimeoutSeconds: queryTimeout,
                                                         statementSeconds: statementSeconds)
                    try Migrator.check(connection, label: label)
                    return connection
                }
            }
            writerConnect = connect(timeout, nil)
            let statementSeconds = options.reads.statementSeconds
            readerConnect = connect(max(30, timeout, (statementSeconds ?? 0) + timeout), statementSeconds)
        }

        var writer: DatabaseThread?
        var pipeline: ThreadConfined<WritePipeline>?
        let gauge = SpoolGauge()
        if !options.readOnly {
            let thread = DatabaseThread(name: "ccr-store-writer", connect: writerConnect)
            let spoolDirectory = options.spoolDirectory
            let spoolLimit = options.spoolLimitBytes
            // A database server may be down at start; a local SQLite file that cannot be opened
            // is a configuration error, better reported than spooled.
            var tolerateOutage = false
            if case .mysql = configuration { tolerateOutage = true }
            let tolerate = tolerateOutage
            do {
                // Create the spool and, for SQLite, migrate, before anything reads.
                let made = try await thread.perform { thread -> ThreadConfined<WritePipeline> in
                    let spool = try spoolDirectory.map { try Spool(directory: $0, limitBytes: spoolLimit) }
                    let confined = ThreadConfined(WritePipeline(spool: spool, gauge: gauge))
                    do { _ = try thread.currentConnection() } catch let error as StoreError where error.isTransient {
                        // An outage at start is fine: writes spool until the database is back.
                        guard spool != nil, tolerate else { throw error }
                    }
                    return confined
                }
                pipeline = made
                writer = thread
            } catch {
                await thread.stop()
                throw error
            }
        }
        let limits = options.reads
        let readers = ReaderPool(name: "ccr-store-reader", count: limits.readers, capacity: Int.max, connect: readerConnect)
        let (searchCapacity, overflow) = limits.searchReaders.addingReportingOverflow(limits.searchQueue)
        let searchers = limits.searchReaders > 0
            ? ReaderPool(name: "ccr-store-search", count: limits.searchReaders, capacity: overflow ? Int.max : searchCapacity,
                         connect: readerConnect)
            : nil
        let checkpointer = writer == nil ? nil : checkpointConnect.map { DatabaseThread(name: "ccr-store-checkpoint", connect: $0) }
        let store = SQLCaptionStore(label: label, options: options, writer: writer, pipeline: pipeline, readers: readers,
                                    searchers: searchers, checkpointer: checkpointer, gauge: gauge)
        if options.readOnly {
            // Readers learn about login and schema problems at once; an outage is reported per read.
            do {
                _ = try await readers.run(ticket: ReadTicket(timeLimitSeconds: nil)) { _ in 0 }
            } catch let error as StoreError where error.isTransient {
            } catch {
                await readers.stop()
                await searchers?.stop()
                throw error
            }
        }
        store.startReplayLoop()
        store.startCheckpointLoop()
        return store
    }

    // MARK: Writes

    private func write<T: Sendable>(_ body: @escaping @Sendable (WritePipeline, DatabaseThread) throws -> T) async throws -> T {
        guard !isClosed.withLock({ $0 }) else { throw StoreError.closed }
        guard let writer, let pipeline else { throw StoreError.readOnly }
        return try await writer.perform { thread in try body(pipeline.value, thread) }
    }

    func registerNode(hostname: String) async throws -> Int64 {
        let id = IdentifierGenerator.next()
        let now = Clock.milliseconds()
        try await write { pipeline, thread in
            try pipeline.submit(.registerNode(id: id, hostname: hostname, startedAt: now), on: thread)
        }
        return id
    }

    func heartbeat(nodeID: Int64) async throws -> Bool {
        try await write { pipeline, thread in
            guard !pipeline.isSpooling else { return false }
            do {
                let connection = try thread.currentConnection()
                return try connection.transaction {
                    let updated = try connection.execute("UPDATE nodes SET last_heartbeat = \(connection.nowMillisecondsSQL) WHERE id = ?", [.int(nodeID)])
                    // Tuners the watchdog gave up on while this node could not reach the
                    // database are still connected: every real close was written before this.
                    try connection.execute("UPDATE tuners SET disconnected_at = NULL, disconnect_reason = NULL WHERE node_id = ? AND disconnect_reason = 'watchdog'", [.int(nodeID)])
                    return updated > 0
                }
            } catch let error as StoreError where error.isTransient {
                thread.dropConnection()
                return false
            }
        }
    }

    func tunerConnected(_ connection: TunerConnection) async throws -> Int64 {
        let id = IdentifierGenerator.next()
        try await write { pipeline, thread in try pipeline.submit(.tunerConnected(id: id, connection: connection), on: thread) }
        return id
    }

    func tunerDisconnected(tunerID: Int64, at: Int64) async throws {
        try await write { pipeline, thread in try pipeline.submit(.tunerDisconnected(id: tunerID, at: at), on: thread) }
    }

    func programStarted(tunerID: Int64, startedAt: Int64, name: String?) async throws -> Int64 {
        let id = IdentifierGenerator.next()
        try await write { pipeline, thread in
            try pipeline.submit(.programStarted(id: id, tunerID: tunerID, startedAt: startedAt, name: name), on: thread)
        }
        return id
    }

    func programRenamed(programID: Int64, name: String) async throws {
        try await write { pipeline, thread in try pipeline.submit(.programRenamed(id: programID, name: name), on: thread) }
    }

    func programEnded(programID: Int64, endedAt: Int64) async throws {
        try await write { pipeline, thread in
            try pipeline.submit(.programEnded(id: programID, at: endedAt), on: thread)
            pipeline.programEnded(programID)
        }
    }

    func appendLines(_ lines: [CaptionLineInput]) async throws {
        guard !lines.isEmpty else { return }
        try await write { pipeline, thread in try pipeline.submit(.lines(pipeline.sequencedLines(lines)), on: thread) }
    }

    func recordXDS(_ items: [XDSItemInput]) async throws {
        guard !items.isEmpty else { return }
        try await write { pipeline, thread in try pipeline.submit(.xds(pipeline.sequencedXDS(items)), on: thread) }
    }

    func markStaleTuners(heartbeatOlderThan seconds: Double) async throws -> Int {
        let limit = Int64(seconds * 1000)
        return try await write { _, thread in
            do {
                let c = try thread.currentConnection()
                let now = c.nowMillisecondsSQL
                return try c.transaction {
                    try c.execute("""
                        UPDATE tuners SET disconnected_at = \(now), disconnect_reason = 'watchdog'
                        WHERE disconnected_at IS NULL
                          AND (node_id IN (SELECT id FROM nodes WHERE last_heartbeat < \(now) - ?)
                               OR node_id NOT IN (SELECT id FROM nodes))
                        """, [.int(limit)])
                }
            } catch let error as StoreError {
                if error.isTransient { thread.dropConnection() }
                throw error
            }
        }
    }

    func beat(_ service: HeartbeatService, hostname: String) async throws {
        try await write { _, thread in
            do {
                let c = try thread.currentConnection()
                let now = c.nowMillisecondsSQL
                // UPDATE, then INSERT when no row matched: the same two statements on SQLite and
                // MySQL (whose matched-row count CLIENT_FOUND_ROWS gives); one watchdog per host.
                try c.transaction {
                    let updated = try c.execute("UPDATE service_heartbeats SET beat_at = \(now) WHERE service = ? AND hostname = ?",
                                                [.text(service.rawValue), .text(hostname)])
                    if updated == 0 {
                        try c.execute("INSERT INTO service_heartbeats (service, hostname, beat_at) VALUES (?, ?, \(now))",
                                      [.text(service.rawValue), .text(hostname)])
                    }
                }
            } catch let error as StoreError {
                if error.isTransient { thread.dropConnection() }
                throw error
            }
        }
    }

    func heartbeatAge(_ service: HeartbeatService, hostname: String) async throws -> Double? {
        try await read { c in
            let now = c.nowMillisecondsSQL
            let rows = switch service {
            case .serve: try c.query("SELECT \(now) - MAX(last_heartbeat) FROM nodes WHERE hostname = ?", [.text(hostname)])
            default: try c.query("SELECT \(now) - MAX(beat_at) FROM service_heartbeats WHERE service = ? AND hostname = ?",
                                 [.text(service.rawValue), .text(hostname)])
            }
            return rows.first?.first?.int64.map { Double($0) / 1000 }
        }
    }

    // MARK: Reads

    /// Runs a read on the readers (`search`: on the search readers, when there are any), within
    /// the statement time limit, stopped when the calling task is cancelled.
    private func read<T: Sendable>(search: Bool = false, _ body: @escaping @Sendable (DatabaseConnection) throws -> T) async throws -> T {
        guard !isClosed.withLock({ $0 }) else { throw StoreError.closed }
        let pool = search ? (searchers ?? readers) : readers
        return try await pool.run(ticket: ReadTicket(timeLimitSeconds: options.reads.statementSeconds), body)
    }

    private static let programColumns = """
        p.id, p.tuner_id, p.name, p.started_at, p.ended_at, t.description,
        (SELECT COUNT(*) FROM caption_lines c WHERE c.program_id = p.id AND c.service = \(CaptionService.cea608)), t.address,
        (SELECT n.hostname FROM nodes n WHERE n.id = t.node_id)
        """

    private static func program(_ row: [SQLValue], at i: Int = 0) -> ProgramSummary? {
        guard let id = row[i].int64 else { return nil }
        return ProgramSummary(id: id, tunerID: row[i + 1].int64 ?? 0, name: row[i + 2].string, startedAt: row[i + 3].int64 ?? 0,
                              endedAt: row[i + 4].int64, tunerDescription: row[i + 5].string, lineCount: Int(row[i + 6].int64 ?? 0),
                              tunerAddress: row[i + 7].string, nodeName: row[i + 8].string)
    }

    private static let lineColumns = "c.id, c.program_id, c.tuner_id, c.seq, c.start_ms, c.end_ms, c.mode, c.text, c.captured_at, c.service"
    /// Columns after `lineColumns` start here.
    private static let afterLineColumns = 10

    private static func line(_ row: [SQLValue]) -> CaptionLine {
        CaptionLine(id: row[0].int64 ?? 0, programID: row[1].int64 ?? 0, tunerID: row[2].int64 ?? 0, service: Int(row[9].int64 ?? 0),
                    sequence: Int(row[3].int64 ?? 0), startMs: row[4].int64 ?? 0, endMs: row[5].int64 ?? 0, mode: row[6].string ?? "",
                    text: row[7].string ?? "", capturedAt: row[8].int64 ?? 0)
    }

    func tuners(includeDisconnected: Bool) async throws -> [TunerStatus] {
        try await read { c in
            let rows = try c.query("""
                SELECT t.id, t.node_id, n.hostname, t.address, t.port, t.description, t.connected_at, t.disconnected_at, t.disconnect_reason,
                       \(Self.programColumns)
                FROM tuners t
                LEFT JOIN nodes n ON n.id = t.node_id
                LEFT JOIN programs p ON p.id = (SELECT p2.id FROM programs p2 WHERE p2.tuner_id = t.id AND p2.ended_at IS NULL
                                                ORDER BY p2.started_at DESC LIMIT 1)
                \(includeDisconnected ? "" : "WHERE t.disconnected_at IS NULL")
                ORDER BY t.connected_at DESC, t.id DESC
                LIMIT 10000
                """, [])
            return rows.map { row in
                let disconnectedAt = row[7].int64
                return TunerStatus(id: row[0].int64 ?? 0, nodeID: row[1].int64 ?? 0, hostname: row[2].string, address: row[3].string ?? "",
                                   port: Int(row[4].int64 ?? 0), description: row[5].string, connectedAt: row[6].int64 ?? 0,
                                   disconnectedAt: disconnectedAt, disconnectReason: row[8].string,
                                   currentProgram: disconnectedAt == nil ? Self.program(row, at: 9) : nil)
            }
        }
    }

    func programs(_ query: ProgramQuery) async throws -> [ProgramSummary] {
        try await read { c in
            var conditions: [String] = []
            var parameters: [SQLValue] = []
            if let tuner = query.tunerID { conditions.append("p.tuner_id = ?"); parameters.append(.int(tuner)) }
            if let from = query.startedFrom { conditions.append("p.started_at >= ?"); parameters.append(.int(from)) }
            if let before = query.startedBefore { conditions.append("p.started_at < ?"); parameters.append(.int(before)) }
            parameters += [.int(Int64(max(0, query.limit))), .int(Int64(max(0, query.offset)))]
            let rows = try c.query("""
                SELECT \(Self.programColumns)
                FROM programs p LEFT JOIN tuners t ON t.id = p.tuner_id
                \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
                ORDER BY p.started_at DESC, p.id DESC LIMIT ? OFFSET ?
                """, parameters)
            return rows.compactMap { Self.program($0) }
        }
    }

    func program(id: Int64) async throws -> ProgramSummary? {
        try await read { c in
            try c.query("SELECT \(Self.programColumns) FROM programs p LEFT JOIN tuners t ON t.id = p.tuner_id WHERE p.id = ?", [.int(id)])
                .first.flatMap { Self.program($0) }
        }
    }

    func lines(programID: Int64, service: Int) async throws -> [CaptionLine] {
        try await read { c in
            try c.query("SELECT \(Self.lineColumns) FROM caption_lines c WHERE c.program_id = ? AND c.service = ? ORDER BY c.seq, c.id",
                        [.int(programID), .int(Int64(service))])
                .map(Self.line)
        }
    }

    func lines(programID: Int64, service: Int, afterSequence: Int?, limit: Int) async throws -> [CaptionLine] {
        try await read { c in
            try c.query("""
                SELECT \(Self.lineColumns) FROM caption_lines c WHERE c.program_id = ? AND c.service = ? AND c.seq > ?
                ORDER BY c.seq, c.id LIMIT ?
                """, [.int(programID), .int(Int64(service)), .int(Int64(afterSequence ?? -1)), .int(Int64(max(0, limit)))])
                .map(Self.line)
        }
    }

    func lineCounts(programID: Int64) async throws -> [ServiceLineCount] {
        try await read { c in
            // Read from the (program_id, service, seq) index alone.
            try c.query("SELECT service, COUNT(*) FROM caption_lines WHERE program_id = ? GROUP BY service ORDER BY service", [.int(programID)])
                .map { ServiceLineCount(service: Int($0[0].int64 ?? 0), lines: Int($0[1].int64 ?? 0)) }
        }
    }

    func recentLines(programIDs: [Int64], perProgram: Int, upTo lastLineID: Int64) async throws -> [CaptionLine] {
        guard !programIDs.isEmpty, perProgram > 0 else { return [] }
        return try await read { c in
            var lines: [CaptionLine] = []
            for id in programIDs {
                // Newest first through (program_id, service, seq): `perProgram` rows read, whatever the program's length.
                lines += try c.query("""
                    SELECT \(Self.lineColumns) FROM caption_lines c WHERE c.program_id = ? AND c.service = \(CaptionService.cea608) AND c.id <= ?
                    ORDER BY c.seq DESC, c.id DESC LIMIT ?
                    """, [.int(id), .int(lastLineID), .int(Int64(perProgram))]).map(Self.line)
            }
            return lines.sorted { $0.id < $1.id }
        }
    }

    func xdsItems(programID: Int64) async throws -> [XDSItem] {
        try await xdsItems(programID: programID, limit: Int(Int32.max))
    }

    func xdsItems(programID: Int64, limit: Int) async throws -> [XDSItem] {
        try await read { c in
            try c.query("SELECT program_id, tuner_id, seq, at_ms, kind, value FROM xds_items WHERE program_id = ? ORDER BY seq LIMIT ?",
                        [.int(programID), .int(Int64(max(0, limit)))])
                .map { row in
                    XDSItem(programID: row[0].int64 ?? 0, tunerID: row[1].int64 ?? 0, sequence: Int(row[2].int64 ?? 0),
                            atMs: row[3].int64 ?? 0, kind: row[4].string ?? "", value: row[5].string ?? "")
                }
        }
    }

    func liveCursorNow() async throws -> LiveCursor {
        try await read { c in
            LiveCursor(lastLineID: try c.query("SELECT MAX(id) FROM caption_lines", []).first?.first?.int64 ?? 0)
        }
    }

    func liveLines(after cursor: LiveCursor, tunerID: Int64?, limit: Int) async throws -> LivePage {
        let settle = options.liveSettleMilliseconds
        return try await read { c in
            let now = try c.query("SELECT \(c.nowMillisecondsSQL)", []).first?.first?.int64 ?? 0
            let rows = try c.query("""
                SELECT \(Self.lineColumns), c.received_at FROM caption_lines c
                WHERE c.id > ? ORDER BY c.id LIMIT ?
                """, [.int(cursor.lastLineID), .int(Int64(max(1, limit)))])
            var page = LiveWindow.page(rows: rows.map { (Self.line($0), $0[Self.afterLineColumns].int64 ?? 0) }, after: cursor, now: now,
                                       settleMilliseconds: settle, step: c.autoIncrementStep, tunerID: tunerID)
            page.hasMore = rows.count == max(1, limit) && page.next.lastLineID == rows.last?.first?.int64
            return page
        }
    }

    func search(_ query: SearchQuery) async throws -> [SearchHit] {
        let terms = SearchTerms(query.text)
        guard !terms.terms.isEmpty else { throw StoreError.invalidArgument("the search has no words") }
        let words = terms.wordCount
        guard words <= options.reads.searchWords else {
            throw StoreError.invalidArgument("the search has \(words) words; at most \(options.reads.searchWords) are allowed")
        }
        return try await read(search: true) { c in
            var parameters: [SQLValue] = []
            var sql: String
            switch c.dialect {
            case .sqlite:
                sql = """
                    SELECT \(Self.lineColumns), p.name, p.started_at
                    FROM caption_lines_fts f JOIN caption_lines c ON c.id = f.rowid LEFT JOIN programs p ON p.id = c.program_id
                    WHERE caption_lines_fts MATCH ?
                    """
                parameters.append(.text(terms.fts5Query))
            case .mysql:
                var conditions: [String] = []
                if let boolean = terms.mysqlBooleanQuery() {
                    conditions.append("MATCH(c.text) AGAINST (? IN BOOLEAN MODE)")
                    parameters.append(.text(boolean))
                }
                for regexp in terms.mysqlRegexps {
                    conditions.append("c.text REGEXP ?")
                    parameters.append(.text(regexp))
                }
                sql = """
                    SELECT \(Self.lineColumns), p.name, p.started_at
                    FROM caption_lines c LEFT JOIN programs p ON p.id = c.program_id
                    WHERE \(conditions.joined(separator: " AND "))
                    """
            }
            sql += " AND c.service = ?"
            parameters.append(.int(Int64(query.service)))
            if let tuner = query.tunerID {
                sql += " AND c.tuner_id = ?"
                parameters.append(.int(tuner))
            }
            sql += " ORDER BY c.id DESC LIMIT ? OFFSET ?"
            parameters += [.int(Int64(max(0, query.limit))), .int(Int64(max(0, query.offset)))]
            return try c.query(sql, parameters).map { row in
                let line = Self.line(row)
                return SearchHit(line: line, programName: row[Self.afterLineColumns].string, programStartedAt: row[Self.afterLineColumns + 1].int64 ?? 0,
                                 snippet: terms.snippet(of: line.text))
            }
        }
    }

    // MARK: Operations

    func spoolDepth() async -> Int {
        gauge.current
    }

    func waitForSpoolDrained(timeoutSeconds: Double) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeoutSeconds * 1000))
        while ContinuousClock.now < deadline {
            if await spoolDepth() == 0 { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return await spoolDepth() == 0
    }

    /// Retries the spool while it has writes: at once after progress, after the retry interval
    /// after a failure or when empty.
    private func startReplayLoop() {
        guard let writer, let pipeline else { return }
        let interval = Duration.milliseconds(Int64(options.retryIntervalSeconds * 1000))
        let gauge = self.gauge
        let task = Task.detached {
            while !Task.isCancelled {
                var result = WritePipeline.DrainResult.empty
                if gauge.current > 0 {
                    result = (try? await writer.perform { thread in pipeline.value.drainChunk(on: thread) }) ?? .empty
                }
                if result != .progressed {
                    try? await Task.sleep(for: interval)
                }
            }
        }
        replayTask.withLock { $0 = task }
    }

    /// PASSIVE checkpoints: copy what the WAL holds into the database file without waiting for
    /// the writer or the readers (a reader's snapshot only delays the part it still uses).
    private func startCheckpointLoop() {
        guard let checkpointer else { return }
        let task = Task.detached {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.checkpointInterval)
                _ = try? await checkpointer.run { c in try c.query("PRAGMA wal_checkpoint(PASSIVE)", []) }
            }
        }
        checkpointTask.withLock { $0 = task }
    }

    func close() async {
        let first = isClosed.withLock { closed -> Bool in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        replayTask.withLock { $0?.cancel() }
        if let task = checkpointTask.withLock({ $0 }) {
            task.cancel()
            await task.value
        }
        await checkpointer?.stop()
        if let writer, let pipeline {
            _ = try? await writer.perform { _ in pipeline.value.close() }
        }
        await writer?.stop()
        await readers.stop()
        await searchers?.stop()
    }
}

/// The live feed's cursor logic, kept pure for tests.
///
/// Line ids come from an auto-increment counter, but concurrent writers may commit out of id
/// order: a reader can see id 11 before id 10 commits. Passing over a missing id for good would
/// lose line 10, so the cursor stops before a gap until the line after it is older than the
/// settle time (a rolled-back insert leaves a gap that is never filled).
enum LiveWindow {
    static func page(rows: [(CaptionLine, Int64)], after cursor: LiveCursor, now: Int64, settleMilliseconds: Int64,
                     step: Int64, tunerID: Int64?) -> LivePage {
        var expected = cursor.lastLineID + step
        var accepted: [CaptionLine] = []
        var last = cursor.lastLineID
        for (line, receivedAt) in rows {
            if line.id != expected, cursor.lastLineID != 0 || !accepted.isEmpty, now - receivedAt < settleMilliseconds {
                break
            }
            accepted.append(line)
            last = line.id
            expected = line.id + step
        }
        // The live feed shows the 608 captions: a 708 service usually carries the same words, which would show every caption twice.
        let captions = accepted.filter { $0.service == CaptionService.cea608 }
        let visible = tunerID.map { tuner in captions.filter { $0.tunerID == tuner } } ?? captions
        return LivePage(lines: visible, next: LiveCursor(lastLineID: last))
    }
}

/// Random positive 63-bit ids for nodes, tuners and programs, chosen without the database
/// so that they can be spooled during an outage.
enum IdentifierGenerator {
    static func next() -> Int64 {
        var generator = SystemRandomNumberGenerator()
        return Int64.random(in: 1...Int64.max, using: &generator)
    }
}

enum Clock {
    static func milliseconds() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
}

/// Schema versions: SQLite is migrated here; MySQL is only checked (an admin applies it).
enum Migrator {
    static func installedVersion(_ connection: DatabaseConnection) throws -> Int? {
        do {
            return try connection.query("SELECT MAX(version) FROM schema_version", []).first?.first?.int64.map(Int.init)
        } catch StoreError.schemaOutdated {
            return nil
        }
    }

    static func check(_ connection: DatabaseConnection, label: String) throws {
        let found = try installedVersion(connection)
        let required = Schema.currentVersion(for: connection.dialect)
        guard let found, found >= required else {
            throw StoreError.schemaOutdated(database: label, found: found, required: required)
        }
    }

    static func migrate(_ connection: SQLiteConnection) throws {
        let found = try installedVersion(connection) ?? 0
        for migration in Schema.migrations(for: .sqlite) where migration.version > found {
            try connection.transaction {
                for statement in migration.statements(.sqlite) { try connection.executeScript(statement) }
                try connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL)", [])
                try connection.execute("INSERT OR IGNORE INTO schema_version (version, applied_at) VALUES (?, \(connection.nowMillisecondsSQL))",
                                       [.int(Int64(migration.version))])
            }
        }
    }
}
