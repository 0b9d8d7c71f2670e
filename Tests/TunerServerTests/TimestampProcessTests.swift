import Captions
import Foundation
import SupportKit
import Testing
@testable import TunerServer
#if canImport(Glibc)
import Glibc
#endif

/// Caption times through the whole server (issue 15), with `ccr serve` and `ccr web` running as
/// real processes on loopback: a real recording with ad-break gaps and a backward jump comes out
/// with CCExtractor's times everywhere (archive, database, web downloads), and timestamps from a
/// hostile tuner (extreme, frozen, backwards) neither hold captions back, grow the server, nor
/// crash the web.
@Suite(.serialized, .enabled(if: CCRBinary.shouldRun, "needs the ccr executable (swift test builds it; or set CCR_BINARY) and the shared fixtures"))
struct TimestampProcessTests {
    @Test("89.gaps.sendto.bin through ccr serve: the archive's srt is CCExtractor's; the web's SRT from the archive and from the database have its times")
    func gapsThroughServeAndWeb() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig())
        defer { serve.remove() }
        try await serve.start()
        let capture = [UInt8](try Fixtures.sharedData("89.gaps.sendto.bin"))
        let reference = try Fixtures.sharedData("89.gaps.sendto.srt")
        try await Self.send(ServeFaultTests.described(capture, as: "gaps").flatMap { $0 }, port: serve.port)
        let srt = try #require(await eventually(timeout: 30) { archivedFiles(serve.archive, suffix: ".srt").count == 1 } ? archivedFiles(serve.archive, suffix: ".srt").first : nil)
        #expect(await eventually(timeout: 30) { (try? Data(contentsOf: srt)) == reference })

        let web = CCRProcess(webOn: serve)
        defer { web.kill9() }
        try await web.start()
        let id = try #require(await Self.programIDs(web).first)
        let fromArchive = try await web.get("/programs/\(id)/srt")
        #expect(fromArchive.status == 200)
        #expect(Data(fromArchive.body.utf8) == reference)
        // The database keeps transcript rows (ttxt's cues: a roll-up row from its first
        // character): its SRT has CCExtractor's ttxt times, one cue per distinct interval, plus the
        // row CCExtractor's ttxt loses at the backward jump (kept in the store with its own times).
        let fromDatabase = try await web.get("/programs/\(id)/srt?source=db")
        #expect(fromDatabase.status == 200)
        let stored = parseSRT(fromDatabase.body).filter { $0.rows.map { $0.trimmingCharacters(in: .whitespaces) } != ["YEAR."] }
        var expected: [String] = []
        for line in String(decoding: try Fixtures.sharedData("89.gaps.xds.ttxt"), as: UTF8.self).components(separatedBy: "\r\n")
        where !line.contains("|XDS|") && line.contains("|") {
            let parts = line.split(separator: "|")
            let times = "\(parts[0]) --> \(Self.minusOneMillisecond(String(parts[1])))"
            if expected.last != times { expected.append(times) }
        }
        #expect(stored.count == expected.count)
        // The capture's extra padding record moves the last end only.
        #expect(Array(stored.map(\.times).dropLast()) == Array(expected.dropLast()))
        #expect(parseSRT(fromDatabase.body).count == stored.count + 1)
    }

    /// `HH:MM:SS,mmm` one millisecond earlier (SubRip shows a cue's end 1 ms before it).
    static func minusOneMillisecond(_ time: String) -> String {
        let digits = time.split(whereSeparator: { $0 == ":" || $0 == "," }).compactMap { Int($0) }
        let ms = ((digits[0] * 60 + digits[1]) * 60 + digits[2]) * 1000 + digits[3] - 1
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let f = ms % 1000
        return "\(two(ms / 3_600_000)):\(two(ms / 60_000 % 60)):\(two(ms / 1000 % 60)),\(f < 10 ? "00" : f < 100 ? "0" : "")\(f)"
    }

    /// Three tuners send 89.bin's captions with hostile clocks; the server is watched while they
    /// are still connected, then the web serves every page and download of their programs, and
    /// of a program holding the extreme times an earlier version stored.
    @Test("extreme, frozen and backward timestamps: bounded server memory, lines while connected, every web page and download answers")
    func hostileClocks() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig())
        defer { serve.remove() }
        try await serve.start()
        let records = try Self.records("89.bin")
        let clocks: [(name: String, stamp: (Int) -> Int64)] = [
            ("extreme", { [Int64.max, Int64.min, Int64.min + 1][$0 % 3] }),
            ("frozen", { _ in 12_345_678 }),
            ("backward", { 40_000_000 - Int64($0) * 33 }),
        ]
        let baseline = serve.rssKilobytes
        var tuners: [TestTuner] = []
        for clock in clocks {
            var stream = HostileTunerTests.hello(description: clock.name)
            for (i, record) in records.enumerated() {
                stream += HostileTunerTests.record(clock.stamp(i), record.triplets)
            }
            let tuner = try TestTuner(port: serve.port)
            try tuner.send(stream)
            tuners.append(tuner)
        }
        // Still connected: each tuner's lines are in the database (what the live feed reads).
        for clock in clocks {
            #expect(await eventually(timeout: 30) { Self.lineCount(serve, tuner: clock.name) > 900 }, "\(clock.name): lines while connected")
        }
        let peak = serve.rssKilobytes
        #expect(peak - baseline < 64 * 1024, "server grew by \(peak - baseline) KB for 3 x \(records.count) records")
        for tuner in tuners { tuner.finishSending() }
        for tuner in tuners { _ = await tuner.readUntilClosed(timeout: 30) }

        // What an earlier version stored: a line ending at Int64.min in a program of its own.
        let tunerID = try #require(Int(Self.sqlite(serve, "SELECT MIN(id) FROM tuners")))
        _ = Self.sqlite(serve, """
            INSERT INTO programs (id, tuner_id, started_at, ended_at, name) VALUES (999999, \(tunerID), 1795168800000, NULL, 'old');
            INSERT INTO caption_lines (program_id, tuner_id, seq, start_ms, end_ms, mode, text, captured_at, received_at, writer_id, writer_seq)
              VALUES (999999, \(tunerID), 1, 9223372036854775807, -9223372036854775808, 'pop-on', 'EXTREME', 0, 0, 424242, 1),
                     (999999, \(tunerID), 2, -9223372036854775807, 9223372036854775807, 'pop-on', 'EXTREME TWO', 0, 0, 424242, 2);
            """)
        let web = CCRProcess(webOn: serve)
        defer { web.kill9() }
        try await web.start()
        let ids = await Self.programIDs(web)
        #expect(ids.count >= 4)
        var paths = ["/", "/archive", "/api/tuners", "/api/tuners?all=1", "/api/programs", "/search?q=EXTREME", "/api/search?q=steve"]
        for id in ids {
            paths += ["/programs/\(id)", "/api/programs/\(id)", "/programs/\(id)/srt", "/programs/\(id)/srt?source=db", "/programs/\(id)/vtt", "/programs/\(id)/txt"]
        }
        for path in paths {
            let answer = try await web.get(path)
            #expect(answer.status == 200, "GET \(path): \(answer.status)")
        }
        let vtt = try await web.get("/programs/999999/vtt").body
        #expect(vtt.contains("EXTREME"))
        #expect(web.isRunning, "ccr web died:\n\(web.log.suffix(2000))")
        #expect(serve.isRunning)
    }

    // MARK: helpers

    static func records(_ name: String) throws -> [RCWTRecord] {
        var out: [RCWTRecord] = []
        try RCWTFileReader(bytes: [UInt8](try Fixtures.sharedData(name))).forEachRecord { out.append($0) }
        return out
    }

    /// Sends `bytes` as one stream in 64 KB writes, ends it and waits for the server to close.
    static func send(_ bytes: [UInt8], port: Int) async throws {
        let tuner = try TestTuner(port: port)
        try tuner.send(bytes)
        tuner.finishSending()
        _ = await tuner.readUntilClosed(timeout: 60)
    }

    static func programIDs(_ web: CCRProcess) async -> [String] {
        guard let body = try? await web.get("/api/programs?limit=100").body,
              let json = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let programs = json["programs"] as? [[String: Any]] else { return [] }
        return programs.compactMap { $0["id"] as? String }
    }

    static func lineCount(_ serve: CCRProcess, tuner description: String) -> Int {
        Int(sqlite(serve, "SELECT COUNT(*) FROM caption_lines l JOIN tuners t ON t.id = l.tuner_id WHERE t.description = '\(description)'")) ?? 0
    }

    /// Runs SQL with the sqlite3 shell on the server's database (WAL: readers do not block it).
    @discardableResult
    static func sqlite(_ serve: CCRProcess, _ sql: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        process.arguments = ["-cmd", ".timeout 5000", serve.dir.appendingPathComponent("ccr.sqlite").path, sql]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return "" }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
