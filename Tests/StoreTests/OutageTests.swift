import Foundation
@testable import Store
import Testing

/// Database outages: writes go to the spool and reach the database exactly once when it is back.
@Suite("Store outages and secrets")
struct OutageTests {
    /// Seconds the database stays down; `CCR_TEST_OUTAGE_SECONDS` lengthens it (the issue's 60 s).
    static let outageSeconds: Double = ProcessInfo.processInfo.environment["CCR_TEST_OUTAGE_SECONDS"].flatMap(Double.init) ?? 3

    @Test("MariaDB killed while lines are written: all lines present exactly once after restart")
    func spoolThroughOutage() async throws {
        try await withStoreEnvironment(.mariadb) { env in
            let server = try #require(env.mariadb)
            let (_, tuner, program) = try await startTuner(env.writer, name: "Outage Show")
            var expected: [String] = []
            for i in 0..<5 {
                expected.append("before \(i)")
                try await env.writer.appendLines([line("before \(i)", program: program, tuner: tuner, at: Int64(i) * 100)])
            }
            #expect(await env.writer.spoolDepth() == 0)

            server.kill()
            let outageStart = ContinuousClock.now
            var i = 0
            var second: Int64?
            var slowestWrite = Duration.zero
            while ContinuousClock.now - outageStart < .milliseconds(Int64(Self.outageSeconds * 1000)) || i < 8 {
                expected.append("during \(i)")
                let writeStart = ContinuousClock.now
                try await env.writer.appendLines([line("during \(i)", program: second ?? program, tuner: tuner, at: 10_000 + Int64(i) * 100)])
                slowestWrite = max(slowestWrite, ContinuousClock.now - writeStart)
                if i == 3 {
                    // The program splits during the outage too.
                    try await env.writer.programEnded(programID: program, endedAt: nowMs())
                    second = try await env.writer.programStarted(tunerID: tuner, startedAt: nowMs(), name: "Spooled Show")
                }
                i += 1
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(await env.writer.spoolDepth() > 0, "writes were spooled")
            #expect(slowestWrite < .seconds(5), "a write during the outage waits at most about the connect timeout")
            // Readers say clearly that the database is unreachable.
            let readError = await #expect(throws: StoreError.self) { try await env.reader.lines(programID: program) }
            #expect(readError?.isTransient == true)
            #expect(readError.map { "\($0)" }?.hasPrefix("database unreachable") == true)

            try await server.restart()
            #expect(await env.writer.waitForSpoolDrained(timeoutSeconds: 30), "spool replayed")
            let secondProgram = try #require(second)
            let first = try await env.reader.lines(programID: program)
            let next = try await env.reader.lines(programID: secondProgram)
            let all = first.map(\.text) + next.map(\.text)
            #expect(all == expected, "every line exactly once, in order")
            #expect(Set(all).count == all.count)
            #expect(first.count == 5 + 4)
            #expect(try await env.reader.program(id: program)?.endedAt != nil)
            #expect(try await env.reader.program(id: secondProgram)?.name == "Spooled Show")

            // Writes go straight to the database again.
            try await env.writer.appendLines([line("after", program: secondProgram, tuner: tuner, at: 99_000)])
            #expect(await env.writer.spoolDepth() == 0)
            #expect(try await env.reader.lines(programID: secondProgram).last?.text == "after")
        }
    }

    @Test("a store opened during an outage spools, and a spool left by a crash is replayed by the next process")
    func spoolSurvivesRestartOfCcr() async throws {
        try await withStoreEnvironment(.mariadb) { env in
            let server = try #require(env.mariadb)
            let (_, tuner, program) = try await startTuner(env.writer)
            server.kill()
            // A second ccr process (own spool folder) starts while the database is down.
            let spool = env.directory.appendingPathComponent("spool-2").path
            let first = try await openStore(env.writerConfiguration, options: testOptions(spool: spool))
            try await first.appendLines((0..<20).map { line("spooled \($0)", program: program, tuner: tuner, at: Int64($0)) })
            #expect(await first.spoolDepth() == 1)
            await first.close()  // as if it died: the spool file stays

            try await server.restart()
            let second = try await openStore(env.writerConfiguration, options: testOptions(spool: spool))
            #expect(await second.waitForSpoolDrained(timeoutSeconds: 30))
            await second.close()
            #expect(try await env.reader.lines(programID: program).map(\.text) == (0..<20).map { "spooled \($0)" })
        }
    }

    @Test("the password never appears in descriptions or errors")
    func passwordNeverShown() async throws {
        try await withStoreEnvironment(.mariadb) { env in
            let server = try #require(env.mariadb)
            let secret = server.readWritePassword.revealed
            #expect(!"\(env.writerConfiguration)".contains(secret))
            #expect(!"\(server.readWritePassword)".contains(secret))
            #expect(!String(reflecting: server.readWritePassword).contains(secret))
            #expect(!"\(StoreOptions())".contains(secret))

            // Wrong password: a login error that names the user, never the password.
            let wrong = DatabasePassword("not-the-" + secret)
            let bad = StoreConfiguration.mysql(host: "127.0.0.1", port: server.port, user: "cc_rw", password: wrong, database: "cc")
            let loginError = await #expect(throws: StoreError.self) { _ = try await openStore(bad, options: testOptions(spool: nil)) }
            #expect(loginError == .authenticationFailed(database: "mysql://cc_rw@127.0.0.1:\(server.port)/cc", user: "cc_rw"))
            #expect(loginError.map { "\($0)" }?.contains(wrong.revealed) == false)
            #expect(loginError.map { "\($0)" }?.contains(secret) == false)

            // Outage errors neither.
            server.kill()
            let outage = await #expect(throws: StoreError.self) { try await env.reader.tuners(includeDisconnected: true) }
            #expect(outage.map { "\($0)" }?.contains(secret) == false)
            #expect(outage.map { String(reflecting: $0) }?.contains(secret) == false)
        }
    }

    @Test("the MySQL schema applied a second time by the admin changes nothing")
    func schemaReapplied() async throws {
        try await withStoreEnvironment(.mariadb) { env in
            let server = try #require(env.mariadb)
            let (_, tuner, program) = try await startTuner(env.writer)
            try await env.writer.appendLines([line("kept across re-apply", program: program, tuner: tuner, at: 0)])
            let tables = ["schema_version", "nodes", "tuners", "programs", "caption_lines", "xds_items"]
            let before = try tables.map { try server.sql("SHOW CREATE TABLE \($0)", database: "cc") }
            try server.sql(Schema.script(for: .mysql), database: "cc")
            let after = try tables.map { try server.sql("SHOW CREATE TABLE \($0)", database: "cc") }
            #expect(before == after)
            #expect(try server.sql("SELECT MAX(version) FROM schema_version", database: "cc").trimmingCharacters(in: .whitespacesAndNewlines) == "\(Schema.currentVersion(for: .mysql))")
            #expect(try await env.reader.lines(programID: program).map(\.text) == ["kept across re-apply"])
            // cc_rw has no DDL rights: it could not have created the schema itself.
            let connection = try MySQLConnection(host: "127.0.0.1", port: server.port, user: "cc_rw", password: server.readWritePassword,
                                                 database: "cc", timeoutSeconds: 5)
            defer { connection.close() }
            let denied = #expect(throws: StoreError.self) { try connection.execute("CREATE TABLE probe (a INT)", []) }
            guard case .permissionDenied? = denied else {
                Issue.record("expected permissionDenied for DDL as cc_rw, got \(String(describing: denied))")
                return
            }
        }
    }

    @Test("a schema older than this ccr is refused with what to do")
    func schemaMissing() async throws {
        try await withStoreEnvironment(.mariadb) { env in
            let server = try #require(env.mariadb)
            try server.sql("DELETE FROM schema_version", database: "cc")
            let error = await #expect(throws: StoreError.self) { _ = try await openStore(server.readOnly, options: testOptions(spool: nil, readOnly: true)) }
            #expect(error.map { "\($0)" }?.contains("ccr schema --dialect mysql") == true)
        }
    }
}
