import Captions
import Foundation
import NIOCore
import SupportKit
import Testing
import TunerBench
@testable import TunerServer

/// `ccr-bench abuse` (bench/ccr's abusive tuners, issue 16): its precomputed bytes are the
/// protocol's, and run against a real `ccr serve` every attack connects and is stopped by the
/// server for its reason while an honest tuner's captions are all stored.
@Suite(.serialized)
struct AbusiveTunersTests {
    /// The flood and name chunks, stamped from a template, equal the records the server's own
    /// `RCWTRecord` makes for the same timestamps, whatever the chunk number.
    @Test("stamped flood and program-name chunks equal the server's own record encoding, for random chunk numbers")
    func stampedChunks() {
        let payloads = AbusePayloads()
        var rng = SplitMix64(state: 0xAB05E)
        for _ in 0..<50 {
            let i = Int64.random(in: 0...(Int64.max / 4096), using: &rng)
            var flood = ByteBufferAllocator().buffer(capacity: 0)
            payloads.flood.write(into: &flood, first: i * 2112, step: 33)
            let expectedFlood = (0..<64).flatMap { k in HostileTunerTests.record(i * 2112 + Int64(k) * 33, HostileTunerTests.floodRecord) }
            #expect(Array(flood.readableBytesView) == expectedFlood)

            var names = ByteBufferAllocator().buffer(capacity: 0)
            payloads.names[Int(i % 2)].write(into: &names, first: i * 33, step: 1)
            let expectedNames = (0..<64).flatMap { k in
                HostileTunerTests.record(i * 33 + Int64(k), HostileTunerTests.programNamePacket("PROGRAM \((Int(i % 2) + k) % 2)"))
            }
            #expect(Array(names.readableBytesView) == expectedNames)
        }
        let stamps: [Int64] = [.max, .min, .min + 1]
        let pair = [CCTriplet(info: 0xFC, data1: 0x14, data2: 0x2D), CCTriplet(info: 0xFC, data1: 0x41, data2: 0x42)]
        for first in 0..<3 {
            #expect(payloads.extreme[first] == (0..<64).flatMap { k in HostileTunerTests.record(stamps[(first + k) % 3], pair) })
        }
        #expect(payloads.hello == HostileTunerTests.hello(description: "abuse"))
        #expect(payloads.trickle == BlockCommand.password.block(Array(repeating: 0x78, count: 40)))
    }

    /// `ccr-bench` beside the `ccr` under test (`swift build` makes both), or `$CCR_BENCH_BINARY`.
    static var benchBinary: String? {
        if let p = ProcessInfo.processInfo.environment["CCR_BENCH_BINARY"], !p.isEmpty { return p }
        guard let ccr = CCRBinary.path else { return nil }
        let beside = URL(fileURLWithPath: ccr).deletingLastPathComponent().appendingPathComponent("ccr-bench").path
        return FileManager.default.isExecutableFile(atPath: beside) ? beside : nil
    }

    @Test("ccr-bench abuse, 12 connections for 6 s: every attack connects, the server stops each for its reason, an honest tuner beside them loses nothing",
          .enabled(if: CCRBinary.shouldRun, "needs the ccr executable (swift test builds it; or set CCR_BINARY) and the shared fixtures"))
    func abuseBesideAnHonestTuner() async throws {
        let bench = try #require(Self.benchBinary, "ccr-bench not found beside ccr (swift build makes it; or set CCR_BENCH_BINARY)")
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig(), metrics: true)
        defer { serve.remove() }
        try await serve.start()
        let tool = Process()
        tool.executableURL = URL(fileURLWithPath: bench)
        tool.arguments = ["abuse", "127.0.0.1", String(serve.port), "12", "6", "--source", "127.0.0.2"]
        let output = Pipe()
        tool.standardOutput = output
        tool.standardError = output
        try tool.run()
        // It stops by itself after 6 s; SIGTERM (which it answers with its summary) if it hangs.
        let stopper = Task {
            try await Task.sleep(for: .seconds(30))
            if tool.isRunning { tool.terminate() }
        }
        defer { stopper.cancel() }

        // An honest tuner (from 127.0.0.1) while the attacks run.
        try await Task.sleep(for: .seconds(1))
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        let reference = parseSRT(String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self))
        try await ReplayTests.replay(ServeFaultTests.described(capture, as: "honest").flatMap { $0 }, into: serve.port, pace: .whole)

        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        tool.waitUntilExit()
        #expect(tool.terminationStatus == 0, "ccr-bench abuse: \(text)")
        let summary = try #require(text.split(separator: "\n").last(where: { $0.hasPrefix("ABUSE ") }), "no ABUSE line in: \(text)")
        var made: [String: Int] = [:]
        for field in summary.split(separator: " ").dropFirst() {
            let parts = field.split(separator: "=")
            if parts.count == 2 { made[String(parts[0])] = Int(parts[1]) }
        }
        for attack in AbusiveTuners.Attack.allCases {
            #expect(made[attack.rawValue, default: 0] >= 1, "\(attack.rawValue) never connected: \(summary)")
        }
        #expect(made["bytes", default: 0] > 100_000, "the floods sent little: \(summary)")

        #expect(await eventually { (try? archivedCues(serve.archive, tuner: "honest")) == reference }, "the honest tuner's captions were not all archived")
        let honestLines = Int(TimestampProcessTests.sqlite(serve, "SELECT COUNT(*) FROM caption_lines l JOIN tuners t ON t.id = l.tuner_id WHERE t.description = 'honest'")) ?? 0
        #expect(honestLines > 0, "no line of the honest tuner stored")

        let metrics = try await serve.get("/metrics", port: serve.metricsPort).body
        func count(_ prefix: String) -> Int {
            metrics.split(separator: "\n").filter { $0.hasPrefix(prefix) }.reduce(0) { $0 + (Int($1.split(separator: " ").last ?? "") ?? 0) }
        }
        let overLimit = count("ccr_connections_closed_total{reason=\"limit\"}") + count("ccr_connections_refused_total{reason=\"spent-budget\"}")
        #expect(overLimit >= 2, "floods closed over a limit or refused for a spent budget: \(overLimit)\n\(metrics)")
        #expect(count("ccr_connections_closed_total{reason=\"handshake\"}") >= 1, "trickling and silent connections closed at the handshake deadline\n\(metrics)")
        #expect(count("ccr_connections_closed_total{reason=\"framing\"}") >= 1, "garbage closed for its framing\n\(metrics)")
    }
}
