import Captions
import Testing

/// Hostile or corrupt input must never crash the decoder (the server runs thousands of them).
@Suite("Decoder robustness")
struct FuzzTests {
    @Test("random triplets and timestamps: no crash, every event well formed")
    func randomInput() {
        var rng = SystemRandomNumberGenerator()
        let stamps: [Int64] = [0, -1, 1, Int64.max, Int64.min, 1 << 40, -(1 << 40)]
        for round in 0..<28 {
            let channel = CaptionChannel.allCases[round % 4]
            var decoder = CaptionDecoder(options: DecoderOptions(channel: channel, xds: true, checkParity: round % 2 == 0))
            var time: Int64 = round < 21 ? Int64.random(in: 0...1_000_000, using: &rng) : stamps[round % stamps.count]
            for _ in 0..<2000 {
                let n = Int.random(in: 0...4, using: &rng)
                var triplets: [CCTriplet] = []
                for _ in 0..<n {
                    // Mostly 608 data with control-code-like first bytes, to reach every path.
                    let info = UInt8.random(in: 0...255, using: &rng) | (Bool.random(using: &rng) ? 0xFC : 0)
                    let hi = Bool.random(using: &rng) ? UInt8.random(in: 0x00...0x1F, using: &rng) : UInt8.random(in: 0...255, using: &rng)
                    triplets.append(CCTriplet(info: info, data1: hi, data2: UInt8.random(in: 0...255, using: &rng)))
                }
                for event in decoder.decode(RCWTRecord(timestamp: time, triplets: triplets)) { check(event) }
                time = time &+ (Int.random(in: 0...20, using: &rng) == 0 ? Int64.random(in: -10_000...100_000, using: &rng) : 33)
            }
            for event in decoder.finish() { check(event) }
            #expect(decoder.finish().isEmpty) // finishing twice adds nothing
        }
    }

    private func check(_ event: CaptionEvent) {
        switch event {
        case .cue(let c):
            #expect(c.rows.count <= 15)
            #expect(c.lines.count <= 15)
            for line in c.lines { #expect(!line.text.hasSuffix(" ")) }
            var w = SRTWriter()
            _ = w.write(event)
        case .xds(let x):
            #expect(!x.lines.isEmpty)
            var w = TTXTWriter()
            _ = w.write(event)
        }
    }
}
