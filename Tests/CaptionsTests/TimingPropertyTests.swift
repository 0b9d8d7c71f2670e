import Captions
import Foundation
import PropertyBased
import SupportKit
import Testing

/// Caption times follow every record's own timestamp, as CCExtractor's do for RCWT input (issue
/// 15): a gap of any length (an ad break, a tuner that lost its signal) moves what follows it by
/// exactly the gap, and nothing else changes. Random gap patterns are inserted into the shared
/// recordings; each cue must keep its text, and each time must be its time without gaps plus
/// the shift of the last record at or before that time.
@Suite("Caption timing properties")
struct TimingPropertyTests {
    /// The records of a shared recording, parsed once.
    static func records(_ name: String) throws -> [RCWTRecord] {
        var out: [RCWTRecord] = []
        try RCWTFileReader(bytes: [UInt8](try Fixtures.sharedData(name))).forEachRecord { out.append($0) }
        return out
    }

    static let tudors = Result { try records("the.tudors.bin") }
    static let eightyNine = Result { try records("89.bin") }

    /// Forward gaps: from record `index` on, every timestamp moves by `shift` ms (0.1 s to 1 h).
    static func gaps(recordCount: Int) -> Generator<[(index: Int, shift: Int64)], some SendableSequenceType> {
        zip(Gen.int(in: 1...(recordCount - 1)), Gen.int64(in: 100...3_600_000))
            .map { (index: $0, shift: $1) }
            .array(of: 1...12)
    }

    @Test("random forward gaps in the.tudors.bin: same texts, each time moved by the shift of its record",
          .enabled(if: Fixtures.shouldRunSharedTests, "shared fixtures needed"))
    func tudorsGaps() async throws {
        let records = try Self.tudors.get()
        await propertyCheck(count: 40, input: Self.gaps(recordCount: records.count)) { gaps in
            Self.check(records, gaps: gaps)
        }
    }

    @Test("random forward gaps in 89.bin (roll-up, 50 minutes, XDS): same texts, each time moved by the shift of its record",
          .enabled(if: Fixtures.shouldRunSharedTests, "shared fixtures needed"))
    func eightyNineGaps() async throws {
        let records = try Self.eightyNine.get()
        await propertyCheck(count: 6, input: Self.gaps(recordCount: records.count)) { gaps in
            Self.check(records, gaps: gaps)
        }
    }

    /// Decodes `records` as they are and with `gaps` inserted, and compares event by event.
    static func check(_ records: [RCWTRecord], gaps: [(index: Int, shift: Int64)]) {
        var shiftFrom = [Int64](repeating: 0, count: records.count)
        for gap in gaps { shiftFrom[gap.index] += gap.shift }
        var shifted = records
        var total: Int64 = 0
        for i in records.indices {
            total += shiftFrom[i]
            shifted[i].timestamp += total
        }
        let cumulative = shifted.indices.map { shifted[$0].timestamp - records[$0].timestamp }
        let stamps = records.map(\.timestamp)
        /// The shift of the last record whose original timestamp is at or before `ms`.
        func shift(at ms: Int64) -> Int64 {
            var lo = 0, hi = stamps.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if stamps[mid] <= ms { lo = mid + 1 } else { hi = mid }
            }
            return lo == 0 ? 0 : cumulative[lo - 1]
        }
        let plain = decode(records), moved = decode(shifted)
        #expect(plain.count == moved.count)
        var wrong: [String] = []
        for (a, b) in zip(plain, moved) {
            switch (a, b) {
            case (.cue(let x), .cue(let y)):
                if x.rows != y.rows || x.lines.map(\.text) != y.lines.map(\.text) {
                    wrong.append("text of \(x.rows) / \(x.lines.map(\.text)) became \(y.rows) / \(y.lines.map(\.text))")
                }
                if y.start != x.start + shift(at: x.start) || y.end != x.end + shift(at: x.end) {
                    wrong.append("\(x.start)-\(x.end) -> \(y.start)-\(y.end), expected \(x.start + shift(at: x.start))-\(x.end + shift(at: x.end))")
                }
                for (l, m) in zip(x.lines, y.lines) where m.start != l.start + shift(at: l.start) || m.end != l.end + shift(at: l.end) {
                    wrong.append("line \(l.text): \(l.start)-\(l.end) -> \(m.start)-\(m.end)")
                }
            case (.xds(let x), .xds(let y)):
                if x.lines != y.lines || y.start != x.start + shift(at: x.start) || y.end != x.end + shift(at: x.end) {
                    wrong.append("XDS \(x.lines) \(x.start)-\(x.end) -> \(y.lines) \(y.start)-\(y.end)")
                }
            default:
                wrong.append("event kinds differ: \(a) / \(b)")
            }
        }
        #expect(wrong.isEmpty, "gaps \(gaps): \(wrong.prefix(5))")
    }

    static func decode(_ records: [RCWTRecord]) -> [CaptionEvent] {
        var decoder = CaptionDecoder(options: DecoderOptions(channel: .cc1, xds: true))
        var events: [CaptionEvent] = []
        for record in records { decoder.decode(record) { events.append($0) } }
        decoder.finish { events.append($0) }
        return events
    }
}

/// Timestamps come from tuners and are never trusted (issue 15): extreme values, a clock that
/// stands still and one that runs backwards must neither trap nor hold captions back.
@Suite("Hostile timestamps")
struct HostileTimestampTests {
    /// A roll-up program: `rows` rows, each typed and ended by a carriage return.
    static func rollUp(rows: Int) -> [RCWTRecord] {
        var b = StreamBuilder(start: 1_000)
        b.rollUp(2)
        b.pac(row: 15)
        for i in 0..<rows {
            b.text("ROW \(i)")
            b.carriageReturn()
        }
        return b.records
    }

    @Test("Int64.max, Int64.min, Int64.min+1 and other extremes: every time within StreamTime.range, every writer works",
          arguments: [[Int64.max, Int64.min, Int64.min + 1], [Int64.min, Int64.max], [-1, 0, Int64.max - 1], [1 << 62, -(1 << 62), 1 << 51]])
    func extremes(stamps: [Int64]) {
        var records = Self.rollUp(rows: 40)
        for i in records.indices { records[i].timestamp = stamps[i % stamps.count] }
        var decoder = CaptionDecoder(options: DecoderOptions(xds: true))
        var events: [CaptionEvent] = []
        for r in records { decoder.decode(r) { events.append($0) } }
        decoder.finish { events.append($0) }
        #expect(!events.isEmpty)
        for event in events {
            guard case .cue(let cue) = event else { continue }
            #expect(StreamTime.range.contains(cue.start) && StreamTime.range.contains(cue.end), "\(cue.start)-\(cue.end)")
            for line in cue.lines { #expect(StreamTime.range.contains(line.start) && StreamTime.range.contains(line.end)) }
            #expect(cue.start <= cue.end)
        }
        for format in CaptionFormat.allCases {
            var writer = CaptionFile.makeWriter(format, xds: true)
            for event in events { _ = writer.write(event) }
        }
    }

    @Test("a clock that stands still: captions come out while the stream goes on, at most maximumHeld wait",
          arguments: [0, 5_000, Int64.max])
    func frozenClock(at stamp: Int64) {
        var records = Self.rollUp(rows: 200)
        for i in records.indices { records[i].timestamp = stamp }
        var decoder = CaptionDecoder()
        var rowsOut = 0, recordsFed = 0, lastOutputAt = 0
        for r in records {
            recordsFed += 1
            decoder.decode(r) { event in
                if case .cue(let c) = event { rowsOut += c.lines.count; lastOutputAt = recordsFed }
            }
        }
        // Each row is ~6 records (text pairs and a doubled CR): without the bound nothing would
        // come out before finish(); with it, output lags by at most maximumHeld rows.
        #expect(rowsOut >= 200 - CaptionDecoder.maximumHeld - 2)
        #expect(records.count - lastOutputAt <= 6 * (CaptionDecoder.maximumHeld + 2))
        #expect(decoder.heldReleasedEarly > 0)
    }

    @Test("a clock that runs backwards by a frame each record: no trap, output keeps coming")
    func backwardsClock() {
        var records = Self.rollUp(rows: 200)
        for i in records.indices { records[i].timestamp = 10_000_000 - Int64(i) * 33 }
        var decoder = CaptionDecoder()
        var rowsOut = 0
        for r in records { decoder.decode(r) { if case .cue(let c) = $0 { rowsOut += c.lines.count } } }
        #expect(rowsOut >= 200 - CaptionDecoder.maximumHeld - 2)
    }
}
