import Captions
import Foundation
import PropertyBased
import SupportKit
import Testing

/// Property-based tests of the RCWT reader and the 608 decoder (issue 8, fault suite).
///
/// The server decodes bytes from thousands of tuners it does not control, so for ANY input the
/// decoder must not crash, must keep CEA-608's geometry (at most 15 rows of 32 columns), and must
/// not depend on how the bytes were cut into reads. Inputs are random bytes, random triplets
/// biased towards control codes, and valid streams (synthetic, and the shared fixture when
/// present) with random byte mutations. A failure prints the seed to replay it with `.fixedSeed`.
@Suite("Decoder properties")
struct DecoderPropertyTests {
    /// A valid synthetic stream exercising roll-up, pop-on, paint-on, text mode, mid-row codes,
    /// special characters, over-long rows and XDS, so mutations start from every decoder state.
    static let validStream: [UInt8] = {
        var b = SyntheticFixtureTests.programChange()
        b.resumeDirectCaptioning()
        b.pac(row: 3, indent: 8)
        b.text("PAINT ON TEXT THAT IS FAR LONGER THAN THIRTY-TWO COLUMNS")
        b.control(0x11, 0x2E) // mid-row: italics
        b.text("ITALIC")
        b.control(0x11, 0x37) // special character: music note
        b.idle(10)
        b.rollUp(4)
        b.pac(row: 15)
        b.text("ROLL UP FOUR ROWS")
        b.carriageReturn()
        b.control(0x12, 0x25) // extended characters
        b.text("WRAP" + String(repeating: "X", count: 40))
        b.resumeTextDisplay()
        b.text("TEXT MODE")
        b.xds(class: 0x05, type: 0x01, data: Array("NETWORK".utf8))
        b.xds(class: 0x01, type: 0x05, data: [0x48, 0x41])
        b.eraseDisplayed()
        return b.binFile
    }()

    /// The streams mutations start from: the synthetic one, plus the.tudors.bin when the shared
    /// fixtures are there (a real broadcast's 608 and XDS).
    static func baseStreams() -> [[UInt8]] {
        var streams = [validStream]
        if Fixtures.shouldRunSharedTests, let real = try? Fixtures.sharedData("the.tudors.bin") {
            streams.append([UInt8](real))
        }
        return streams
    }

    static let mutations = zip(Gen.int(in: 0...2), Gen.int(in: 0...Int(Int32.max)), Gen.uint8())
        .map { ByteMutation(kind: $0, position: $1, byte: $2) }
        .array(of: 1...24)

    /// Random triplets, mostly 608 data whose first byte looks like a control code.
    static let triplets = zip(Gen.uint8(), Gen.bool, Gen.uint8(), Gen.uint8())
        .map { info, control, d1, d2 in
            CCTriplet(info: info | (info & 0x80 != 0 ? 0xFC : 0), data1: control ? d1 & 0x1F : d1, data2: d2)
        }

    static let records = zip(Gen.int64(in: -5_000...5_000), triplets.array(of: 0...6))
        .map { RCWTRecord(timestamp: $0, triplets: $1) }
        .array(of: 1...400)

    @Test("random records: no crash, every cue fits 15 rows of 32 columns")
    func randomRecords() async {
        await propertyCheck(count: 200, input: Self.records, Gen.int(in: 1...4), Gen.bool) { deltas, channel, parity in
            var decoder = CaptionDecoder(options: DecoderOptions(channel: CaptionChannel(rawValue: channel)!, xds: true, checkParity: parity))
            var time: Int64 = 1_000_000
            var events: [CaptionEvent] = []
            for var record in deltas {
                // The generated timestamp is a step, so clocks go forward, back and jump.
                time &+= record.timestamp
                record.timestamp = time
                events += decoder.decode(record)
            }
            events += decoder.finish()
            for event in events { Self.checkGeometry(event) }
        }
    }

    @Test("random bytes after a valid header: the reader stops cleanly, the decoder holds")
    func randomBytes() async {
        await propertyCheck(count: 300, input: Gen.uint8().array(of: 0...3000)) { tail in
            let bytes = RCWTHeader.bytes + tail
            Self.checkWholeAndChunked(bytes, cuts: [tail.count / 3, tail.count / 2 + 1, 7])
        }
    }

    @Test("mutated valid streams: no crash, rows fit, chunked equals whole")
    func mutatedStreams() async {
        let bases = Self.baseStreams()
        await propertyCheck(count: 120, input: Gen.int(in: 0...(bases.count - 1)), Self.mutations,
                            Gen.int(in: 1...4096).array(of: 1...40)) { which, mutations, cuts in
            var bytes = bases[which]
            for m in mutations { m.apply(&bytes) }
            Self.checkWholeAndChunked(bytes, cuts: cuts)
        }
    }

    @Test("a valid stream cut into any chunks decodes exactly as when whole")
    func chunkedEqualsWhole() async throws {
        let bases = Self.baseStreams()
        await propertyCheck(count: 60, input: Gen.int(in: 0...(bases.count - 1)), Gen.int(in: 1...4096).array(of: 1...200)) { which, cuts in
            let bytes = bases[which]
            let whole = Self.decodeWhole(bytes)
            #expect(whole.error == nil)
            #expect(!whole.events.isEmpty)
            let chunked = Self.decodeChunked(bytes, cuts: cuts)
            #expect(chunked.error == nil)
            #expect(chunked.events == whole.events)
        }
    }

    // MARK: helpers

    struct Decoded {
        var events: [CaptionEvent] = []
        var error: RCWTError?
    }

    /// Decodes a whole file with the offline reader (what `ccr decode` does).
    static func decodeWhole(_ bytes: [UInt8]) -> Decoded {
        var out = Decoded()
        var decoder = CaptionDecoder(options: DecoderOptions(channel: .cc1, xds: true))
        do throws(RCWTError) {
            try RCWTFileReader(bytes: bytes).forEachRecord { record in out.events += decoder.decode(record) }
        } catch {
            out.error = error
        }
        out.events += decoder.finish()
        return out
    }

    /// Decodes the same bytes as a server does: the header, then records re-joined from pieces of
    /// the sizes in `cuts` (cycled), through the assembler.
    static func decodeChunked(_ bytes: [UInt8], cuts: [Int]) -> Decoded {
        var out = Decoded()
        var decoder = CaptionDecoder(options: DecoderOptions(channel: .cc1, xds: true))
        let maxTriplets = 0xFFFF
        var assembler = RCWTRecordAssembler(maxTriplets: maxTriplets)
        do throws(RCWTError) {
            try RCWTHeader.validate(bytes.prefix(RCWTHeader.count))
            var index = min(RCWTHeader.count, bytes.count)
            var k = 0
            while index < bytes.count {
                let end = min(bytes.count, index + max(1, cuts[k % cuts.count]))
                k += 1
                try assembler.append(bytes[index..<end]) { (record: RCWTRecord) throws(RCWTError) in
                    out.events += decoder.decode(record)
                }
                // The partial record kept between reads is bounded by one record.
                #expect(assembler.pendingByteCount <= RCWTRecordAssembler.recordHeaderSize + 3 * maxTriplets)
                index = end
            }
            if bytes.count < RCWTHeader.count { throw RCWTError.truncatedRecord(offset: bytes.count, needed: RCWTHeader.count - bytes.count) }
            if assembler.bytesNeeded > 0 { throw RCWTError.truncatedRecord(offset: bytes.count, needed: assembler.bytesNeeded) }
        } catch {
            out.error = error
        }
        out.events += decoder.finish()
        return out
    }

    /// Decodes `bytes` whole and in chunks: both well formed, and the same events up to the point
    /// where the reader stopped (a truncated last record is reported by both).
    static func checkWholeAndChunked(_ bytes: [UInt8], cuts: [Int]) {
        let whole = decodeWhole(bytes)
        let chunked = decodeChunked(bytes, cuts: cuts)
        for event in whole.events { checkGeometry(event) }
        #expect((whole.error == nil) == (chunked.error == nil), "whole: \(String(describing: whole.error)), chunked: \(String(describing: chunked.error))")
        if case .badHeader = whole.error {} else {
            #expect(chunked.events == whole.events)
        }
        // Writers accept whatever the decoder produced.
        for format in CaptionFormat.allCases {
            var writer = CaptionFile.makeWriter(format, xds: true)
            for event in whole.events { _ = writer.write(event) }
            _ = writer.finish()
        }
    }

    /// CEA-608 geometry: at most 15 rows, each at most 32 visible columns (tags excluded), and
    /// transcript lines no wider than a row.
    static func checkGeometry(_ event: CaptionEvent) {
        switch event {
        case .cue(let cue):
            #expect(cue.rows.count <= 15)
            #expect(cue.lines.count <= 15)
            for row in cue.rows { #expect(Cue.visibleColumns(row) <= 32, "row \(row.debugDescription)") }
            for line in cue.lines { #expect(line.text.count <= 32, "line \(line.text.debugDescription)") }
            #expect(cue.start <= cue.end || cue.start == -1)
        case .xds(let xds):
            #expect(!xds.lines.isEmpty)
        }
    }
}
