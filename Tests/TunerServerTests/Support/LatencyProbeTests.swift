import Foundation
import Store
import Testing
import TunerBench
@testable import TunerServer
import ServerFiles

/// The latency benchmark's definition rests on these: a probe caption becomes a stored line
/// exactly when the next caption's bytes are decoded, and its id survives decoding.
@Suite struct LatencyProbeTests {
    @Test("a probe caption's line is decoded when the next caption's bytes arrive, carrying its id")
    func probeLinesCompleteOnTheNextCaption() throws {
        let root = try makeTemporaryDirectory("probe")
        defer { try? FileManager.default.removeItem(at: root) }
        var session = TunerSession(tuner: "probe", settings: SessionSettings(password: nil, layout: ArchiveLayout(root: root.path)))
        var described: String?
        try session.receive(ClientBytes.preamble(description: "bench probe 3")) { event in
            if case .described(let text) = event { described = text }
        }
        #expect(described == "bench probe 3")
        for k in 0..<5 {
            var texts: [String] = []
            try session.receive(LatencyProbe.caption(id: 3_000_000 + k, at: Int64(k) * 1000)) { event in
                // As the server's handler: a cue with no lines (a cleared screen) is not stored.
                if case .cue(let cue, _) = event, !cue.lines.isEmpty { texts.append(cue.plainText) }
            }
            #expect(texts.map { LatencyProbe.id(in: $0) } == (k == 0 ? [] : [3_000_000 + k - 1]), "after caption \(k): \(texts)")
        }
        #expect(session.isAtBlockBoundary)
    }

    @Test("the load generator's probes send at phases spread over the interval, not in lockstep, and their lines reach the store")
    func probesSendAtSpreadPhases() async throws {
        try await withServer(useStore: true) { server, _, store in
            var options = TunerLoadGenerator.Options()
            options.port = server.port
            options.connections = 10
            options.probes = 10
            options.rampPerSecond = 1000
            options.probeIntervalMilliseconds = 1000
            let generator = TunerLoadGenerator(capture: [], options: options)
            await generator.start()
            // Caption 1 of each probe (sent one interval after caption 0) completes line 0.
            var sent: [Int: ContinuousClock.Instant] = [:]
            let complete = await eventually(timeout: 10) {
                for probe in 0..<10 where sent[probe] == nil {
                    sent[probe] = generator.ledger.take(id: probe * 1_000_000)?.instant
                }
                return sent.count == 10
            }
            #expect(complete, "every probe sent its second caption (\(sent.count) of 10)")
            let ordered = sent.values.sorted()
            if let first = ordered.first, let last = ordered.last {
                // Phases 0, 100, ..., 900 ms; in lockstep they would all fall within one 5 ms tick.
                #expect(last - first >= .milliseconds(700), "probe captions sent within \(last - first)")
                let closest = zip(ordered, ordered.dropFirst()).map { $1 - $0 }.min() ?? .zero
                #expect(closest >= .milliseconds(50), "two probes sent \(closest) apart")
            }
            let stored = await eventually(timeout: 10) {
                let page = try? await store?.liveLines(after: .start, tunerID: nil, limit: 100)
                let ids = Set((page?.lines ?? []).compactMap { LatencyProbe.id(in: $0.text) })
                return (0..<10).allSatisfy { ids.contains($0 * 1_000_000) }
            }
            #expect(stored, "each probe's first line is in the store's live feed")
            await generator.stop()
        }
    }

    @Test("only probe lines yield an id")
    func idParsing() {
        #expect(LatencyProbe.id(in: "BENCH 42") == 42)
        #expect(LatencyProbe.id(in: "  BENCH 1000007  ") == 1_000_007)
        #expect(LatencyProbe.id(in: "BENCH SEASON") == nil)
        #expect(LatencyProbe.id(in: "THE KING OF ENGLAND") == nil)
    }
}
