import Testing
@testable import TunerServer

/// The store writer groups transactions only under load (pure data: write times in, waits out).
@Suite struct CommitPacerTests {
    let t0 = ContinuousClock.now
    func at(_ ms: Double) -> ContinuousClock.Instant { t0 + .microseconds(Int64(ms * 1000)) }

    @Test("a quiet writer never waits: each line is written at once")
    func quietWriterWritesAtOnce() {
        var pacer = CommitPacer()
        // 0.2 ms transactions every 20 ms for a second (1% busy).
        for i in 0..<50 {
            pacer.wrote(from: at(Double(i) * 20), to: at(Double(i) * 20 + 0.2))
            #expect(pacer.nextStart == nil)
        }
    }

    @Test("a busy writer waits until `spacing` after its last transaction began, then stops waiting when load falls")
    func busyWriterGroupsThenReleases() {
        var pacer = CommitPacer()
        // Back-to-back 0.3 ms transactions (~100% busy) for 150 ms: grouping starts.
        var t = 0.0
        while t < 150 {
            pacer.wrote(from: at(t), to: at(t + 0.3))
            t += 0.35
        }
        let lastStart = at(t - 0.35)
        #expect(pacer.grouping)
        #expect(pacer.nextStart == lastStart + pacer.spacing)
        // Grouped: 2 ms transactions every 10 ms (20% busy) keep it grouping (above the 5% floor).
        for i in 1...30 {
            let s = t + Double(i) * 10
            pacer.wrote(from: at(s), to: at(s + 2))
        }
        #expect(pacer.grouping)
        // Load falls: 0.2 ms every 20 ms (1%) for 200 ms; lines are written at once again.
        let quietFrom = t + 310
        for i in 0..<10 {
            let s = quietFrom + Double(i) * 20
            pacer.wrote(from: at(s), to: at(s + 0.2))
        }
        #expect(!pacer.grouping)
        #expect(pacer.nextStart == nil)
    }
}
