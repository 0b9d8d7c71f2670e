import Foundation
@testable import Store
import Testing

/// CEA-708 services beside the 608 captions (schema version 4): stored, paged, counted,
/// searched and spooled apart, on SQLite and MariaDB, and older databases upgraded in place.
@Suite("Store: CEA-708 services")
struct StoreServiceTests {
    private func serviceLine(_ text: String, service: Int, program: Int64, tuner: Int64, at ms: Int64) -> CaptionLineInput {
        CaptionLineInput(programID: program, tunerID: tuner, service: service, startMs: ms, endMs: ms + 1500, mode: "pop-on", text: text,
                         capturedAt: nowMs())
    }

    @Test("608 and 708 lines of one program are read, counted, searched and fed live apart", arguments: Backend.allCases)
    func servicesApart(backend: Backend) async throws {
        try await withStoreEnvironment(backend) { env in
            let (_, tuner, program) = try await startTuner(env.writer, name: "Two Services")
            let cursor = try await env.reader.liveCursorNow()
            // Interleaved as a tuner sends them: each service is numbered from 0 on its own.
            try await env.writer.appendLines([
                serviceLine("PREVIOUSLY ON THE TUDORS", service: 0, program: program, tuner: tuner, at: 1_000),
                serviceLine("Will you ask Francis", service: 1, program: program, tuner: tuner, at: 1_100),
                serviceLine("WILL YOU ASK FRANCIS", service: 0, program: program, tuner: tuner, at: 2_000),
                serviceLine("Spanish: Preguntarás a Francisco", service: 2, program: program, tuner: tuner, at: 2_100),
                serviceLine("of Elizabeth to his son?", service: 1, program: program, tuner: tuner, at: 3_100),
            ])
            #expect(try await env.reader.lines(programID: program).map(\.text) == ["PREVIOUSLY ON THE TUDORS", "WILL YOU ASK FRANCIS"])
            let svc1 = try await env.reader.lines(programID: program, service: 1)
            #expect(svc1.map(\.text) == ["Will you ask Francis", "of Elizabeth to his son?"])
            #expect(svc1.map(\.sequence) == [0, 1])
            #expect(svc1.allSatisfy { $0.service == 1 })
            #expect(try await env.reader.lines(programID: program, service: 1, afterSequence: 0, limit: 10).map(\.text) == ["of Elizabeth to his son?"])
            #expect(try await env.reader.lines(programID: program, service: 3).isEmpty)
            #expect(try await env.reader.lineCounts(programID: program)
                    == [ServiceLineCount(service: 0, lines: 2), ServiceLineCount(service: 1, lines: 2), ServiceLineCount(service: 2, lines: 1)])
            // The listing's count is the 608 captions', as before 708.
            #expect(try await env.reader.program(id: program)?.lineCount == 2)

            // Search: 608 unless a service is named; a hit carries its service.
            #expect(try await env.reader.search(SearchQuery(text: "francis")).map(\.line.text) == ["WILL YOU ASK FRANCIS"])
            let hits = try await env.reader.search(SearchQuery(text: "francis", service: 1))
            #expect(hits.map(\.line.text) == ["Will you ask Francis"])
            #expect(hits.map(\.line.service) == [1])
            #expect(try await env.reader.search(SearchQuery(text: "francisco", service: 2)).count == 1)
            #expect(try await env.reader.search(SearchQuery(text: "francisco")).isEmpty)

            // The live feed carries 608 only, and its cursor moves past the 708 lines.
            var page = LivePage(lines: [], next: cursor)
            let deadline = ContinuousClock.now + .seconds(5)
            var live: [String] = []
            while live.count < 2, ContinuousClock.now < deadline {
                page = try await env.reader.liveLines(after: page.next, tunerID: nil, limit: 100)
                live += page.lines.map(\.text)
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(live == ["PREVIOUSLY ON THE TUDORS", "WILL YOU ASK FRANCIS"])
            // A read full of 708 lines shows none of them but says more rows wait.
            let full = try await env.reader.liveLines(after: cursor, tunerID: nil, limit: 2)
            #expect(full.lines.map(\.text) == ["PREVIOUSLY ON THE TUDORS"])
            #expect(full.hasMore)
            let rest = try await env.reader.liveLines(after: full.next, tunerID: nil, limit: 100)
            #expect(rest.lines.map(\.text) == ["WILL YOU ASK FRANCIS"])
            #expect(!rest.hasMore)
            #expect(try await env.reader.recentLines(programIDs: [program], perProgram: 8, upTo: .max).map(\.text)
                    == ["PREVIOUSLY ON THE TUDORS", "WILL YOU ASK FRANCIS"])
        }
    }

    @Test("MariaDB down while 608 and 708 lines are written: after the replay each has its service and numbering")
    func spoolKeepsServices() async throws {
        try await withStoreEnvironment(.mariadb) { env in
            let server = try #require(env.mariadb)
            let (_, tuner, program) = try await startTuner(env.writer, name: "Outage With 708")
            try await env.writer.appendLines([serviceLine("before 608", service: 0, program: program, tuner: tuner, at: 0)])
            server.kill()
            for i in 0..<3 {
                try await env.writer.appendLines([
                    serviceLine("during 608 \(i)", service: 0, program: program, tuner: tuner, at: Int64(i + 1) * 1000),
                    serviceLine("during svc1 \(i)", service: 1, program: program, tuner: tuner, at: Int64(i + 1) * 1000 + 10),
                ])
            }
            #expect(await env.writer.spoolDepth() > 0, "writes were spooled")
            try await server.restart()
            #expect(await env.writer.waitForSpoolDrained(timeoutSeconds: 30), "spool replayed")
            let cea608 = try await env.reader.lines(programID: program)
            #expect(cea608.map(\.text) == ["before 608", "during 608 0", "during 608 1", "during 608 2"])
            #expect(cea608.map(\.sequence) == [0, 1, 2, 3])
            let svc1 = try await env.reader.lines(programID: program, service: 1)
            #expect(svc1.map(\.text) == ["during svc1 0", "during svc1 1", "during svc1 2"])
            #expect(svc1.map(\.sequence) == [0, 1, 2])
        }
    }

    @Test("a spool written before 708 (lines without a service) replays its lines as 608")
    func oldSpoolRecord() throws {
        let json = #"{"lines":{"_0":[{"key":{"writer":7,"number":1},"seq":0,"line":{"programID":70,"tunerID":7,"startMs":0,"endMs":1000,"mode":"pop-on","text":"old","capturedAt":5}}]}}"#
        let operation = try JSONDecoder().decode(WriteOperation.self, from: Data(json.utf8))
        guard case .lines(let lines) = operation else {
            Issue.record("decoded \(operation)")
            return
        }
        #expect(lines.map(\.line.service) == [CaptionService.cea608])
        #expect(lines.map(\.line.text) == ["old"])
        // And what this ccr spools says its service (708 lines must not come back as 608).
        var svc = lines[0]
        svc.line.service = 5
        let again = try JSONDecoder().decode(WriteOperation.self, from: JSONEncoder().encode(WriteOperation.lines([svc])))
        #expect(again == .lines([svc]))
    }

    @Test("a version-3 SQLite database (before 708) opens, gains the service column, keeps its lines as 608")
    func sqliteFromVersion2() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("ccr.sqlite").path
        let old = try SQLiteConnection(path: path, readOnly: false, busyTimeoutSeconds: 1)
        for migration in Schema.migrations(for: .sqlite) where migration.version <= 3 {
            for statement in migration.statements(.sqlite) { try old.executeScript(statement) }
            try old.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, 0)", [.int(Int64(migration.version))])
        }
        try old.execute("INSERT INTO tuners (id, node_id, address, port, connected_at) VALUES (7, 1, '198.51.100.7', 4000, 0)", [])
        try old.execute("INSERT INTO programs (id, tuner_id, started_at) VALUES (70, 7, 0)", [])
        try old.execute("""
            INSERT INTO caption_lines (program_id, tuner_id, seq, start_ms, end_ms, mode, text, captured_at, received_at, writer_id, writer_seq)
            VALUES (70, 7, 0, 0, 1000, 'pop-on', 'the old line', 0, 0, 1, 1)
            """, [])
        let columns = { (c: SQLiteConnection) in try c.query("PRAGMA table_info(caption_lines)", []).compactMap { $0[1].string } }
        #expect(try !columns(old).contains("service"))
        old.close()

        let store = try await openStore(.sqlite(path: path))
        #expect(try await store.lines(programID: 70).map(\.text) == ["the old line"])
        #expect(try await store.lineCounts(programID: 70) == [ServiceLineCount(service: 0, lines: 1)])
        try await store.appendLines([serviceLine("a new 708 line", service: 1, program: 70, tuner: 7, at: 10)])
        #expect(try await store.lines(programID: 70, service: 1).map(\.text) == ["a new 708 line"])
        #expect(try await store.search(SearchQuery(text: "old")).map(\.line.text) == ["the old line"])
        await store.close()
        let migrated = try SQLiteConnection(path: path, readOnly: true, busyTimeoutSeconds: 1)
        #expect(try columns(migrated).contains("service"))
        let index = try migrated.query("PRAGMA index_info(caption_lines_program)", []).compactMap { $0[2].string }
        #expect(index == ["program_id", "service", "seq"])
        #expect(try migrated.query("SELECT MAX(version) FROM schema_version", []).first?.first?.int64 == Int64(Schema.currentVersion(for: .sqlite)))
    }

    @Test("a version-3 MariaDB schema (before 708: every table there) gains the column from `ccr schema`, applied twice, and keeps its lines")
    func mariadbFromVersion3() async throws {
        let server = try await MariaDBServer.start(schemaThrough: 3)
        defer { server.stop() }
        try server.sql("""
            INSERT INTO tuners (id, node_id, address, port, connected_at) VALUES (7, 1, '198.51.100.7', 4000, 0);
            INSERT INTO programs (id, tuner_id, started_at) VALUES (70, 7, 0);
            INSERT INTO caption_lines (program_id, tuner_id, seq, start_ms, end_ms, mode, text, captured_at, received_at, writer_id, writer_seq)
            VALUES (70, 7, 0, 0, 1000, 'pop-on', 'the old line', 0, 0, 1, 1);
            """, database: "cc")
        // ccr refuses the old schema and says what to do.
        let refusal = await #expect(throws: StoreError.self) { _ = try await openStore(server.readWrite, options: testOptions(spool: nil)) }
        #expect(refusal == .schemaOutdated(database: server.readWrite.description, found: 3, required: Schema.currentVersion(for: .mysql)))
        #expect(refusal.map { "\($0)" }?.contains("ccr schema --dialect mysql") == true)

        let comment = "SELECT table_comment FROM information_schema.tables WHERE table_schema = 'cc' AND table_name = 'schema_version'"
        #expect(try server.sql(comment).trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "no version comment before version 4")
        let script = Schema.script(for: .mysql)
        try server.sql(script, database: "cc")
        try server.sql(script, database: "cc")  // idempotent: the guarded ALTER does nothing the second time
        let index = try server.sql("""
            SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM information_schema.STATISTICS
            WHERE TABLE_SCHEMA = 'cc' AND TABLE_NAME = 'caption_lines' AND INDEX_NAME = 'caption_lines_program'
            """)
        #expect(index.trimmingCharacters(in: .whitespacesAndNewlines) == "program_id,service,seq")
        // Where `ccrun database` reads the version (see DatabaseRunbook.schemaVersion).
        #expect(try server.sql(comment).trimmingCharacters(in: .whitespacesAndNewlines) == "ccr schema version \(Schema.currentVersion(for: .mysql))")

        let store = try await openStore(server.readWrite, options: testOptions(spool: nil))
        #expect(try await store.lines(programID: 70).map(\.text) == ["the old line"])
        try await store.appendLines([serviceLine("a new 708 line", service: 1, program: 70, tuner: 7, at: 10)])
        #expect(try await store.lineCounts(programID: 70) == [ServiceLineCount(service: 0, lines: 1), ServiceLineCount(service: 1, lines: 1)])
        await store.close()
    }
}
