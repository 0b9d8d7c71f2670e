import Foundation
import Store
import Testing

/// Throughput figures for the report, not a timed test: run with CCR_STORE_BENCH=1.
@Suite("Store benchmark")
struct StoreBenchmarkTests {
    static let enabled = ProcessInfo.processInfo.environment["CCR_STORE_BENCH"] == "1"

    @Test("insert, live and search speed", .enabled(if: enabled, "set CCR_STORE_BENCH=1"), arguments: Backend.allCases)
    func measure(backend: Backend) async throws {
        try await withStoreEnvironment(backend) { env in
            let tuners = 100
            var programs: [(tuner: Int64, program: Int64)] = []
            for i in 0..<tuners {
                let t = try await startTuner(env.writer, description: "tuner \(i)")
                programs.append((t.tuner, t.program))
            }
            let words = ["king", "england", "news", "weather", "tonight", "storm", "election", "music", "game", "score"]
            let batches = 200, perBatch = 100
            let start = ContinuousClock.now
            for b in 0..<batches {
                let lines = (0..<perBatch).map { i -> CaptionLineInput in
                    let p = programs[(b * perBatch + i) % tuners]
                    let text = "line \(b)-\(i) \(words[i % words.count]) and \(words[(b + i) % words.count])"
                    return line(text, program: p.program, tuner: p.tuner, at: Int64(b * 1000 + i))
                }
                try await env.writer.appendLines(lines)
            }
            let insertSeconds = Double((ContinuousClock.now - start).components.attoseconds) / 1e18 + Double((ContinuousClock.now - start).components.seconds)
            let total = batches * perBatch

            let searchStart = ContinuousClock.now
            var hits = 0
            for i in 0..<50 { hits += try await env.reader.search(SearchQuery(text: "\"\(words[i % 10]) and \(words[(i + 3) % 10])\"", limit: 20)).count }
            let searchMs = (ContinuousClock.now - searchStart) / 50

            let cursor = try await env.reader.liveCursorNow()
            let liveStart = ContinuousClock.now
            for _ in 0..<100 { _ = try await env.reader.liveLines(after: cursor, tunerID: nil, limit: 500) }
            let liveMs = (ContinuousClock.now - liveStart) / 100

            print("STORE-BENCH \(backend): \(total) lines in batches of \(perBatch): \(Int(Double(total) / insertSeconds)) lines/s; phrase search (\(total) lines, limit 20, \(hits) hits): \(searchMs) each; live poll: \(liveMs) each")
            #expect(hits > 0)
        }
    }
}
