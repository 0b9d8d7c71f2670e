import Foundation
import SupportKit
import Testing
@testable import TunerServer

/// `ccr serve` as a real process: SIGTERM and `kill -9` mid-stream.
enum CCRBinary {
    /// `$CCR_BINARY`, or the `ccr` built beside this test bundle by `swift test`.
    static var path: String? {
        if let p = ProcessInfo.processInfo.environment["CCR_BINARY"], !p.isEmpty { return p }
        let here = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = here.deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("ccr").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    static var shouldRun: Bool { (path != nil || Fixtures.isCI) && Fixtures.shouldRunSharedTests }
}

@Suite(.enabled(if: CCRBinary.shouldRun, "needs the ccr executable (swift test builds it; or set CCR_BINARY) and the shared fixtures"))
struct ProcessTests {
    /// A running `ccr serve` in a temporary folder; killed and removed by `stop()`.
    final class ServeProcess: @unchecked Sendable {
        // @unchecked: used by one test task only.
        let process = Process()
        let dir: URL
        let port: Int

        init(config: String) async throws {
            let binary = try #require(CCRBinary.path, "ccr executable not found (set CCR_BINARY)")
            dir = try makeTemporaryDirectory("process")
            let configPath = dir.appendingPathComponent("ccr.conf").path
            try config.write(toFile: configPath, atomically: true, encoding: .utf8)
            let ready = dir.appendingPathComponent("ready").path
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["serve", "--config", configPath, "--port", "0", "--listen", "127.0.0.1",
                                 "--metrics-port", "off", "--ready-file", ready, "--log-level", "warning"]
            process.currentDirectoryURL = dir
            try process.run()
            var found: Int?
            for _ in 0..<400 where found == nil {
                try await Task.sleep(for: .milliseconds(25))
                if let text = try? String(contentsOfFile: ready, encoding: .utf8) {
                    found = text.split(separator: "\n").first { $0.hasPrefix("port=") }.flatMap { Int($0.dropFirst(5)) }
                }
            }
            guard let found else {
                process.terminate()
                throw TestSocketError.failed("ccr serve did not write its ready file", 0)
            }
            port = found
        }

        var archive: URL { dir.appendingPathComponent("archive") }

        func waitForExit(timeout: Double = 20) async -> Int32? {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            return process.isRunning ? nil : process.terminationStatus
        }

        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
            try? FileManager.default.removeItem(at: dir)
        }
    }

    static let config = """
    [archive]
    dir = archive
    flush_interval = 0.2
    [database]
    driver = sqlite
    path = ccr.sqlite
    spool_dir = spool
    """

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
        let server = try await ServeProcess(config: Self.config)
        defer { server.stop() }
        let tuner = try TestTuner(port: server.port)
        let blocks = captureBlocks(capture)
        for block in blocks.prefix(blocks.count / 2) { try tuner.send(block.bytes) }
        try await Task.sleep(for: .milliseconds(500))
        kill(server.process.processIdentifier, SIGTERM)
        #expect(await server.waitForExit() == 0)
        #expect(await tuner.readUntilClosed(timeout: 5) == [])
        // After a graceful stop the last cue is closed at the stop (its text is whole).
        _ = try Self.checkConsistentPrefix(server.archive, capture: capture, expected: expected, lastMayBeCut: true)
    }

    @Test func killDashNineLeavesReadableConsistentFiles() async throws {
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        let expected = parseSRT(String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self))
        let server = try await ServeProcess(config: Self.config)
        defer { server.stop() }
        let tuner = try TestTuner(port: server.port)
        let blocks = captureBlocks(capture)
        for block in blocks.prefix(blocks.count * 2 / 3) { try tuner.send(block.bytes) }
        try await Task.sleep(for: .milliseconds(800))
        kill(server.process.processIdentifier, SIGKILL)
        _ = await server.waitForExit()
        // No graceful close: every cue on disk is one the full stream also has, exactly.
        _ = try Self.checkConsistentPrefix(server.archive, capture: capture, expected: expected, lastMayBeCut: false)
    }
}
