import Captions
import Foundation
import SupportKit
import Testing

/// Properties of the 708 decoder for any input: it never crashes, its memory stays within the
/// bound its limits set, and the cues do not depend on how the bytes were cut into reads.
@Suite("CEA-708 decoder properties")
struct CEA708PropertyTests {
    typealias B = DTVCCStreamBuilder

    /// Heap a decoder of every service may hold at most under the default limits: twice the cell
    /// budget (windows plus their copies on the screens, row headers included), 16 windows
    /// (96 bytes) with their row tables, 63 services (72 bytes) with a full Delay buffer and
    /// their array headers, and some slack for the decoder's own arrays (about 35 KB).
    static let heapBound = 2 * 672 * 4 + 16 * (96 + 15 * 8 + 64) + 64 * 72 + 63 * (128 + 96) + 1024

    /// A valid stream touching every command, to mutate.
    static let validStream: [UInt8] = {
        var b = B()
        b.block(B.defineWindow(0, visible: true, rows: 3) + B.whitePen + B.text("ROLL UP") + [0x0D])
        b.block(B.defineWindow(4, rows: 2) + B.italicPen + B.text("POP ON") + [0x0D, 0x10, 0x25, 0x18, 0x00, 0xE9])
        b.block(B.windows(0x8B, 0, 4) + [0x97, 0, 0, 0, 0] + B.penLocation(row: 1, column: 3) + [0x08, 0x0E, 0x0C])
        b.block([0x8D, 3] + B.text("LATE") + [0x8E] + B.windows(0x88, 4) + B.windows(0x8A, 4))
        b.block(B.defineWindow(2, visible: true, rows: 2) + B.text("EXT") + [0x10, 0x88, 1, 2, 3, 4, 5, 0x10, 0x90, 0x02, 1, 2])
        b.block(B.windows(0x8C, 0, 4) + [0x8F], service: 1)
        b.block(B.defineWindow(1, visible: true, rows: 1) + B.text("SVC 9"), service: 9)
        return b.binFile
    }()

    static func decodeWhole(_ bytes: [UInt8], services: DTVCCServiceSet) -> (cues: [ServiceCue], maxHeap: Int, truncated: Bool) {
        var d = DTVCCDecoder(services: services)
        var cues: [ServiceCue] = []
        var maxHeap = 0
        var truncated = false
        do throws(RCWTError) {
            try RCWTFileReader(bytes: bytes).forEachRecord { r in
                cues += d.decode(r)
                maxHeap = max(maxHeap, d.estimatedHeapBytes)
            }
        } catch {
            truncated = true
        }
        cues += d.finish()
        return (cues, maxHeap, truncated)
    }

    static func decodeChunked(_ bytes: [UInt8], services: DTVCCServiceSet, rng: inout SplitMix64) throws -> [ServiceCue] {
        var d = DTVCCDecoder(services: services)
        var cues: [ServiceCue] = []
        var assembler = RCWTRecordAssembler(maxTriplets: 0xFFFF)
        var i = RCWTHeader.count
        while i < bytes.count {
            let end = min(bytes.count, i + Int.random(in: 1...97, using: &rng))
            try assembler.append(bytes[i..<end]) { (r: RCWTRecord) throws(RCWTError) in cues += d.decode(r) }
            i = end
        }
        cues += d.finish()
        return cues
    }

    static func check(_ cues: [ServiceCue]) {
        for c in cues {
            #expect((1...63).contains(c.service))
            #expect(c.cue.rows.count <= 75)
            for line in c.cue.lines { #expect(line.text.unicodeScalars.count <= 42 && !line.text.hasSuffix(" ")) }
        }
    }

    @Test("random DTVCC triplets: no crash, bounded memory, well-formed cues", arguments: 0..<12)
    func random(seed: UInt64) throws {
        var rng = SplitMix64(state: seed)
        var records: [RCWTRecord] = []
        var time: Int64 = 0
        for _ in 0..<3000 {
            var triplets: [CCTriplet] = []
            for _ in 0..<Int.random(in: 0...6, using: &rng) {
                let info: UInt8 = [0xFF, 0xFE, 0xFE, 0xFE, 0xFA, 0xFC, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
                // Biased towards service headers, C1 commands and text.
                let pick = { (r: inout SplitMix64) -> UInt8 in
                    [UInt8.random(in: 0x80...0x9F, using: &r), UInt8.random(in: 0...0x3F, using: &r) | 0x20,
                     UInt8.random(in: 0...255, using: &r), UInt8.random(in: 0x20...0x7F, using: &r)].randomElement(using: &r)!
                }
                triplets.append(CCTriplet(info: info, data1: pick(&rng), data2: pick(&rng)))
            }
            records.append(RCWTRecord(timestamp: time, triplets: triplets))
            time = time &+ (Int.random(in: 0...50, using: &rng) == 0 ? Int64.random(in: -5000...90_000, using: &rng) : 33)
        }
        let bytes = RCWTHeader.bytes + records.flatMap(\.bytes)
        let whole = Self.decodeWhole(bytes, services: .all)
        #expect(whole.maxHeap <= Self.heapBound, "seed \(seed)")
        Self.check(whole.cues)
        #expect(try Self.decodeChunked(bytes, services: .all, rng: &rng) == whole.cues, "seed \(seed)")
    }

    @Test("mutated valid streams (and the shared fixtures when present): same properties", arguments: 0..<16)
    func mutated(seed: UInt64) throws {
        var rng = SplitMix64(state: seed)
        var base = Self.validStream
        if seed >= 12, Fixtures.shouldRunSharedTests, let data = try? Fixtures.sharedData("the.tudors.bin") { base = [UInt8](data) }
        var bytes = base
        for _ in 0..<Int.random(in: 1...40, using: &rng) {
            let i = Int.random(in: RCWTHeader.count..<bytes.count, using: &rng)
            bytes[i] = UInt8.random(in: 0...255, using: &rng)
        }
        for services in [DTVCCServiceSet.all, DTVCCServiceSet([1])] {
            let whole = Self.decodeWhole(bytes, services: services)
            #expect(whole.maxHeap <= Self.heapBound, "seed \(seed)")
            Self.check(whole.cues)
            if !whole.truncated {
                #expect(try Self.decodeChunked(bytes, services: services, rng: &rng) == whole.cues, "seed \(seed)")
            }
        }
    }

    @Test("the valid stream decodes to its cues whether records arrive whole or in pieces")
    func validStreamChunking() throws {
        let whole = Self.decodeWhole(Self.validStream, services: .all)
        #expect(!whole.cues.isEmpty)
        var rng = SplitMix64(state: 99)
        #expect(try Self.decodeChunked(Self.validStream, services: .all, rng: &rng) == whole.cues)
    }
}
