import Foundation
import Store
import Testing

/// The same behaviour checked on embedded SQLite and on a real MariaDB (cc_rw writes, cc_ro reads).
@Suite("Store on SQLite and MariaDB")
struct StoreSuiteTests {
    @Test("lines, programs, tuners and XDS written are read back", arguments: Backend.allCases)
    func roundTrip(backend: Backend) async throws {
        try await withStoreEnvironment(backend) { env in
            let (node, tuner, program) = try await startTuner(env.writer, description: "WXYZ-DT Boston", name: "Evening News")
            try await env.writer.appendLines([
                line("Good evening.", program: program, tuner: tuner, at: 1_000),
                line("Ünïcödé — “quotes” and 'apostrophes' \\ backslash", program: program, tuner: tuner, at: 2_000),
                line("Two rows\nof text", program: program, tuner: tuner, at: 3_000),
            ])
            try await env.writer.recordXDS([
                XDSItemInput(programID: program, tunerID: tuner, atMs: 900, kind: "program-name", value: "Evening News"),
                XDSItemInput(programID: program, tunerID: tuner, atMs: 950, kind: "network-name", value: "WXYZ"),
            ])

            let lines = try await env.reader.lines(programID: program)
            #expect(lines.map(\.text) == ["Good evening.", "Ünïcödé — “quotes” and 'apostrophes' \\ backslash", "Two rows\nof text"])
            #expect(lines.map(\.sequence) == [0, 1, 2])
            #expect(lines.map(\.startMs) == [1_000, 2_000, 3_000])
            #expect(lines.allSatisfy { $0.tunerID == tuner && $0.mode == "pop-on" && $0.endMs == $0.startMs + 1500 })

            let tuners = try await env.reader.tuners(includeDisconnected: false)
            let status = try #require(tuners.first { $0.id == tuner })
            #expect(status.isConnected)
            #expect(status.nodeID == node)
            #expect(status.hostname == "repo-test")
            #expect(status.address == "198.51.100.7" && status.port == 40_000)
            #expect(status.description == "WXYZ-DT Boston")
            #expect(status.currentProgram?.id == program)
            #expect(status.currentProgram?.name == "Evening News")
            #expect(status.currentProgram?.lineCount == 3)

            let xds = try await env.reader.xdsItems(programID: program)
            #expect(xds.map(\.kind) == ["program-name", "network-name"])
            #expect(xds.map(\.value) == ["Evening News", "WXYZ"])

            let summary = try #require(try await env.reader.program(id: program))
            #expect(summary.tunerDescription == "WXYZ-DT Boston")
            #expect(summary.endedAt == nil)
            #expect(try await env.reader.program(id: 12345) == nil)

            try await env.writer.programEnded(programID: program, endedAt: nowMs())
            try await env.writer.tunerDisconnected(tunerID: tuner, at: nowMs())
            #expect(try await env.reader.tuners(includeDisconnected: false).contains { $0.id == tuner } == false)
            let gone = try #require(try await env.reader.tuners(includeDisconnected: true).first { $0.id == tuner })
            #expect(gone.disconnectReason == "closed")
            #expect(gone.currentProgram == nil)
            #expect(try await env.reader.program(id: program)?.endedAt != nil)
        }
    }

    @Test("a new XDS name splits programs; a first name only names the current one", arguments: Backend.allCases)
    func programSplit(backend: Backend) async throws {
        try await withStoreEnvironment(backend) { env in
            let (_, tuner, first) = try await startTuner(env.writer)
            try await env.writer.appendLines([line("before any name", program: first, tuner: tuner, at: 0)])
            try await env.writer.programRenamed(programID: first, name: "The Tudors")
            try await env.writer.appendLines([line("after the name", program: first, tuner: tuner, at: 1_000)])
            let splitAt = nowMs()
            try await env.writer.programEnded(programID: first, endedAt: splitAt)
            let second = try await env.writer.programStarted(tunerID: tuner, startedAt: splitAt + 1, name: "Late Show")
            try await env.writer.appendLines([line("next show", program: second, tuner: tuner, at: 2_000)])

            let programs = try await env.reader.programs(ProgramQuery(tunerID: tuner))
            #expect(programs.map(\.id) == [second, first])
            #expect(programs.map(\.name) == ["Late Show", "The Tudors"])
            #expect(programs.map(\.lineCount) == [1, 2])
            #expect(programs[1].endedAt == splitAt)
            #expect(programs[0].endedAt == nil)
            #expect(try await env.reader.lines(programID: first).map(\.text) == ["before any name", "after the name"])
            #expect(try await env.reader.lines(programID: second).map(\.text) == ["next show"])
            // Sequence numbers restart per program.
            #expect(try await env.reader.lines(programID: second).map(\.sequence) == [0])

            // By date: only programs started in the window.
            let later = try await env.reader.programs(ProgramQuery(startedFrom: splitAt + 1))
            #expect(later.map(\.id) == [second])
            let earlier = try await env.reader.programs(ProgramQuery(tunerID: tuner, startedBefore: splitAt + 1))
            #expect(earlier.map(\.id) == [first])
            #expect(try await env.reader.tuners(includeDisconnected: false).first { $0.id == tuner }?.currentProgram?.id == second)
        }
    }

    @Test("the live feed delivers new lines within a second, once each, filtered by tuner", arguments: Backend.allCases)
    func liveCursor(backend: Backend) async throws {
        try await withStoreEnvironment(backend) { env in
            let a = try await startTuner(env.writer, description: "A")
            let b = try await startTuner(env.writer, description: "B")
            try await env.writer.appendLines([line("old line", program: a.program, tuner: a.tuner, at: 0)])
            var cursor = try await env.reader.liveCursorNow()

            let written = ContinuousClock.now
            try await env.writer.appendLines([
                line("live one", program: a.program, tuner: a.tuner, at: 1_000),
                line("live two", program: b.program, tuner: b.tuner, at: 1_000),
            ])
            try await env.writer.appendLines([line("live three", program: a.program, tuner: a.tuner, at: 2_000)])

            var seen: [String] = []
            while seen.count < 3, ContinuousClock.now - written < .seconds(1) {
                let page = try await env.reader.liveLines(after: cursor, tunerID: nil, limit: 100)
                seen += page.lines.map(\.text)
                cursor = page.next
                if seen.count < 3 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(seen == ["live one", "live two", "live three"], "all new lines, in order, within 1 s (old line excluded)")
            #expect(try await env.reader.liveLines(after: cursor, tunerID: nil, limit: 100).lines.isEmpty)

            // One tuner's feed from the start: only its lines; the cursor still moves past the others.
            let onlyB = try await env.reader.liveLines(after: .start, tunerID: b.tuner, limit: 100)
            #expect(onlyB.lines.map(\.text) == ["live two"])
            #expect(onlyB.next == cursor)
        }
    }

    @Test("search finds words and phrases, with program and highlighted snippet", arguments: Backend.allCases)
    func search(backend: Backend) async throws {
        try await withStoreEnvironment(backend) { env in
            let (_, tuner, program) = try await startTuner(env.writer, name: "The Tudors")
            try await env.writer.appendLines([
                line("The King of England is dead.", program: program, tuner: tuner, at: 1_000),
                line("Long live the king!", program: program, tuner: tuner, at: 2_000),
                line("Don't stop\nthe music", program: program, tuner: tuner, at: 3_000),
                line("England expects", program: program, tuner: tuner, at: 4_000),
            ])
            let phrase = try await env.reader.search(SearchQuery(text: "\"king of england\""))
            #expect(phrase.map(\.line.text) == ["The King of England is dead."])
            let hit = try #require(phrase.first)
            #expect(hit.programName == "The Tudors")
            #expect(hit.line.programID == program && hit.line.startMs == 1_000)
            #expect(hit.snippet.filter(\.isMatch).map(\.text) == ["King of England"])
            #expect(hit.snippet.map(\.text).joined() == hit.line.text)

            #expect(try await env.reader.search(SearchQuery(text: "king")).map(\.line.text) == ["Long live the king!", "The King of England is dead."])
            #expect(try await env.reader.search(SearchQuery(text: "england dead")).map(\.line.text) == ["The King of England is dead."])
            #expect(try await env.reader.search(SearchQuery(text: "\"england king\"")).isEmpty)
            #expect(try await env.reader.search(SearchQuery(text: "\"is dead\"")).map(\.line.text) == ["The King of England is dead."])
            // A phrase across the rows of one caption.
            #expect(try await env.reader.search(SearchQuery(text: "\"stop the music\"")).map(\.line.text) == ["Don't stop\nthe music"])
            #expect(try await env.reader.search(SearchQuery(text: "queen")).isEmpty)
            #expect(try await env.reader.search(SearchQuery(text: "king", tunerID: tuner + 1)).isEmpty)
            await #expect(throws: StoreError.invalidArgument("the search has no words")) {
                try await env.reader.search(SearchQuery(text: " \"\" ?! "))
            }
        }
    }

    @Test("search finds words typed with or without their accents, in any case", arguments: Backend.allCases)
    func searchIgnoresAccents(backend: Backend) async throws {
        try await withStoreEnvironment(backend) { env in
            let (_, tuner, program) = try await startTuner(env.writer, name: "Noticias")
            try await env.writer.appendLines([
                line("¿Me preguntarás por qué?", program: program, tuner: tuner, at: 1_000),
                line("Él está aquí, señor.", program: program, tuner: tuner, at: 2_000),
                line("Esta casa es grande.", program: program, tuner: tuner, at: 3_000),
            ])
            for text in ["preguntaras", "preguntarás", "PREGUNTARÁS"] {
                #expect(try await env.reader.search(SearchQuery(text: text)).map(\.line.text) == ["¿Me preguntarás por qué?"], "search \(text)")
            }
            for text in ["\"esta aqui\"", "\"está aquí\"", "senor"] {
                #expect(try await env.reader.search(SearchQuery(text: text)).map(\.line.text) == ["Él está aquí, señor."], "search \(text)")
            }
            #expect(Set(try await env.reader.search(SearchQuery(text: "ESTA")).map(\.line.text)) == ["Él está aquí, señor.", "Esta casa es grande."])
        }
    }

    @Test("heartbeats read back by service and host, aged by the database's clock", arguments: Backend.allCases)
    func heartbeatAges(backend: Backend) async throws {
        try await withStoreEnvironment(backend) { env in
            let host = "node-\(UUID().uuidString.prefix(8))"
            #expect(try await env.reader.heartbeatAge(.watchdog, hostname: host) == nil, "never beaten")
            #expect(try await env.reader.heartbeatAge(.serve, hostname: host) == nil, "never registered")
            try await env.writer.beat(.watchdog, hostname: host)
            _ = try await env.writer.registerNode(hostname: host)
            try await Task.sleep(for: .milliseconds(600))
            let watchdog = try #require(try await env.reader.heartbeatAge(.watchdog, hostname: host))
            let serve = try #require(try await env.reader.heartbeatAge(.serve, hostname: host))
            #expect(watchdog >= 0.5 && watchdog < 10, "watchdog beat \(watchdog) s ago")
            #expect(serve >= 0.5 && serve < 10, "node registered \(serve) s ago")
            // A second beat replaces the first (one row per service and host), and is younger.
            try await env.writer.beat(.watchdog, hostname: host)
            let again = try #require(try await env.reader.heartbeatAge(.watchdog, hostname: host))
            #expect(again < watchdog, "after a new beat: \(again) s, before: \(watchdog) s")
            #expect(try await env.reader.heartbeatAge(.watchdog, hostname: host + "-other") == nil, "another host's beat is not this one's")
        }
    }

    @Test("the watchdog marks the tuners of a silent node gone; its next heartbeat revives them", arguments: Backend.allCases)
    func watchdog(backend: Backend) async throws {
        try await withStoreEnvironment(backend) { env in
            let silent = try await startTuner(env.writer, description: "on the silent node")
            let alive = try await startTuner(env.writer, description: "on the live node")
            // Both nodes beat at registration: nothing is stale yet (10 s: a loaded machine may
            // take a second or two to register two tuners on MariaDB).
            #expect(try await env.writer.markStaleTuners(heartbeatOlderThan: 10) == 0)
            for _ in 0..<12 {
                try await Task.sleep(for: .milliseconds(250))
                #expect(try await env.writer.heartbeat(nodeID: alive.node))
            }
            #expect(try await env.writer.markStaleTuners(heartbeatOlderThan: 2) == 1)
            let connected = try await env.reader.tuners(includeDisconnected: false)
            #expect(connected.contains { $0.id == alive.tuner })
            #expect(!connected.contains { $0.id == silent.tuner })
            let marked = try #require(try await env.reader.tuners(includeDisconnected: true).first { $0.id == silent.tuner })
            #expect(marked.disconnectReason == "watchdog")
            #expect(try await env.writer.heartbeat(nodeID: alive.node))
            #expect(try await env.writer.markStaleTuners(heartbeatOlderThan: 2) == 0, "marked once only")

            // The node was only cut off: its next heartbeat brings its tuner back.
            #expect(try await env.writer.heartbeat(nodeID: silent.node))
            #expect(try await env.reader.tuners(includeDisconnected: false).contains { $0.id == silent.tuner })
            // A real close afterwards is final.
            try await env.writer.tunerDisconnected(tunerID: silent.tuner, at: nowMs())
            #expect(try await env.writer.heartbeat(nodeID: silent.node))
            #expect(!(try await env.reader.tuners(includeDisconnected: false).contains { $0.id == silent.tuner }))
        }
    }

    @Test("the read-only account cannot write, and says so", arguments: Backend.allCases)
    func readOnlyCannotWrite(backend: Backend) async throws {
        try await withStoreEnvironment(backend) { env in
            // A store opened read-only refuses writes itself.
            await #expect(throws: StoreError.readOnly) { try await env.reader.registerNode(hostname: "web") }
            guard let server = env.mariadb else { return }
            // cc_ro used for writing anyway: the database refuses; the error is not an outage (not spooled).
            let misuse = try await openStore(server.readOnly, options: testOptions(spool: env.directory.appendingPathComponent("ro-spool").path))
            do {
                let error = await #expect(throws: StoreError.self) { try await misuse.registerNode(hostname: "web") }
                guard case .permissionDenied(_, let reason)? = error else {
                    Issue.record("expected permissionDenied, got \(String(describing: error))")
                    await misuse.close()
                    return
                }
                #expect(reason.contains("INSERT command denied"))
                #expect(error.map { "\($0)" }?.contains("check the user's grants") == true)
                #expect(await misuse.spoolDepth() == 0)
            }
            await misuse.close()
        }
    }
}
