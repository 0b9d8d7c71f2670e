import Foundation
import Testing
@testable import TunerServer

/// The latency benchmark's definition rests on these: a probe caption becomes a stored line
/// exactly when the next caption's bytes are decoded, and its id survives decoding.
@Suite struct LatencyProbeTests {
    @Test("a probe caption's line is decoded when the next caption's bytes arrive, carrying its id")
    func probeLinesCompleteOnTheNextCaption() throws {
        let root = try makeTemporaryDirectory("probe")
        defer { try? FileManager.default.removeItem(at: root) }
        var session = TunerSession(tuner: "probe", settings: SessionSettings(password: nil, layout: ArchiveLayout(root: root.path)))
        var described: String?
        try session.receive(LatencyProbe.preamble(description: "bench probe 3")) { event in
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

    @Test("only probe lines yield an id")
    func idParsing() {
        #expect(LatencyProbe.id(in: "BENCH 42") == 42)
        #expect(LatencyProbe.id(in: "  BENCH 1000007  ") == 1_000_007)
        #expect(LatencyProbe.id(in: "BENCH SEASON") == nil)
        #expect(LatencyProbe.id(in: "THE KING OF ENGLAND") == nil)
    }
}
