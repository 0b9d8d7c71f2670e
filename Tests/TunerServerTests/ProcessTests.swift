import Foundation
import SupportKit
import Testing
@testable import TunerServer

/// `ccr serve` as a real process: SIGTERM and `kill -9` mid-stream.
enum CCRBinary {
    /// `$CCR_BINARY`, or the `ccr` built beside this test bundle by `swift test`.
    static var path: String? { CCRExecutable.path }

    static var shouldRun: Bool { (path != nil || Fixtures.isCI) && Fixtures.shouldRunSharedTests }
}

@Suite(.enabled(if: CCRBinary.shouldRun, "needs the ccr executable (swift test builds it; or set CCR_BINARY) and the shared fixtures"))
struct ProcessTests {
    /// Checks that the archive holds whole cues and whole records, a prefix of the full stream.
    static func checkConsistentPrefix(_ archive: URL, capture: [UInt8], expected: [SRTCue], lastMayBeCut: Bool) throws -> Int {
        let srt = try #require(archivedFiles(archive, suffix: ".srt").first)
        let text = try String(contentsOf: srt, encoding: .utf8)
        #expect(text.isEmpty || text.hasSuffix("\r\n\r\n"), "the srt ends inside a cue")
        let cues = parseSRT(text)
        try #require(cues.count >= 3 && cues.count < expected.count, "\(cues.count) cues archived")
        let whole = lastMayBeCut ? Array(cues.dropLast()) : cues
        #expect(whole == Array(expected.prefix(whole.count)))
        #expect(cues.last?.rows == expected[cues.count - 1].rows)
        let bin = try #require(archivedFiles(archive, suffix: ".bin").first)
        let bytes = [UInt8](try Data(contentsOf: bin))
        #expect(try RCWTRecordsCheck.count(bytes) > 100)
        #expect(Array(rebuiltStream(capture).prefix(bytes.count)) == bytes)
        return cues.count
    }

    @Test func sigtermMidStreamLeavesCompleteFiles() async throws {
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        let expected = parseSRT(String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self))
        let server = try CCRProcess(config: CCRProcess.sqliteConfig())
        defer { server.remove() }
        try await server.start()
        let tuner = try TestTuner(port: server.port)
        let blocks = captureBlocks(capture)
        for block in blocks.prefix(blocks.count / 2) { try tuner.send(block.bytes) }
        try await Task.sleep(for: .milliseconds(500))
        kill(server.pid, SIGTERM)
        #expect(await server.waitForExit() == 0)
        #expect(await tuner.readUntilClosed(timeout: 5) == [])
        // After a graceful stop the last cue is closed at the stop (its text is whole).
        _ = try Self.checkConsistentPrefix(server.archive, capture: capture, expected: expected, lastMayBeCut: true)
    }

    @Test func killDashNineLeavesReadableConsistentFiles() async throws {
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        let expected = parseSRT(String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self))
        let server = try CCRProcess(config: CCRProcess.sqliteConfig())
        defer { server.remove() }
        try await server.start()
        let tuner = try TestTuner(port: server.port)
        let blocks = captureBlocks(capture)
        for block in blocks.prefix(blocks.count * 2 / 3) { try tuner.send(block.bytes) }
        try await Task.sleep(for: .milliseconds(800))
        server.kill9()
        // No graceful close: every cue on disk is one the full stream also has, exactly.
        _ = try Self.checkConsistentPrefix(server.archive, capture: capture, expected: expected, lastMayBeCut: false)
    }
}
