import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Store
import SupportKit
import Testing
import ServerFiles
@testable import Web

/// The pages, downloads and JSON API, served by the real router over a SQLite repository that
/// holds the.tudors and 89 as `ccr serve` stores them.
@Suite("Web routes")
struct RouteTests {
    /// Runs `body` against a site over a repository holding the.tudors (connected tuner) and
    /// 89 (a tuner that has left), read through a read-only store like `ccr web`.
    func withSite(archive: String? = nil,
                  _ body: @Sendable (TestRepository, TestRepository.Program, TestRepository.Program, any TestClientProtocol) async throws -> Void) async throws {
        let repository = try await TestRepository()
        do {
            let tudors = try await repository.add(bin: "the.tudors.bin", description: "Tudors tuner", startedAt: TestRepository.day)
            let eightyNine = try await repository.add(bin: "89.bin", description: "Channel 89", startedAt: TestRepository.day + 7_200_000, connected: false)
            let site = WebSite(source: repository.readOnlySource(), archiveDirectory: archive ?? repository.directory.appendingPathComponent("archive").path)
            let app = Application(router: site.buildRouter())
            try await app.test(.router) { client in try await body(repository, tudors, eightyNine, client) }
            await site.source.close()
        } catch {
            await repository.close()
            throw error
        }
        await repository.close()
    }

    static func text(_ response: TestResponse) -> String { String(buffer: response.body) }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any])
    }

    @Test("home page: connected tuners, their current program, recent lines and the live script",
          .enabled(if: Fixtures.shouldRunSharedTests, Comment(rawValue: Fixtures.skipReason)))
    func home() async throws {
        try await withSite { _, tudors, _, client in
            try await client.execute(uri: "/", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/html; charset=utf-8")
                let page = Self.text(response)
                #expect(page.contains("Tudors tuner"))
                #expect(page.contains("<a href=\"/programs/\(tudors.programID)\">Tudors, The: Episode 208</a>"))
                #expect(!page.contains("Channel 89"), "a tuner that left is not on the live page")
                #expect(page.contains("but drowning.") && page.contains("- Why the hell not?!"),
                        "the last lines of the current program are shown before the feed speaks")
                #expect(page.contains("<script src=\"/live.js\"></script>"))
                #expect(!page.contains("<script>"), "no inline script: the Content-Security-Policy allows only the site's own files")
                #expect(page.contains("name=\"viewport\""))
            }
            try await client.execute(uri: "/live.js", method: .get) { response in
                #expect(response.headers[.contentType] == "text/javascript; charset=utf-8")
                #expect(Self.text(response).contains("new EventSource('/live/events?after="))
            }
        }
    }

    @Test("archive: by date and by tuner, without JavaScript", .enabled(if: Fixtures.shouldRunSharedTests, Comment(rawValue: Fixtures.skipReason)))
    func archive() async throws {
        try await withSite { _, tudors, eightyNine, client in
            try await client.execute(uri: "/archive?date=2026-11-20", method: .get) { response in
                #expect(response.status == .ok)
                let page = Self.text(response)
                #expect(page.contains("/programs/\(tudors.programID)\">Tudors, The: Episode 208</a>"))
                #expect(page.contains("/programs/\(eightyNine.programID)\">Steve Harvey</a>"))
                #expect(!page.contains("<script"), "the archive needs no JavaScript")
            }
            try await client.execute(uri: "/archive?date=2026-11-20&tuner=\(eightyNine.tunerID)", method: .get) { response in
                let page = Self.text(response)
                #expect(page.contains("Steve Harvey"))
                #expect(!page.contains("/programs/\(tudors.programID)\""))
            }
            try await client.execute(uri: "/archive?date=2026-11-21", method: .get) { response in
                #expect(Self.text(response).contains("No programs."))
            }
            try await client.execute(uri: "/archive?date=yesterday", method: .get) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test("a program's transcript has an anchor per line", .enabled(if: Fixtures.shouldRunSharedTests, Comment(rawValue: Fixtures.skipReason)))
    func transcript() async throws {
        try await withSite { _, tudors, _, client in
            try await client.execute(uri: "/programs/\(tudors.programID)", method: .get) { response in
                #expect(response.status == .ok)
                let page = Self.text(response)
                for sequence in 0..<tudors.lines.count {
                    #expect(page.contains("<li id=\"l\(sequence)\"><a class=\"t\" href=\"#l\(sequence)\">"))
                }
                #expect(page.contains("00:00:02,102"))
                #expect(page.contains("/programs/\(tudors.programID)/srt"))
            }
            try await client.execute(uri: "/programs/12345", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test("SRT from the database equals CCExtractor's file but for the styling tags the database does not keep; WebVTT holds the same cues; text equals CCExtractor's",
          .enabled(if: Fixtures.shouldRunSharedTests, Comment(rawValue: Fixtures.skipReason)))
    func downloadsFromDatabase() async throws {
        let reference = String(decoding: try Fixtures.sharedData("the.tudors.srt"), as: UTF8.self)
        let referenceText = String(decoding: try Fixtures.sharedData("the.tudors.txt"), as: UTF8.self)
        try await withSite { _, tudors, _, client in
            var srt = ""
            try await client.execute(uri: "/programs/\(tudors.programID)/srt", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[HTTPField.Name("X-CCR-Source")!] == "database")
                #expect(response.headers[.contentDisposition]?.contains(".srt\"") == true)
                srt = Self.text(response)
            }
            // The only difference: `<i>`/`</i>` in cue 1 (italics are not stored in the database).
            #expect(srt == stripTags(reference))
            #expect(srt != reference, "if this fails, the database now keeps styling: compare byte for byte")
            #expect(srt.hasPrefix("1\r\n00:00:02,102 --> 00:00:04,286\r\n"))

            try await client.execute(uri: "/programs/\(tudors.programID)/vtt", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "text/vtt; charset=utf-8")
                let vtt = Self.text(response)
                #expect(vtt.hasPrefix("WEBVTT\n\n"))
                let expected = srtCues(reference)
                let got = vttCues(vtt)
                #expect(got.count == expected.count)
                #expect(expected.count == 22)
                for (e, g) in zip(expected, got) {
                    #expect(g.times == e.times)
                    #expect(g.rows == e.rows.map { stripTags($0).trimmingCharacters(in: .whitespaces) })
                }
            }
            try await client.execute(uri: "/programs/\(tudors.programID)/txt", method: .get) { response in
                #expect(Self.text(response) == referenceText)
            }
            try await client.execute(uri: "/programs/\(tudors.programID)/pdf", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    /// With the node that recorded it in its name (the database's `nodes.hostname`: repo nodes
    /// share the archive), and without (files of a ccr before shared archives).
    @Test("SRT download serves the archive's file (byte for byte, with tags) when it is where ccr serve puts it",
          .enabled(if: Fixtures.shouldRunSharedTests, Comment(rawValue: Fixtures.skipReason)), arguments: ["repo-test", nil] as [String?])
    func downloadFromArchive(node: String?) async throws {
        let reference = try Fixtures.sharedData("the.tudors.srt")
        let archive = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-web-archive-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: archive) }
        // Where `ccr serve` writes a described tuner's program (ArchiveLayout, programSlug).
        let layout = ArchiveLayout(root: archive, node: node)
        let started = UTCTime(secondsSinceEpoch: Int(TestRepository.day / 1000))
        let base = layout.basePath(tuner: programSlug("Tudors tuner"), startedAt: started, slug: programSlug("Tudors, The: Episode 208"), sequence: 1)
        try FileManager.default.createDirectory(atPath: (base as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try reference.write(to: URL(fileURLWithPath: base + ".srt"))
        try await withSite(archive: archive) { _, tudors, _, client in
            try await client.execute(uri: "/programs/\(tudors.programID)/srt", method: .get) { response in
                #expect(response.headers[HTTPField.Name("X-CCR-Source")!] == "archive")
                #expect(Data(buffer: response.body) == reference)
            }
            try await client.execute(uri: "/programs/\(tudors.programID)/srt?source=db", method: .get) { response in
                #expect(response.headers[HTTPField.Name("X-CCR-Source")!] == "database")
            }
        }
    }

    @Test("search finds a phrase from 89.txt and links to that moment of its program",
          .enabled(if: Fixtures.shouldRunSharedTests, Comment(rawValue: Fixtures.skipReason)))
    func search() async throws {
        try await withSite { _, _, eightyNine, client in
            let line = try #require(eightyNine.lines.firstIndex { $0.text.contains("YOU ARE LIKE A FINE WINE GETTING") })
            let phrase = "\"fine wine getting\""
            try await client.execute(uri: "/search?q=" + phrase.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!, method: .get) { response in
                #expect(response.status == .ok)
                let page = Self.text(response)
                #expect(page.contains("<a class=\"program\" href=\"/programs/\(eightyNine.programID)#l\(line)\">Steve Harvey</a>"))
                #expect(page.contains("<mark>"))
                #expect(page.contains("2026-11-20 12:00:00 UTC"))
            }
            // Words in another order are not the phrase.
            try await client.execute(uri: "/search?q=%22wine+fine%22", method: .get) { response in
                #expect(Self.text(response).contains("No captions match."))
            }
            try await client.execute(uri: "/api/search?q=" + phrase.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!, method: .get) { response in
                #expect(response.status == .ok)
                let body = try Self.json(response)
                let hits = try #require(body["hits"] as? [[String: Any]])
                #expect(hits.count == 1)
                #expect(hits.first?["program"] as? String == String(eightyNine.programID))
                #expect(hits.first?["url"] as? String == "/programs/\(eightyNine.programID)#l\(line)")
                #expect(hits.first?["programName"] as? String == "Steve Harvey")
            }
            try await client.execute(uri: "/api/search?q=", method: .get) { response in
                #expect(response.status == .badRequest)
            }
        }
    }

    @Test("JSON API: tuners, programs by date and tuner, one program with its lines",
          .enabled(if: Fixtures.shouldRunSharedTests, Comment(rawValue: Fixtures.skipReason)))
    func api() async throws {
        try await withSite { _, tudors, eightyNine, client in
            try await client.execute(uri: "/api/tuners", method: .get) { response in
                #expect(response.headers[.contentType] == "application/json; charset=utf-8")
                let tuners = try #require(try Self.json(response)["tuners"] as? [[String: Any]])
                #expect(tuners.count == 1)
                #expect(tuners.first?["id"] as? String == String(tudors.tunerID))
                #expect(tuners.first?["description"] as? String == "Tudors tuner")
                let current = try #require(tuners.first?["currentProgram"] as? [String: Any])
                #expect(current["name"] as? String == "Tudors, The: Episode 208")
            }
            try await client.execute(uri: "/api/tuners?all=1", method: .get) { response in
                let body = try Self.json(response)
                #expect((body["tuners"] as? [[String: Any]])?.count == 2)
            }
            try await client.execute(uri: "/api/programs?date=2026-11-20", method: .get) { response in
                let programs = try #require(try Self.json(response)["programs"] as? [[String: Any]])
                #expect(programs.compactMap { $0["id"] as? String } == [String(eightyNine.programID), String(tudors.programID)])
                #expect(programs.first?["startedAt"] as? String == "2026-11-20T12:00:00.000Z")
                #expect(programs.first?["lineCount"] as? Int == eightyNine.lines.count)
            }
            try await client.execute(uri: "/api/programs?date=2026-11-20&tuner=\(tudors.tunerID)", method: .get) { response in
                let programs = try #require(try Self.json(response)["programs"] as? [[String: Any]])
                #expect(programs.compactMap { $0["id"] as? String } == [String(tudors.programID)])
            }
            try await client.execute(uri: "/api/programs?date=2026-13-01", method: .get) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/api/programs/\(tudors.programID)", method: .get) { response in
                let program = try Self.json(response)
                #expect(program["name"] as? String == "Tudors, The: Episode 208")
                let lines = try #require(program["lines"] as? [[String: Any]])
                #expect(lines.count == tudors.lines.count)
                #expect(lines.first?["start"] as? String == "00:00:02,102")
                #expect((lines.first?["text"] as? String)?.contains("Will you ask if Francis") == true)
                let xds = try #require(program["xds"] as? [[String: Any]])
                #expect(xds.first?["value"] as? String == "Tudors, The: Episode 208")
            }
            try await client.execute(uri: "/api/programs/999", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test("an unreachable database gives a clear 503 page and 503 JSON")
    func databaseUnreachable() async throws {
        let port = closedLoopbackPort()
        let source = StoreSource(configuration: .mysql(host: "127.0.0.1", port: port, user: "cc_ro", password: DatabasePassword("x"), database: "ccr"),
                                 timeoutSeconds: 1, retrySeconds: 0)
        let site = WebSite(source: source, archiveDirectory: nil)
        let app = Application(router: site.buildRouter())
        try await app.test(.router) { client in
            for uri in ["/", "/archive", "/search?q=hello", "/programs/1", "/programs/1/srt"] {
                try await client.execute(uri: uri, method: .get) { response in
                    #expect(response.status == .serviceUnavailable, "\(uri)")
                    let page = Self.text(response)
                    #expect(page.contains("The caption database is unreachable"), "\(uri)")
                    #expect(!page.contains("password"), "no secret on the page")
                }
            }
            try await client.execute(uri: "/api/tuners", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let body = try Self.json(response)
                #expect(body["error"] as? String == "database unreachable")
            }
            // The stylesheet does not need the database.
            try await client.execute(uri: "/style.css", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
        await source.close()
    }

    @Test("the live feed delivers lines written after a viewer subscribed, within one poll", .timeLimit(.minutes(1)))
    func liveFeed() async throws {
        let repository = try await TestRepository()
        defer { Task { await repository.close() } }
        let tuner = try await repository.writer.tunerConnected(TunerConnection(nodeID: repository.nodeID, address: "127.0.0.1", port: 1, description: "t", connectedAt: 1))
        let program = try await repository.writer.programStarted(tunerID: tuner, startedAt: 1, name: "P")
        try await repository.writer.appendLines([CaptionLineInput(programID: program, tunerID: tuner, startMs: 0, endMs: 10, mode: "pop-on", text: "before", capturedAt: 1)])
        let source = repository.readOnlySource()
        let feed = LiveFeed(source: source, pollMilliseconds: 50)
        let (id, stream) = await feed.subscribe(tunerID: nil)
        let following = ContinuousClock.now + .seconds(30)
        while await !feed.isFollowing, ContinuousClock.now < following { try await Task.sleep(for: .milliseconds(20)) }
        #expect(await feed.isFollowing, "the poller took its starting cursor")
        let written = ContinuousClock.now
        try await repository.writer.appendLines([
            CaptionLineInput(programID: program, tunerID: tuner, startMs: 10, endMs: 20, mode: "pop-on", text: "first <b>&", capturedAt: 2),
            CaptionLineInput(programID: program, tunerID: tuner, startMs: 20, endMs: 30, mode: "pop-on", text: "second\nrow", capturedAt: 3),
        ])
        var received: [String] = []
        for await message in stream {
            // One message per poll: the lines it found, each its own event.
            let events = String(buffer: message.event).components(separatedBy: "\n\n").filter { !$0.isEmpty && !$0.hasPrefix(":") }
            received += events.map { $0 + "\n\n" }
            if received.count >= 2 { break }
        }
        #expect(ContinuousClock.now - written < .seconds(1))
        #expect(received[0].contains("event: line\ndata: {"))
        #expect(received[0].contains("\"text\":\"first \\u003cb>&\""))
        #expect(received[1].contains("\"text\":\"second\\nrow\""))
        #expect(!received.joined().contains("before"), "a viewer starts at the newest line")
        await feed.unsubscribe(id)
        #expect(await feed.viewerCount == 0)
        await source.close()
    }
}

@Suite("Web configuration")
struct ConfigurationTests {
    @Test("--db and --listen values")
    func commandLineValues() {
        #expect(WebConfiguration.parseDatabase("sqlite:/srv/ccr.sqlite", environment: [:]) == .sqlite(path: "/srv/ccr.sqlite"))
        #expect(WebConfiguration.parseDatabase("mysql://cc_ro@db.example:3307/ccr", environment: ["CCR_DB_PASSWORD": "pw"])
                == .mysql(host: "db.example", port: 3307, user: "cc_ro", password: DatabasePassword("pw"), database: "ccr"))
        #expect(WebConfiguration.parseDatabase("mysql://cc_ro:secret@db/ccr", environment: [:]) == nil, "no password on the command line")
        #expect(WebConfiguration.parseDatabase("postgres://x@y/z", environment: [:]) == nil)
        #expect(WebConfiguration.parseListen("127.0.0.1:8080")! == ("127.0.0.1", 8080))
        #expect(WebConfiguration.parseListen(":80")! == ("0.0.0.0", 80))
        #expect(WebConfiguration.parseListen("[::1]:8080")! == ("::1", 8080))
        #expect(WebConfiguration.parseListen("localhost") == nil)
    }

    @Test("one INI file serves ccr serve and ccr web; [web] names the read-only account")
    func sharedFile() throws {
        let text = """
        [server]
        port = 3030
        [archive]
        dir = /srv/archive
        [database]
        driver = mariadb
        host = 198.51.100.10
        user = cc_rw
        name = ccr
        [web]
        listen = 0.0.0.0:8081
        user = cc_ro
        """
        let c = try WebConfiguration.load(text: text, source: "ccr.conf", fileMode: 0o644, environment: ["CCR_WEB_DB_PASSWORD": "ro-pass"])
        #expect(c.host == "0.0.0.0" && c.port == 8081)
        #expect(c.archiveDirectory == "/srv/archive")
        #expect(c.store == .mysql(host: "198.51.100.10", port: 3306, user: "cc_ro", password: DatabasePassword("ro-pass"), database: "ccr"))
        #expect("\(c.store)".contains("ro-pass") == false)
    }

    @Test("[web] limits: each key sets its limit, out-of-range values are refused, the cap fits the open-file limit")
    func limits() throws {
        let c = try WebConfiguration.load(text: "[web]\nmax_connections = 100\nheader_timeout = 2.5\nsearch_words = 8\nquery_timeout = 0.5\n",
                                          source: "c", fileMode: 0o600, environment: [:])
        #expect(c.limits.maxConnections == 100 && c.limits.headerTimeoutSeconds == 2.5)
        #expect(c.limits.reads.searchWords == 8 && c.limits.reads.statementSeconds == 0.5)
        #expect(c.limits.idleTimeoutSeconds == WebLimits().idleTimeoutSeconds, "unset keys keep their defaults")
        #expect(throws: IniError.self) {
            try WebConfiguration.load(text: "[web]\nheader_timeout = 0\n", source: "c", fileMode: 0o600, environment: [:])
        }
        #expect(WebLimits().connectionCap(fileLimit: 256) == 256 - WebLimits.reservedFileDescriptors)
        #expect(WebLimits().connectionCap(fileLimit: 65_536) == WebLimits().maxConnections)
    }

    @Test("a password in a file others can read is refused; unknown keys are reported")
    func rejects() {
        #expect(throws: WebConfigurationError.self) {
            try WebConfiguration.load(text: "[database]\ndriver = mysql\nhost = h\nuser = u\npassword = p\n", source: "c", fileMode: 0o644, environment: [:])
        }
        #expect(throws: IniError.self) {
            try WebConfiguration.load(text: "[web]\nlisten_on = 1\n", source: "c", fileMode: 0o600, environment: [:])
        }
        let defaults = WebConfiguration()
        #expect(defaults.store == .sqlite(path: "ccr.sqlite"), "the same default database as ccr serve")
        #expect(defaults.archiveDirectory == "archive")
    }
}
