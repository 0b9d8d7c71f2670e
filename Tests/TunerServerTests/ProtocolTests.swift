import Foundation
import SupportKit
import Testing
@testable import TunerServer

/// The protocol's edges over real TCP: replies, refusals, and malformed input of every kind.
@Suite struct ProtocolTests {
    static let header: [UInt8] = [0xCC, 0xCC, 0xED, 0xCC, 0x00, 0x50, 0x00, 0x01, 0x00, 0x00, 0x00]
    static let hello = BlockCommand.password.block([]) + BlockCommand.ccDescription.block(Array("probe".utf8))

    @Test func pingIsAnsweredWithTheRawByte0x37() async throws {
        try await withServer { server, _, _ in
            let tuner = try TestTuner(port: server.port)
            try tuner.send(Self.hello + BlockCommand.binHeader.block(Self.header) + BlockCommand.ping.block())
            #expect(await tuner.read(count: 1) == [0x37])
            try tuner.send(BlockCommand.ping.block())
            #expect(await tuner.read(count: 1) == [0x37])
        }
    }

    @Test func wrongPasswordGets0x02ThenClose() async throws {
        try await withServer(password: "s3cret") { server, archive, _ in
            let tuner = try TestTuner(port: server.port)
            let start = Date()
            try tuner.send(BlockCommand.password.block(Array("s3cres".utf8)) + BlockCommand.ccDescription.block([])
                           + BlockCommand.binHeader.block(Self.header))
            let reply = await tuner.readUntilClosed()
            #expect(reply == [0x02])
            #expect(Date().timeIntervalSince(start) >= 0.25, "the close should come after the configured delay")
            #expect(await eventually { server.metrics.snapshot.wrongPasswords == 1 })
            #expect(archivedFiles(archive, suffix: ".bin").isEmpty)
        }
    }

    @Test func dataWithoutPasswordIsRefusedWhenOneIsRequired() async throws {
        try await withServer(password: "s3cret") { server, _, _ in
            let tuner = try TestTuner(port: server.port)
            try tuner.send(BlockCommand.binHeader.block(Self.header))
            #expect(await tuner.readUntilClosed() == [])
        }
    }

    /// Slots are taken at authentication: a connection that has not authenticated holds none.
    @Test func connectionLimitIsAnsweredWithCONN_LIMIT() async throws {
        try await withServer(maxTuners: 2) { server, _, _ in
            let silent = try TestTuner(port: server.port)
            let a = try TestTuner(port: server.port)
            let b = try TestTuner(port: server.port)
            try a.send(Self.hello)
            try b.send(Self.hello)
            #expect(await eventually { server.metrics.snapshot.connectedTuners == 2 })
            let c = try TestTuner(port: server.port)
            try c.send(Self.hello)
            #expect(await c.readUntilClosed() == BlockCommand.connectionLimit.block())
            _ = silent
            #expect(server.metrics.snapshot.connectionLimitRejections == 1)
            // A slot freed is a slot usable again.
            a.finishSending()
            _ = await a.readUntilClosed()
            #expect(await eventually { server.metrics.snapshot.connectedTuners == 1 })
            let d = try TestTuner(port: server.port)
            try d.send(Self.hello + BlockCommand.ping.block())
            #expect(await d.read(count: 1) == [0x37])
        }
    }

    @Test func metricsCountConnectedTuners() async throws {
        try await withServer { server, _, _ in
            let port = try #require(server.metricsPort)
            let a = try TestTuner(port: server.port)
            let b = try TestTuner(port: server.port)
            try a.send(Self.hello)
            try b.send(Self.hello)
            #expect(await eventually { server.metrics.snapshot.connectedTuners == 2 })
            let response = try await metricsResponse(server)
            #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(response.contains("\nccr_connected_tuners 2\n"))
            #expect(response.contains("\nccr_spool_depth 0\n"))
            let bytes = Self.hello.count * 2
            #expect(response.contains("\nccr_bytes_received_total \(bytes)\n"))
            let missing = try TestTuner(port: port)
            try missing.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
            #expect(String(decoding: await missing.readUntilClosed() ?? [], as: UTF8.self).hasPrefix("HTTP/1.1 404"))
        }
    }

    /// Each kind of bad input closes only its own connection, with its reason counted, while a
    /// real tuner streams through the same server, and its archive comes out complete.
    @Test(.enabled(if: Fixtures.shouldRunSharedTests, "needs ../shared/fixtures"))
    func malformedInputClosesOnlyThatConnection() async throws {
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto-password.bin"))
        let expected = parseSRT(String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self))
        let bad: [(String, [UInt8], String)] = [
            ("half block", Self.hello + Array(BlockCommand.binHeader.block(Self.header).prefix(15)), "truncated"),
            ("non-decimal length", [6] + Array("12a4".utf8), "framing"),
            ("huge length", [6] + Array("4294967296".utf8), "framing"),
            ("unknown command", Self.hello + [0x63] + Array("0".utf8) + Array(repeating: 0, count: 9) + [13, 10], "framing"),
            ("binary garbage", (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }, "framing"),
            ("missing CRLF", Self.hello + BlockCommand.binHeader.block(Self.header).dropLast(2) + [0, 0], "framing"),
            ("HTTP request", Array("GET / HTTP/1.1\r\n\r\n".utf8), "framing"),
            ("data before header", Self.hello + BlockCommand.binData.block([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), "protocolOrder"),
            ("bad RCWT header", Self.hello + BlockCommand.binHeader.block(Array(repeating: 0x41, count: 11)), "badHeader"),
            ("absurd triplet count", Self.hello + BlockCommand.binHeader.block(Self.header)
                + BlockCommand.binData.block([0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]), "badRecord"),
        ]
        try await withServer(handshakeTimeout: 0.5) { server, archive, _ in
            async let clean: Void = ReplayTests.replay(capture, into: server.port, pace: .realTime(speed: 20))
            try await Task.sleep(for: .milliseconds(300))
            let silent = try TestTuner(port: server.port)
            for (label, bytes, _) in bad {
                let tuner = try TestTuner(port: server.port)
                try? tuner.send(bytes)
                if label == "half block" { tuner.finishSending() }
                let reply = await tuner.readUntilClosed(timeout: 10)
                #expect(reply == [], "\(label): the server should close the connection without a reply")
            }
            // The silent client is dropped at the handshake deadline.
            #expect(await silent.readUntilClosed(timeout: 10) == [])
            try await clean
            var expectedReasons: [String: Int] = ["eof": 1, "handshake": 1]
            for (_, _, reason) in bad { expectedReasons[reason, default: 0] += 1 }
            #expect(await eventually { server.metrics.snapshot.closedTotal == bad.count + 2 })
            #expect(server.metrics.snapshot.closedByReason == expectedReasons)
            #expect(try archivedCues(archive, tuner: "test-tuner") == expected)
        }
    }

    /// Shutdown (what SIGTERM triggers) mid-stream: the files on disk are whole cues and whole
    /// records, a prefix of what the full stream gives.
    @Test(.enabled(if: Fixtures.shouldRunSharedTests, "needs ../shared/fixtures"))
    func shutdownMidStreamLeavesCompleteFiles() async throws {
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        let expected = parseSRT(String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self))
        try await withServer { server, root, _ in
            let tuner = try TestTuner(port: server.port)
            let blocks = captureBlocks(capture)
            for block in blocks.prefix(blocks.count / 2) { try tuner.send(block.bytes) }
            #expect(await eventually { server.metrics.snapshot.bytesReceived >= capture.count / 3 })
            await server.shutdown()
            #expect(await tuner.readUntilClosed() == [])

            let cues = try archivedCues(root)
            try #require(cues.count >= 5 && cues.count < expected.count, "\(cues.count) cues archived")
            // Every cue but the last is exactly the reference; the last is the screen shown when
            // the stream stopped (its end time is the stop, not the reference's).
            #expect(Array(cues.dropLast()) == Array(expected.prefix(cues.count - 1)))
            #expect(cues.last?.rows == expected[cues.count - 1].rows)
            let bin = try #require(archivedFiles(root, suffix: ".bin").first)
            let bytes = [UInt8](try Data(contentsOf: bin))
            #expect(try RCWTRecordsCheck.count(bytes) > 100)
            #expect(Array(rebuiltStream(capture).prefix(bytes.count)) == bytes)
        }
    }
}

/// Counts the records of an RCWT file, failing on a cut record (the "consistent file" check).
enum RCWTRecordsCheck {
    static func count(_ bytes: [UInt8]) throws -> Int {
        var i = 11
        var n = 0
        while i < bytes.count {
            guard i + 10 <= bytes.count else { throw CutRecord(offset: i) }
            let triplets = Int(bytes[i + 8]) | Int(bytes[i + 9]) << 8
            i += 10 + 3 * triplets
            guard i <= bytes.count else { throw CutRecord(offset: i) }
            n += 1
        }
        return n
    }

    struct CutRecord: Error { let offset: Int }
}
