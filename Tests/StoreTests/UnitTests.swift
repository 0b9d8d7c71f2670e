import Foundation
@testable import Store
import Testing

@Suite("Store units")
struct StoreUnitTests {
    @Test("search text becomes terms, FTS5 and MySQL queries")
    func searchTerms() {
        let terms = SearchTerms("King \"of  ÉNGLAND\" don't ?")
        #expect(terms.terms.map(\.tokens) == [["king"], ["of", "england"], ["don", "t"]])
        #expect(terms.fts5Query == "\"king\" \"of england\" \"don t\"")
        // "of" is below InnoDB's 3-character minimum; "don't" is one InnoDB word.
        #expect(terms.mysqlBooleanQuery() == "+\"england\" +\"king\"")
        // Letters match their accented forms (REGEXP does not use the collation's accent folding).
        #expect(terms.mysqlRegexps[1] == "(^|[^\\p{L}\\p{N}])[oòóôõöøōŏő]f[^\\p{L}\\p{N}]+[eèéêëēĕėęě][nñńņňŉ][gĝğġģ][lĺļľŀł][aàáâãäåāăą][nñńņňŉ][dďđ]([^\\p{L}\\p{N}]|$)")
        #expect(SearchTerms("\"a b\" is").mysqlBooleanQuery() == nil)
    }

    @Test("search tokens fold case and diacritics as SQLite's unicode61 (remove_diacritics 2) does")
    func searchFolding() {
        // Composed and decomposed accents fold alike; letters without a decomposition stay.
        let tokens = SearchTerms("Ünïcödé Cafe\u{0301} ÇA Ørsted Straße Œuvre").terms.map(\.tokens)
        #expect(tokens == [["unicode"], ["cafe"], ["ca"], ["ørsted"], ["straße"], ["œuvre"]])
    }

    @Test("snippets mark each match and keep the text whole")
    func snippets() {
        let parts = SearchTerms("\"king of england\" dead").snippet(of: "The King of England is dead; the king.")
        #expect(parts == [
            SnippetPart(text: "The ", isMatch: false),
            SnippetPart(text: "King of England", isMatch: true),
            SnippetPart(text: " is ", isMatch: false),
            SnippetPart(text: "dead", isMatch: true),
            SnippetPart(text: "; the king.", isMatch: false),
        ])
    }

    private func row(_ id: Int64, tuner: Int64 = 1, receivedAt: Int64) -> (CaptionLine, Int64) {
        (CaptionLine(id: id, programID: 1, tunerID: tuner, sequence: 0, startMs: 0, endMs: 0, mode: "pop-on", text: "\(id)", capturedAt: 0), receivedAt)
    }

    @Test("the live cursor waits at a fresh gap and passes an old one")
    func liveWindow() {
        // Line 11 committed before 10: stop before the gap while it is fresh.
        let fresh = LiveWindow.page(rows: [row(9, receivedAt: 1_000), row(11, receivedAt: 1_900)], after: LiveCursor(lastLineID: 8),
                                    now: 2_000, settleMilliseconds: 500, step: 1, tunerID: nil)
        #expect(fresh.lines.map(\.id) == [9])
        #expect(fresh.next == LiveCursor(lastLineID: 9))
        // Later, 10 is there.
        let filled = LiveWindow.page(rows: [row(10, receivedAt: 2_100), row(11, receivedAt: 1_900)], after: fresh.next,
                                     now: 2_200, settleMilliseconds: 500, step: 1, tunerID: nil)
        #expect(filled.lines.map(\.id) == [10, 11])
        // A gap that never fills (rolled back) is passed once the line after it is old enough.
        let old = LiveWindow.page(rows: [row(13, receivedAt: 1_000)], after: LiveCursor(lastLineID: 11),
                                  now: 2_000, settleMilliseconds: 500, step: 1, tunerID: nil)
        #expect(old.lines.map(\.id) == [13])
        // Filtering by tuner keeps moving the cursor past other tuners' lines.
        let filtered = LiveWindow.page(rows: [row(14, tuner: 2, receivedAt: 1_000), row(15, tuner: 1, receivedAt: 1_000)],
                                       after: LiveCursor(lastLineID: 13), now: 2_000, settleMilliseconds: 500, step: 1, tunerID: 1)
        #expect(filtered.lines.map(\.id) == [15])
        #expect(filtered.next == LiveCursor(lastLineID: 15))
    }

    @Test("the spool keeps records across reopen and cuts a torn tail")
    func spoolFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-spool-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = WriteOperation.programRenamed(id: 7, name: "One")
        let second = WriteOperation.programEnded(id: 7, at: 99)
        do {
            let spool = try Spool(directory: directory)
            try spool.append(first)
            try spool.append(second)
            #expect(spool.pendingCount == 2)
            // A second process cannot share it.
            #expect(throws: StoreError.self) { try Spool(directory: directory) }
        }
        // A crash in the middle of a third record.
        let handle = try #require(FileHandle(forWritingAtPath: directory + "/ccr-spool.log"))
        handle.seekToEndOfFile()
        handle.write(Data([200, 0, 0, 0, 1, 2, 3, 4, 123, 34]))
        try handle.close()

        let reopened = try Spool(directory: directory)
        #expect(reopened.pendingCount == 2)
        let (operations, end) = try reopened.peek(limit: 10)
        #expect(operations == [first, second])
        try reopened.markApplied(upTo: end, count: 2)
        #expect(reopened.pendingCount == 0)
        let size = try FileManager.default.attributesOfItem(atPath: directory + "/ccr-spool.log")[.size] as? Int
        #expect(size == 0)
    }

    @Test("a full spool refuses more writes with a message naming the limit, and takes writes again once applied")
    func spoolLimit() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-spool-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let spool = try Spool(directory: directory, limitBytes: 400)
        var accepted = 0
        var refusal: StoreError?
        for i in 0..<100 {
            do { try spool.append(.programRenamed(id: Int64(i), name: "Program \(i)")); accepted += 1 } catch let error as StoreError {
                refusal = error
                break
            }
        }
        #expect(accepted > 2 && accepted < 100)
        #expect("\(refusal.map { "\($0)" } ?? "")".contains("spool_limit"))
        let size = try FileManager.default.attributesOfItem(atPath: directory + "/ccr-spool.log")[.size] as? Int ?? 0
        #expect(size <= 400)
        let (operations, end) = try spool.peek(limit: 1000)
        try spool.markApplied(upTo: end, count: operations.count)
        try spool.append(.programRenamed(id: 1, name: "after"))
        #expect(spool.pendingCount == 1)
    }

    @Test("ccr schema for MySQL is idempotent DDL with utf8mb4 and a full-text index")
    func mysqlSchema() {
        let script = Schema.script(for: .mysql)
        #expect(script.contains("CREATE TABLE IF NOT EXISTS caption_lines"))
        #expect(script.contains("FULLTEXT KEY caption_lines_text (text)"))
        #expect(script.contains("utf8mb4"))
        #expect(!script.contains("CREATE TABLE caption_lines"))
        #expect(script.contains("INSERT IGNORE INTO schema_version"))
    }

    @Test("an SQLite file that cannot be opened is an error at start, not a silent spool")
    func sqliteBadPath() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-sqlite-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let options = StoreOptions(spoolDirectory: directory.appendingPathComponent("spool").path)
        let error = await #expect(throws: StoreError.self) {
            _ = try await openStore(.sqlite(path: "/nonexistent-\(UUID().uuidString)/ccr.sqlite"), options: options)
        }
        #expect(error.map { "\($0)" }?.contains("unable to open database file") == true)
    }

    /// Runs `body` with the path of an SQLite file in a fresh folder, removed afterwards.
    private func withTemporaryDatabase(_ body: (String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory.appendingPathComponent("ccr.sqlite").path)
    }

    @Test("an SQLite database is migrated once and reopened as is")
    func sqliteMigration() async throws { try await withTemporaryDatabase { path in
        let store = try await openStore(.sqlite(path: path))
        let (_, tuner, program) = try await startTuner(store)
        try await store.appendLines([line("kept", program: program, tuner: tuner, at: 0)])
        await store.close()
        let again = try await openStore(.sqlite(path: path))
        #expect(try await again.lines(programID: program).map(\.text) == ["kept"])
        await again.close()
        // WAL mode is on (readers never block the writer).
        let connection = try SQLiteConnection(path: path, readOnly: true, busyTimeoutSeconds: 1)
        #expect(try connection.query("PRAGMA journal_mode", []).first?.first?.string == "wal")
        #expect(try connection.query("SELECT MAX(version) FROM schema_version", []).first?.first?.int64 == Int64(Schema.currentVersion(for: .sqlite)))
    } }

    @Test("a version-1 SQLite database is migrated to version 2: the per-tuner line index is dropped, lines and a tuner's search stay")
    func sqliteMigrationFromVersion1() async throws { try await withTemporaryDatabase { path in
        // A database as ccr made it before version 2, with a line in it.
        let old = try SQLiteConnection(path: path, readOnly: false, busyTimeoutSeconds: 1)
        for statement in Schema.migrations[0].statements(.sqlite) { try old.executeScript(statement) }
        try old.execute("INSERT INTO schema_version (version, applied_at) VALUES (1, 0)", [])
        try old.execute("INSERT INTO tuners (id, node_id, address, port, connected_at) VALUES (7, 1, '198.51.100.7', 4000, 0)", [])
        try old.execute("INSERT INTO programs (id, tuner_id, started_at) VALUES (70, 7, 0)", [])
        try old.execute("""
            INSERT INTO caption_lines (program_id, tuner_id, seq, start_ms, end_ms, mode, text, captured_at, received_at, writer_id, writer_seq)
            VALUES (70, 7, 0, 0, 1000, 'POP', 'the old line', 0, 0, 1, 1)
            """, [])
        let indexes = { (c: SQLiteConnection) in
            try c.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'caption_lines'", []).compactMap { $0.first?.string }
        }
        #expect(try indexes(old).contains("caption_lines_tuner"))
        old.close()

        let store = try await openStore(.sqlite(path: path))
        #expect(try await store.lines(programID: 70).map(\.text) == ["the old line"])
        #expect(try await store.search(SearchQuery(text: "old", tunerID: 7)).map(\.line.text) == ["the old line"])
        #expect(try await store.search(SearchQuery(text: "old", tunerID: 8)).isEmpty)
        await store.close()
        let migrated = try SQLiteConnection(path: path, readOnly: true, busyTimeoutSeconds: 1)
        #expect(try !indexes(migrated).contains("caption_lines_tuner"))
        #expect(try indexes(migrated).contains("caption_lines_program"))
        #expect(try migrated.query("SELECT MAX(version) FROM schema_version", []).first?.first?.int64 == Int64(Schema.currentVersion(for: .sqlite)))
    } }

    @Test("the MySQL schema has the migrations MySQL needs; a SQLite-only migration is not in it")
    func mysqlVersionUnchangedBySQLiteMigration() {
        #expect(Schema.currentVersion(for: .mysql) == 4)
        #expect(Schema.currentVersion(for: .sqlite) == 4)
        let script = Schema.script(for: .mysql)
        #expect(!script.contains("-- version 2"))
        #expect(script.contains("-- version 3") && script.contains("-- version 4"))
        #expect(script.hasSuffix("ALTER TABLE schema_version COMMENT = 'ccr schema version 4';\n"))
        #expect(Schema.script(for: .mysql, through: 1).hasPrefix("-- CC Repository schema, version 1,"))
        #expect(!Schema.script(for: .mysql, through: 1).contains("service"))
        #expect(script.contains("KEY caption_lines_tuner"))
        #expect(Schema.script(for: .sqlite).contains("DROP INDEX IF EXISTS caption_lines_tuner"))
    }

    @Test("the WAL is checkpointed into the database file by the checkpoint thread, while the writer's own threshold is far away")
    func sqliteCheckpointThread() async throws { try await withTemporaryDatabase { path in
        let store = try await openStore(.sqlite(path: path))
        let (_, tuner, program) = try await startTuner(store)
        let size = { (file: String) in ((try? FileManager.default.attributesOfItem(atPath: file)[.size]) as? Int) ?? 0 }
        try await Task.sleep(for: .seconds(1))
        let before = size(path)
        // ~1 MB of lines in 200 commits: far below the writer's 16,384-page (64 MB) threshold, so
        // only the checkpoint thread can have copied them into the database file.
        for batch in 0..<200 {
            try await store.appendLines((0..<20).map { line(String(repeating: "caption \(batch) \($0) ", count: 12), program: program, tuner: tuner,
                                                              at: Int64(batch * 20 + $0)) })
        }
        var grown = false
        for _ in 0..<50 where !grown {
            try await Task.sleep(for: .milliseconds(100))
            grown = size(path) > before + 500_000
        }
        #expect(grown, "database file \(before) -> \(size(path)) bytes (WAL \(size(path + "-wal")) bytes)")
        await store.close()
        let reopened = try SQLiteConnection(path: path, readOnly: true, busyTimeoutSeconds: 1)
        #expect(try reopened.query("SELECT COUNT(*) FROM caption_lines", []).first?.first?.int64 == 4000)
    } }

    @Test("insert batches keep every row in order and use at most 8 batch sizes")
    func batchShapes() {
        var sizes = Set<Int>()
        for count in 0...600 {
            let rows = Array(0..<count)
            let chunks = rows.batchShaped()
            #expect(chunks.flatMap { $0 } == rows)
            #expect(chunks.allSatisfy { !$0.isEmpty && $0.count <= 128 })
            sizes.formUnion(chunks.map(\.count))
        }
        #expect(sizes == [1, 2, 4, 8, 16, 32, 64, 128])
    }
}

