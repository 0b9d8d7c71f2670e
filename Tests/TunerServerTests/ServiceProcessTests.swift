import Captions
import Foundation
import SupportKit
import Testing
@testable import TunerServer

/// CEA-708 services from tuner to visitor (issue 21), with `ccr serve` and `ccr web` as real
/// processes: the.tudors streamed in CCExtractor's protocol, its service 1 stored beside the 608
/// captions, offered by the program page and the API, and downloaded as SubRip (byte for byte
/// the archive's `.svc1.srt`, and CCExtractor's `--service 1` file) and WebVTT.
@Suite(.serialized, .enabled(if: CCRBinary.shouldRun, "needs the ccr executable (swift test builds it; or set CCR_BINARY) and the shared fixtures"))
struct ServiceProcessTests {
    @Test("the.tudors through ccr serve: ccr web offers 608 and service 1, its SRT is the archive's and CCExtractor's, its WebVTT is valid")
    func tudorsServiceOne() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig())
        defer { serve.remove() }
        try await serve.start()
        // The client's own capture (its padding record moves the last cue's end, see ReplayTests),
        // and the recording's records sent the same way without it: CCExtractor's reference exactly.
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        try await TimestampProcessTests.send(ServeFaultTests.described(capture, as: "tudors-capture").flatMap { $0 }, port: serve.port)
        var file = HostileTunerTests.hello(description: "tudors-file")
        for record in try TimestampProcessTests.records("the.tudors.bin") { file += HostileTunerTests.record(record.timestamp, record.triplets) }
        try await TimestampProcessTests.send(file, port: serve.port)
        let reference = try Fixtures.sharedData("the.tudors.svc1.srt")
        let archived = { (tuner: String) in archivedFiles(serve.archive, suffix: ".svc1.srt", tuner: tuner).first }
        #expect(await eventually(timeout: 30) { archived("tudors-file").flatMap { try? Data(contentsOf: $0) } == reference })
        let captureFile = try #require(archived("tudors-capture"))

        let web = CCRProcess(webOn: serve)
        defer { web.kill9() }
        try await web.start()
        let programs = try Self.json(try await web.get("/api/programs").body)["programs"] as? [[String: Any]] ?? []
        let id = { (tuner: String) in programs.first { $0["tunerDescription"] as? String == tuner }?["id"] as? String }
        let fileID = try #require(id("tudors-file"))
        let captureID = try #require(id("tudors-capture"))

        // The API lists the services with their line counts and downloads.
        let program = try Self.json(try await web.get("/api/programs/\(fileID)").body)
        let services = try #require(program["services"] as? [[String: Any]])
        #expect(services.map { $0["service"] as? Int } == [0, 1])
        #expect(services.last?["lineCount"] as? Int == 22)
        #expect(program["lineCount"] as? Int == services.first?["lineCount"] as? Int, "a listing counts the 608 lines")
        let downloads = try #require(services.last?["downloads"] as? [String: String])
        #expect(downloads["srt"] == "/programs/\(fileID)/srt?service=1")
        let page1 = try Self.json(try await web.get("/api/programs/\(fileID)?service=1&limit=5").body)
        let lines1 = try #require(page1["lines"] as? [[String: Any]])
        #expect(lines1.count == 5 && lines1.allSatisfy { $0["service"] as? Int == 1 })
        #expect((lines1.first?["text"] as? String)?.contains("- Will you ask if Francis") == true)
        #expect(page1["next"] as? String == "/api/programs/\(fileID)?after=4&limit=5&service=1")

        // The page offers the choice; each service's transcript is its own page.
        let page608 = try await web.get("/programs/\(fileID)")
        #expect(page608.body.contains("id=\"services\""))
        #expect(page608.body.contains("href=\"/programs/\(fileID)?service=1\""))
        #expect(page608.body.contains("Previously"))
        let pageSvc1 = try await web.get("/programs/\(fileID)?service=1")
        #expect(pageSvc1.status == 200)
        #expect(pageSvc1.body.contains("aria-current=\"page\" data-service=\"1\""))
        #expect(pageSvc1.body.contains("- Will you ask if Francis"))
        #expect(!pageSvc1.body.contains("Previously"), "service 1 has no 608 line")
        #expect(pageSvc1.body.contains("href=\"/programs/\(fileID)/vtt?service=1\""))
        #expect(try await web.get("/programs/\(fileID)?service=2").status == 404)
        #expect(try await web.get("/programs/\(fileID)?service=64").status == 400)
        #expect(try await web.get("/programs/\(fileID)/srt?service=2").status == 404)
        let badService = try await web.get("/api/programs/\(fileID)?service=one")
        #expect(badService.status == 400)
        #expect(badService.body.contains("service: expected 0 (the CEA-608 captions) or a CEA-708 service from 1 to 63"))
        #expect(try await web.get("/api/programs/\(fileID)?service=2").status == 404)

        // SRT: the archive's file, byte for byte; from the file-built stream, CCExtractor's.
        let srt = try await web.get("/programs/\(fileID)/srt?service=1")
        #expect(srt.status == 200)
        #expect(Data(srt.body.utf8) == reference, "the service 1 download equals the.tudors.svc1.srt")
        let captureSRT = try await web.get("/programs/\(captureID)/srt?service=1")
        #expect(Data(captureSRT.body.utf8) == (try Data(contentsOf: captureFile)), "the download is the archive's .svc1.srt")
        // From the database: the same cues and times, the rows without the tags it does not keep.
        let fromDatabase = parseSRT(try await web.get("/programs/\(fileID)/srt?service=1&source=db").body)
        let expected = parseSRT(String(decoding: reference, as: UTF8.self))
        #expect(fromDatabase.map(\.times) == expected.map(\.times))
        #expect(fromDatabase.map { $0.rows.map(Self.plain) } == expected.map { $0.rows.map(Self.plain) })

        // WebVTT: a valid file with the same cues.
        let vtt = try await web.get("/programs/\(fileID)/vtt?service=1")
        #expect(vtt.status == 200)
        #expect(vtt.body.hasPrefix("WEBVTT\n\n"))
        let timing = /^\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}$/
        let timings = vtt.body.split(separator: "\n").filter { $0.contains("-->") }
        #expect(timings.count == expected.count)
        #expect(timings.allSatisfy { $0.wholeMatch(of: timing) != nil })
        #expect(timings.map { $0.replacingOccurrences(of: ".", with: ",") } == expected.map(\.times))
        #expect(!vtt.body.contains("<font"), "no SubRip tags in WebVTT")

        // Search: the 608 captions unless a service is asked for, and its hits link to it.
        let hits608 = try Self.json(try await web.get("/api/search?q=Francis").body)["hits"] as? [[String: Any]] ?? []
        #expect(!hits608.isEmpty && hits608.allSatisfy { ($0["line"] as? [String: Any])?["service"] as? Int == 0 })
        let hits1 = try Self.json(try await web.get("/api/search?q=Francis&service=1").body)["hits"] as? [[String: Any]] ?? []
        #expect(hits1.count == 2, "one hit per tudors program in service 1")
        #expect(hits1.allSatisfy { ($0["url"] as? String)?.contains("?service=1#l") == true })
    }

    static func json(_ body: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], "not a JSON object: \(body.prefix(200))")
    }

    /// A SubRip row as text: tags removed, spaces trimmed (the database keeps neither the tags
    /// nor, in every case, the row's position).
    static func plain(_ row: String) -> String {
        row.replacingOccurrences(of: "<[^>]*>", with: "", options: .regularExpression).trimmingCharacters(in: .whitespaces)
    }
}
