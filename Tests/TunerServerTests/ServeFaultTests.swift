import Captions
import Foundation
import Store
import SupportKit
import Testing
@testable import TunerServer
#if canImport(Glibc)
import Glibc
#endif

/// `ccr serve` as a real process under faults (issue 8, fault suite): tuners that drop at every
/// point of the protocol beside tuners that stream cleanly, `kill -9` then a restart on the same
/// archive and database, SIGTERM from a parent that blocks it, and a MariaDB outage of 60 s.
/// Serialized: each test runs a server and many connections; together they would only measure
/// the machine.
@Suite(.serialized, .enabled(if: CCRBinary.shouldRun, "needs the ccr executable (swift test builds it; or set CCR_BINARY) and the shared fixtures"))
struct ServeFaultTests {
    /// The capture with its (empty) CC_DESC replaced, so that the tuner's archive folder is `name`.
    static func described(_ capture: [UInt8], as name: String) -> [[UInt8]] {
        captureBlocks(capture).map { block in
            block.command == BlockCommand.ccDescription.rawValue ? BlockCommand.ccDescription.block(Array(name.utf8)) : Array(block.bytes)
        }
    }

    /// Sends blocks like the client (one write each), ends the stream and waits for the close.
    static func stream(_ blocks: [[UInt8]], port: Int) async throws {
        let tuner = try TestTuner(port: port)
        for (i, block) in blocks.enumerated() {
            try tuner.send(block)
            if i % 64 == 0 { await Task.yield() }
        }
        tuner.finishSending()
        _ = await tuner.readUntilClosed(timeout: 60)
    }

    // MARK: 100 dropping tuners

    /// One way a tuner can go wrong.
    enum Fault: Int, CaseIterable {
        case closeAtOnce, silentThenClose, afterPassword, midHeaderBlock, midRecordData, betweenRecordHalves, garbage, resetMidStream
    }

    /// Plays `fault` with the real client's blocks, cut at a random point.
    static func misbehave(_ fault: Fault, blocks: [[UInt8]], port: Int, rng: inout SplitMix64) async throws {
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...1500, using: &rng)))
        let tuner = try TestTuner(port: port)
        // Blocks 0-2 are PASSWORD, CC_DESC, BIN_HEADER; then each record is a 10-byte BIN_DATA
        // header block followed by its triplets block.
        let records = (blocks.count - 3) / 2
        let upTo = 3 + 2 * Int.random(in: 0..<max(1, records), using: &rng)
        switch fault {
        case .closeAtOnce:
            break
        case .silentThenClose:
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...800, using: &rng)))
        case .afterPassword:
            try tuner.send(blocks[0])
        case .midHeaderBlock:
            let head = blocks[0] + blocks[1] + blocks[2]
            try tuner.send(head.prefix(Int.random(in: 1..<head.count, using: &rng)))
        case .midRecordData:
            for block in blocks[..<upTo] { try tuner.send(block) }
            let triplets = blocks[upTo + 1]
            try tuner.send(blocks[upTo] + triplets.prefix(Int.random(in: 1..<triplets.count, using: &rng)))
        case .betweenRecordHalves:
            for block in blocks[..<(upTo + 1)] { try tuner.send(block) }
        case .garbage:
            for block in blocks[..<upTo] { try tuner.send(block) }
            try tuner.send((0..<Int.random(in: 1...2000, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        case .resetMidStream:
            for block in blocks[..<upTo] { try tuner.send(block) }
            var linger = linger(l_onoff: 1, l_linger: 0)
            setsockopt(tuner.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
        }
        // The tuner object closes its socket here (an RST for resetMidStream).
    }

    @Test func hundredDroppingTunersDoNotDisturbTenCleanOnes() async throws {
        let tudors = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        let eightyNine = [UInt8](try Fixtures.sharedData("89.sendto.bin"))
        let expected = [
            "tudors": parseSRT(String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self)),
            "89": parseSRT(String(decoding: try Fixtures.sharedData("89.sendto.srt"), as: UTF8.self)),
        ]
        let server = try CCRProcess(config: CCRProcess.sqliteConfig())
        defer { server.remove() }
        try await server.start()
        let port = server.port
        // Eight clean tudors and two clean 89s, each under its own name.
        let clean: [(name: String, capture: String, blocks: [[UInt8]])] = (0..<10).map { i in
            let which = i < 8 ? "tudors" : "89"
            return ("clean-\(i)", which, Self.described(i < 8 ? tudors : eightyNine, as: "clean-\(i)"))
        }
        let faultyBlocks = captureBlocks(tudors).map { Array($0.bytes) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in clean {
                group.addTask { try await Self.stream(c.blocks, port: port) }
            }
            for i in 0..<100 {
                group.addTask {
                    var rng = SplitMix64(state: UInt64(i) &* 0x9E37_79B9 &+ 7)
                    let fault = Fault.allCases[i % Fault.allCases.count]
                    try await Self.misbehave(fault, blocks: faultyBlocks, port: port, rng: &rng)
                }
            }
            try await group.waitForAll()
        }
        #expect(server.isRunning, "ccr serve died:\n\(server.log.suffix(3000))")
        // Every clean archive is complete: its srt files, joined, equal the reference cue for cue.
        for c in clean {
            let want = try #require(expected[c.capture])
            var cues: [SRTCue] = []
            let complete = try await eventually(timeout: 20) {
                cues = try archivedCues(server.archive, tuner: c.name)
                return cues.count >= want.count
            }
            #expect(complete, "\(c.name): \(cues.count) of \(want.count) cues")
            #expect(cues == want, "\(c.name) archive differs from \(c.capture).sendto.srt")
        }
        // And the server still serves: a new tuner gets its PING answered.
        let probe = try TestTuner(port: port)
        try probe.send(BlockCommand.ping.block())
        #expect(await probe.read(count: 1) == [0x37])
        // Each fault was logged as the end of that one connection, with a reason.
        #expect(server.log.contains("closing tuner connection") || server.log.contains("tuner connection ended"))
    }

    // MARK: kill -9, then restart

    /// Documented behaviour after `kill -9`: the interrupted program's files hold whole cues and
    /// whole records (a prefix of the stream; the archive is written in whole cues and records
    /// and never rewritten), they are left as they are (not reopened: a tuner that reconnects
    /// starts a new program file beside them), and the database keeps the program's lines that
    /// were committed. The restarted server serves new streams normally.
    @Test func killDashNineThenRestartOnTheSameArchiveAndDatabase() async throws {
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        let expected = parseSRT(String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self))
        let server = try CCRProcess(config: CCRProcess.sqliteConfig())
        defer { server.remove() }
        try await server.start()
        let blocks = Self.described(capture, as: "interrupted")
        let tuner = try TestTuner(port: server.port)
        for block in blocks.prefix(blocks.count * 2 / 3) { try tuner.send(block) }
        try await Task.sleep(for: .milliseconds(800))
        server.kill9()
        let before = archivedFiles(server.archive, suffix: ".srt", tuner: "interrupted")
        try #require(before.count == 1)
        let srtBefore = try Data(contentsOf: before[0])
        let cut = try ProcessTests.checkConsistentPrefix(server.archive, capture: capture, expected: expected, lastMayBeCut: false)

        try await server.start()
        #expect(try Data(contentsOf: before[0]) == srtBefore, "the restart rewrote the interrupted program's srt")
        // A new tuner, and the interrupted one coming back: both streams complete.
        try await Self.stream(Self.described(capture, as: "after-restart"), port: server.port)
        try await Self.stream(blocks, port: server.port)
        var fresh: [SRTCue] = []
        #expect(try await eventually { fresh = try archivedCues(server.archive, tuner: "after-restart"); return fresh.count >= expected.count })
        #expect(fresh == expected)
        // The reconnected tuner's program is a new file beside the interrupted one (whose name
        // may sort either way: a same-second start gets a "-2" suffix).
        var resumed: [URL] = []
        var resumedCues: [SRTCue] = []
        _ = try await eventually {
            resumed = archivedFiles(server.archive, suffix: ".srt", tuner: "interrupted").filter { $0.path != before[0].path }
            resumedCues = try resumed.first.map { parseSRT(try String(contentsOf: $0, encoding: .utf8)) } ?? []
            return resumedCues.count >= expected.count
        }
        #expect(resumed.count == 1, "\(resumed)")
        #expect(resumedCues == expected)
        #expect(parseSRT(try String(contentsOf: before[0], encoding: .utf8)).count == cut)

        // The database: readable, the new stream's lines all there, the interrupted program's a prefix.
        kill(server.pid, SIGTERM)
        #expect(await server.waitForExit() == 0)
        let store = try await openStore(.sqlite(path: server.dir.appendingPathComponent("ccr.sqlite").path), options: StoreOptions(readOnly: true))
        defer { Task { await store.close() } }
        let transcript = String(decoding: try Fixtures.sharedData("the.tudors.txt"), as: UTF8.self)
            .components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let programs = try await store.programs(ProgramQuery())
        #expect(programs.count == 3, "\(programs)")
        for program in programs {
            let lines = try await store.lines(programID: program.id).flatMap { $0.text.components(separatedBy: "\n") }
            #expect(lines == Array(transcript.prefix(lines.count)), "program \(program.id) lines are not a prefix of the transcript")
            if program.endedAt != nil { #expect(lines == transcript, "program \(program.id) ended but incomplete") }
        }
        #expect(programs.filter { $0.endedAt != nil }.count >= 2)
    }

    // MARK: signals

    @Test func sigtermFromAParentThatBlocksItStopsGracefully() async throws {
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        let expected = parseSRT(String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self))
        let server = try CCRProcess(config: CCRProcess.sqliteConfig())
        defer { server.remove() }
        try await server.start(blockTermination: true)
        let tuner = try TestTuner(port: server.port)
        let blocks = captureBlocks(capture)
        for block in blocks.prefix(blocks.count / 2) { try tuner.send(block.bytes) }
        try await Task.sleep(for: .milliseconds(500))
        kill(server.pid, SIGTERM)
        #expect(await server.waitForExit(timeout: 20) == 0, "ccr ignored SIGTERM:\n\(server.log.suffix(2000))")
        #expect(server.log.contains("received SIGTERM"))
        #expect(await tuner.readUntilClosed(timeout: 5) == [])
        _ = try ProcessTests.checkConsistentPrefix(server.archive, capture: capture, expected: expected, lastMayBeCut: true)
    }

    // MARK: database outage

    @Test(.enabled(if: MariaDBServer.isInstalled || Fixtures.isCI, "needs mariadb-server"))
    func mariaDBStoppedForSixtySecondsLosesNothing() async throws {
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        let transcript = String(decoding: try Fixtures.sharedData("the.tudors.txt"), as: UTF8.self)
            .components(separatedBy: "\r\n").filter { !$0.isEmpty }
        let db = try await MariaDBServer.start()
        defer { db.stop() }
        let server = try CCRProcess(config: """
            [archive]
            dir = archive
            flush_interval = 0.2
            [database]
            driver = mariadb
            host = 127.0.0.1
            port = \(db.port)
            user = cc_rw
            password = \(db.readWritePassword.revealed)
            name = \(db.database)
            spool_dir = spool
            """)
        defer { server.remove() }
        try await server.start()
        let names = ["outage-a", "outage-b", "outage-c"]
        let streams = names.map { Self.described(capture, as: $0) }
        // A third of each stream with the database up, the rest while it is down.
        let tuners = try names.map { _ in try TestTuner(port: server.port) }
        for (tuner, blocks) in zip(tuners, streams) {
            for block in blocks.prefix(blocks.count / 3) { try tuner.send(block) }
        }
        try await Task.sleep(for: .seconds(1))
        db.kill()
        let outage = ContinuousClock.now
        for (tuner, blocks) in zip(tuners, streams) {
            for block in blocks.dropFirst(blocks.count / 3) { try tuner.send(block) }
            tuner.finishSending()
        }
        for tuner in tuners { _ = await tuner.readUntilClosed(timeout: 30) }
        try await Task.sleep(until: outage + .seconds(60))
        #expect(server.isRunning, "ccr serve died during the outage:\n\(server.log.suffix(2000))")
        try await db.restart()

        let store = try await openStore(db.readOnly, options: StoreOptions(readOnly: true))
        defer { Task { await store.close() } }
        var programs: [ProgramSummary] = []
        let complete = try await eventually(timeout: 60) {
            programs = try await store.programs(ProgramQuery())
            guard programs.count == names.count, programs.allSatisfy({ $0.endedAt != nil }) else { return false }
            for p in programs {
                let rows = try await store.lines(programID: p.id).flatMap { $0.text.components(separatedBy: "\n") }
                if rows.count < transcript.count { return false }
            }
            return true
        }
        #expect(complete, "programs: \(programs)")
        for program in programs {
            // Every line, in order, exactly once.
            let rows = try await store.lines(programID: program.id).flatMap { $0.text.components(separatedBy: "\n") }
            #expect(rows == transcript, "program \(program.id) (\(program.tunerDescription ?? "?"))")
            #expect(program.name == "Tudors, The: Episode 208")
        }
        #expect(Set(programs.compactMap(\.tunerDescription)) == Set(names))
        // The spool drained: its files are truncated to empty once everything is applied.
        let drained = await eventually(timeout: 20) { Self.spoolBytes(server.dir.appendingPathComponent("spool")) == 0 }
        #expect(drained, "spool still holds \(Self.spoolBytes(server.dir.appendingPathComponent("spool"))) bytes")
        // And the archive never depended on the database.
        let expected = parseSRT(String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self))
        for name in names { #expect(try archivedCues(server.archive, tuner: name) == expected, "\(name)") }
    }

    static func spoolBytes(_ dir: URL) -> Int {
        let files = (try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: [.fileSizeKey])) ?? []
        return files.reduce(0) { $0 + ((try? $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
    }
}
