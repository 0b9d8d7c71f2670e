import Captions
import Foundation
import SupportKit
import Testing

/// The 708 decoder against CCExtractor 0.94's `--service 1` references, and its commands one by one.
@Suite("CEA-708 decoding")
struct CEA708Tests {
    typealias B = DTVCCStreamBuilder

    static func srt(_ b: DTVCCStreamBuilder, service: Int = 1) throws -> String {
        try CaptionFile.renderServices(bin: b.binFile, services: DTVCCServiceSet([service]), format: .srt)[0].text
    }

    static func cues(_ b: DTVCCStreamBuilder, services: DTVCCServiceSet = DTVCCServiceSet([1]), limits: DTVCCLimits = .init(),
                     compatible: Bool = true) -> (cues: [ServiceCue], decoder: DTVCCDecoder) {
        var d = DTVCCDecoder(services: services, limits: limits, ccextractorCompatible: compatible)
        var out: [ServiceCue] = []
        for r in b.records { out += d.decode(r) }
        out += d.finish()
        return (out, d)
    }

    /// When a packet of `bytes` sent at `at` acts: its record's time plus a frame per earlier 708 triplet.
    static func acts(_ at: Int64, _ bytes: [UInt8], service: Int = 1) -> Int64 {
        at + Int64(B.packet(service: service, bytes).count - 1) * 1001 / 30
    }

    @Test("the.tudors.bin and 89.bin, service 1: byte for byte CCExtractor's srt",
          .enabled(if: Fixtures.shouldRunSharedTests, "shared fixtures needed"),
          arguments: ["the.tudors", "89"])
    func fixture(name: String) throws {
        let bytes = [UInt8](try Fixtures.sharedData("\(name).bin"))
        let ours = try CaptionFile.renderServices(bin: bytes, services: DTVCCServiceSet([1]), format: .srt)[0].text
        let reference = String(decoding: try Fixtures.sharedData("\(name).svc1.srt"), as: UTF8.self)
        let (a, b) = (SRTCue.parse(ours), SRTCue.parse(reference))
        #expect(b.count == (name == "89" ? 1063 : 22))
        #expect(a.count == b.count)
        #expect(zip(a, b).filter { $0 != $1 }.count == 0)
        #expect(ours == reference)
    }

    @Test("pop-on: a hidden window filled, displayed, then deleted makes one cue from display to delete")
    func popOn() throws {
        var b = B()
        b.block(B.defineWindow(0, rows: 2))
        b.block(B.penLocation(row: 1, column: 2) + B.whitePen + B.text("HELLO"))
        let display = b.block(B.windows(0x89, 0))
        let delete = b.block(B.windows(0x8C, 0))
        let show = Self.acts(display, B.windows(0x89, 0)), hide = Self.acts(delete, B.windows(0x8C, 0))
        #expect(try Self.srt(b) == "1\r\n\(CaptionTime.format(show)) --> \(CaptionTime.format(hide))\r\n  <font color=\"#aaaaaa\">HELLO</font>\r\n\r\n")
        let cue = try #require(Self.cues(b).cues.first)
        #expect(cue.cue.lines.map(\.text) == ["  HELLO"])
        #expect(cue.cue.end == hide + 1)
    }

    @Test("roll-up: each carriage return that scrolls a visible window writes the screen and starts the next")
    func rollUp() throws {
        var b = B()
        let defineBytes = B.defineWindow(0, visible: true, rows: 2) + B.penLocation(row: 1, column: 0)
        let t0 = Self.acts(b.block(defineBytes), defineBytes)
        b.idle(10)
        b.block(B.text("ONE"))
        b.idle(10)
        let t1 = Self.acts(b.block([0x0D]), [0x0D])
        b.block(B.text("TWO"))
        b.idle(10)
        let t2 = Self.acts(b.block([0x0D]), [0x0D])
        let cues = Self.cues(b).cues.map(\.cue)
        // The last screen ("TWO" after the scroll) is written at the end of the stream.
        #expect(cues.map(\.rows) == [["ONE"], ["ONE", "TWO"], ["TWO"]])
        #expect(cues.prefix(2).map(\.start) == [t0, t1 + 1])
        #expect(cues.prefix(2).map(\.end) == [t1 + 1, t2 + 1])
        #expect(cues.last?.start == t2 + 1)
    }

    @Test("italics and colors: tags as CCExtractor writes them; a cleared window's pen has no color")
    func tags() {
        var b = B()
        b.block(B.defineWindow(0, visible: true, rows: 1))
        b.block(B.whitePen + B.text(" ") + B.italicPen + B.text("IT"))
        b.block(B.windows(0x88, 0) + B.text("PLAIN"))
        b.block(B.windows(0x8C, 0))
        let rows = Self.cues(b).cues.map(\.cue.rows)
        #expect(rows == [["<font color=\"#aaaaaa\"> <i>IT</font></i>"], ["   PLAIN"]])
    }

    @Test("characters: G0 music note, G1 Latin-1, G2 and P16; text past the last column overwrites it")
    func characters() {
        var b = B()
        b.block(B.defineWindow(0, visible: true, rows: 1, columns: 12))
        b.block([0x7F, 0xE9, 0x10, 0x25, 0x10, 0x32, 0x18, 0x01, 0x60] + B.text("ABCDEFGHIJ"))
        b.block(B.windows(0x8C, 0))
        #expect(Self.cues(b).cues.first?.cue.rows == ["&lé…’ŠABCDEFJ"])
        #expect(Self.cues(b, compatible: false).cues.first?.cue.rows == ["♪é…’ŠABCDEFJ"])
    }

    @Test("P16 characters, random: each row is the scalars written as UTF-8, `_` where not a printable scalar",
          arguments: 0..<4)
    func randomP16(seed: UInt64) {
        var rng = SplitMix64(state: seed)
        for _ in 0..<200 {
            var codes: [UInt16] = []
            for _ in 0..<8 {
                // Half anywhere in the 16 bits, half near the edges that change the UTF-8 length or are refused.
                let edges: [UInt16] = [0x1F, 0x20, 0x7E, 0x7F, 0x9F, 0xA0, 0x7FF, 0x800, 0xD7FF, 0xD800, 0xDFFF, 0xE000, 0xFFFD, 0xFFFE, 0xFFFF]
                codes.append(rng.next() % 2 == 0 ? UInt16(truncatingIfNeeded: rng.next()) : edges[Int(rng.next() % UInt64(edges.count))])
            }
            var b = B()
            b.block(B.defineWindow(0, visible: true, rows: 1, columns: 12))
            b.block(codes.flatMap { [0x18, UInt8($0 >> 8), UInt8($0 & 0xFF)] }) // P16: 0x18, then the two bytes
            b.block(B.windows(0x8C, 0))
            var expected = ""
            for v in codes {
                let printable = !(v < 0x20 || (v >= 0x7F && v < 0xA0) || v == 0xFFFE || v == 0xFFFF)
                expected.unicodeScalars.append(printable ? Unicode.Scalar(v) ?? "_" : "_")
            }
            let cue = Self.cues(b, compatible: false).cues.first?.cue
            #expect(cue?.rows == [expected], "codes \(codes.map { String($0, radix: 16) })")
            #expect(cue?.lines.map(\.text) == [expected.hasSuffix(" ") ? String(expected.reversed().drop { $0 == " " }.reversed()) : expected])
        }
    }

    @Test("Delay holds a service's commands until its time or a DelayCancel; Reset deletes every window")
    func delayAndReset() {
        var b = B()
        b.block(B.defineWindow(0, visible: true, rows: 1) + B.text("WAIT"))
        b.block([0x8D, 10] + B.windows(0x8C, 0)) // delete, held for 1 s
        b.idle(40)
        let release = Self.acts(b.block([0x03]), [0x03]) // the next block: the delay has expired
        b.block(B.defineWindow(1, visible: true, rows: 1) + B.text("AGAIN"))
        b.block([0x8D, 100, 0x8F])                 // reset, held for 10 s
        let cancel = b.block([0x8E])
        let cues = Self.cues(b).cues.map(\.cue)
        #expect(cues.map(\.rows) == [["WAIT"], ["AGAIN"]])
        #expect(cues.map(\.end) == [release + 1, Self.acts(cancel, [0x8E]) + 1])
    }

    @Test("extended service numbers (7...63) and service selection")
    func services() {
        var b = B()
        b.block(B.defineWindow(0, visible: true, rows: 1) + B.text("SEVEN"), service: 7)
        b.block(B.defineWindow(0, visible: true, rows: 1) + B.text("SIXTY"), service: 60)
        b.block(B.defineWindow(0, visible: true, rows: 1) + B.text("ONE"), service: 1)
        let all = Self.cues(b, services: .all).cues
        #expect(Set(all.map(\.service)) == [1, 7, 60])
        #expect(Self.cues(b, services: DTVCCServiceSet([60])).cues.map(\.cue.rows) == [["SIXTY"]])
    }

    @Test("a packet cut short by the next start is dropped, and the next one decoded")
    func incompletePacket() {
        var b = B()
        var cut = B.packet(service: 1, B.defineWindow(0, visible: true, rows: 1))
        cut.removeLast()
        var records = [RCWTRecord(timestamp: 0, triplets: cut)]
        b.block(B.defineWindow(0, visible: true, rows: 1) + B.text("OK"))
        records += b.records
        var d = DTVCCDecoder(services: DTVCCServiceSet([1]))
        var cues: [ServiceCue] = []
        for r in records { cues += d.decode(r) }
        cues += d.finish()
        #expect(d.droppedPackets == 1)
        #expect(cues.map(\.cue.rows) == [["OK"]])
    }

    @Test("limits: windows past the window budget are not made, symbols past the cell budget are dropped")
    func limits() {
        var b = B()
        for id in 0..<3 { b.block(B.defineWindow(id, visible: true, anchorVertical: UInt8(10 * id), rows: 1, columns: 10) + B.text("W\(id)")) }
        // A 10-column row costs 18 units (10 cells and its header): the second does not fit in 20.
        let result = Self.cues(b, limits: DTVCCLimits(maximumCells: 20, maximumWindows: 2))
        #expect(result.cues.map(\.cue.rows) == [["W0"]])
        #expect(result.decoder.droppedSymbols > 0)
    }

    @Test("memory: an idle decoder holds no heap storage; a busy one stays within a few KB")
    func memoryFootprint() throws {
        let idle = DTVCCDecoder(services: .all)
        #expect(idle.estimatedHeapBytes == 0)
        #expect(MemoryLayout<DTVCCDecoder>.size <= 160)
        var b = B()
        b.block(B.defineWindow(0, rows: 4) + B.text(String(repeating: "X", count: 32)))
        b.block(B.defineWindow(4, visible: true, rows: 4) + B.text(String(repeating: "Y", count: 32)))
        var d = DTVCCDecoder(services: DTVCCServiceSet([1]))
        for r in b.records { _ = d.decode(r) }
        #expect(d.estimatedHeapBytes > 0)
        #expect(d.estimatedHeapBytes <= 2048)
    }
}
