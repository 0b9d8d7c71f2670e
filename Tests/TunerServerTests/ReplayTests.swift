import Captions
import Foundation
import Store
import SupportKit
import Testing
@testable import TunerServer

/// Replays the real client's captures into the server over TCP and checks the archive.
@Suite(.enabled(if: Fixtures.shouldRunSharedTests, "needs ../shared/fixtures"))
struct ReplayTests {
    enum Pace { case whole, randomChunks(seed: UInt64), realTime(speed: Double) }

    /// Sends a capture the way `pace` says, then closes the sending side like the client.
    static func replay(_ capture: [UInt8], into port: Int, pace: Pace) async throws {
        let tuner = try TestTuner(port: port)
        switch pace {
        case .whole:
            // As the client does: one write per block.
            for block in captureBlocks(capture) { try tuner.send(block.bytes) }
        case .randomChunks(let seed):
            var rng = SplitMix64(state: seed)
            var i = 0
            while i < capture.count {
                let n = min(Int.random(in: 1...4096, using: &rng), capture.count - i)
                try tuner.send(capture[i..<(i + n)])
                i += n
                if Int.random(in: 0..<8, using: &rng) == 0 { await Task.yield() }
            }
        case .realTime(let speed):
            let blocks = captureBlocks(capture)
            let first = blocks.compactMap(\.timestamp).first ?? 0
            let start = ContinuousClock.now
            for block in blocks {
                if let t = block.timestamp {
                    let due = start + .milliseconds(Int64(Double(t - first) / speed))
                    if due > ContinuousClock.now { try await Task.sleep(until: due) }
                }
                try tuner.send(block.bytes)
            }
        }
        tuner.finishSending()
        // The server closes its side once it has processed our end of stream.
        _ = await tuner.readUntilClosed(timeout: 30)
    }

    /// Replays and checks: the tuner's archived srt files, joined, equal the reference cue for
    /// cue, and equal what the offline decoder makes of the same stream.
    func check(capture name: String, reference: String, tuner: String, password: String? = nil, pace: Pace) async throws {
        let capture = [UInt8](try Fixtures.sharedData(name))
        let expected = parseSRT(String(decoding: try Fixtures.sharedData(reference), as: UTF8.self))
        try #require(expected.count > 10)
        try await withServer(password: password) { server, archive, _ in
            try await Self.replay(capture, into: server.port, pace: pace)
            let done = await eventually { server.metrics.snapshot.closedTotal == 1 }
            #expect(done, "the server did not see the tuner leave")
            #expect(server.metrics.snapshot.closedByReason["eof"] == 1, "\(server.metrics.snapshot.closedByReason)")
            #expect(await archiveWritten(server), "the archive threads did not finish writing")
            let cues = try archivedCues(archive, tuner: tuner)
            let offline = parseSRT(try CaptionFile.render(bin: rebuiltStream(capture), format: .srt))
            #expect(cues == offline, "server and `ccr decode` disagree on the same stream")
            #expect(cues.count == expected.count)
            for (i, (got, want)) in zip(cues, expected).enumerated() where got != want {
                Issue.record("cue \(i + 1): got \(got), want \(want)")
                break
            }
            // CEA-708 service 1 beside it, as `ccr decode --service 1` makes it of the same stream.
            let services = archivedFiles(archive, suffix: ".svc1.srt", tuner: tuner)
            #expect(services.count == 1)
            let offline708 = try CaptionFile.renderServices(bin: rebuiltStream(capture), services: DTVCCServiceSet([1]), format: .srt)
            if let file = services.first { #expect(try String(contentsOf: file, encoding: .utf8) == offline708.first?.text) }
            // The raw archive is the RCWT stream the tuner sent, byte for byte.
            let bins = archivedFiles(archive, suffix: ".bin", tuner: tuner)
            #expect(bins.count == 1)
            if let bin = bins.first { #expect([UInt8](try Data(contentsOf: bin)) == rebuiltStream(capture)) }
        }
    }

    @Test func tudorsWholeBlocks() async throws {
        try await check(capture: "the.tudors.sendto.bin", reference: "the.tudors.sendto.srt", tuner: "tuner-127-0-0-1", pace: .whole)
    }

    @Test func tudorsWithPassword() async throws {
        try await check(capture: "the.tudors.sendto-password.bin", reference: "the.tudors.sendto.srt", tuner: "test-tuner",
                        password: "s3cret", pace: .whole)
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func tudorsRandomChunks(seed: UInt64) async throws {
        try await check(capture: "the.tudors.sendto.bin", reference: "the.tudors.sendto.srt", tuner: "tuner-127-0-0-1", pace: .randomChunks(seed: seed))
    }

    @Test func tudorsPasswordRandomChunks() async throws {
        try await check(capture: "the.tudors.sendto-password.bin", reference: "the.tudors.sendto.srt", tuner: "test-tuner",
                        password: "s3cret", pace: .randomChunks(seed: 42))
    }

    @Test func eightyNineWholeBlocks() async throws {
        try await check(capture: "89.sendto.bin", reference: "89.sendto.srt", tuner: "tuner-127-0-0-1", pace: .whole)
    }

    @Test func eightyNineRandomChunks() async throws {
        try await check(capture: "89.sendto.bin", reference: "89.sendto.srt", tuner: "tuner-127-0-0-1", pace: .randomChunks(seed: 89))
    }

    @Test func tudorsAtTenTimesRealTime() async throws {
        try await check(capture: "the.tudors.sendto.bin", reference: "the.tudors.sendto.srt", tuner: "tuner-127-0-0-1", pace: .realTime(speed: 10))
    }

    /// The capture at its real pace (60 s).
    @Test func tudorsAtRealTime() async throws {
        try await check(capture: "the.tudors.sendto-password.bin", reference: "the.tudors.sendto.srt", tuner: "test-tuner",
                        password: "s3cret", pace: .realTime(speed: 1))
    }

    /// The store gets the transcript lines and the XDS program name (SQLite).
    @Test func storeHoldsLinesAndProgramName() async throws {
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto-password.bin"))
        let transcript = String(decoding: try Fixtures.sharedData("the.tudors.txt"), as: UTF8.self)
            .components(separatedBy: "\r\n").filter { !$0.isEmpty }
        try await withServer(useStore: true) { server, _, store in
            let store = try #require(store)
            try await Self.replay(capture, into: server.port, pace: .whole)
            #expect(await eventually { server.metrics.snapshot.closedTotal == 1 })
            var programs: [ProgramSummary] = []
            let stored = try await eventually {
                programs = try await store.programs(ProgramQuery())
                guard programs.count == 1, programs[0].endedAt != nil else { return false }
                let rows = try await store.lines(programID: programs[0].id).flatMap { $0.text.components(separatedBy: "\n") }
                return rows.count >= transcript.count
            }
            #expect(stored, "programs: \(programs)")
            let program = try #require(programs.first)
            #expect(program.name == "Tudors, The: Episode 208")
            #expect(program.tunerDescription == "Test tuner")
            let lines = try await store.lines(programID: program.id)
            #expect(lines.flatMap { $0.text.components(separatedBy: "\n") } == transcript)
            let xds = try await store.xdsItems(programID: program.id)
            #expect(xds.contains { $0.kind == "program-name" && $0.value == "Tudors, The: Episode 208" })
            var tuners: [TunerStatus] = []
            let disconnected = try await eventually {
                tuners = try await store.tuners(includeDisconnected: true)
                return tuners.count == 1 && !tuners[0].isConnected
            }
            #expect(disconnected, "tuners: \(tuners)")
            #expect(tuners.first?.nodeID == server.nodeID)
        }
    }
}

/// CEA-708 in `ccr serve`'s archive (issue 21): each service present as `.svcN.srt` beside the
/// 608 files, equal to CCExtractor's `--service 1` reference but for the last cue's end, which the
/// client's extra padding record moves by 333 ms (as in the 608 sendto references).
extension ReplayTests {
    @Test(arguments: [("the.tudors.sendto.bin", "the.tudors.svc1.srt"), ("89.sendto.bin", "89.svc1.srt")])
    func serviceOneIsArchived(capture name: String, reference: String) async throws {
        let capture = [UInt8](try Fixtures.sharedData(name))
        let expected = parseSRT(String(decoding: try Fixtures.sharedData(reference), as: UTF8.self))
        try await withServer { server, archive, _ in
            try await Self.replay(capture, into: server.port, pace: .whole)
            #expect(await eventually { server.metrics.snapshot.closedTotal == 1 })
            #expect(await archiveWritten(server), "the archive threads did not finish writing")
            let file = try #require(archivedFiles(archive, suffix: ".svc1.srt").first)
            let cues = parseSRT(try String(contentsOf: file, encoding: .utf8))
            #expect(cues.count == expected.count)
            #expect(Array(cues.dropLast()) == Array(expected.dropLast()))
            #expect(cues.last?.rows == expected.last?.rows)
            #expect(archivedFiles(archive, suffix: ".svc2.srt").isEmpty, "only services present are archived")
        }
    }
}
