import Captions
import SupportKit
import Testing

@Suite("XDS decoding")
struct XDSTests {
    static func name(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test("program name changes are reported in order, with CCExtractor's ttxt lines")
    func programNameChange() {
        var b = StreamBuilder()
        b.xds(class: 0x01, type: 0x03, data: Self.name("First Show"))
        b.idle(10)
        b.xds(class: 0x01, type: 0x03, data: Self.name("Second Show"))
        let names = b.events(DecoderOptions(xds: true)).compactMap { e -> String? in
            if case .xds(let x) = e { return x.programName } else { return nil }
        }
        #expect(names == ["First Show", "Second Show"])
        let ttxt = b.render(.ttxt, xds: true)
        #expect(ttxt.contains("|XDS|Program name: First Show\r\n"))
        #expect(ttxt.contains("|XDS|Program name: Second Show\r\n"))
        #expect(b.render(.srt, xds: true) == "")
    }

    @Test("random program and network names come back as sent, in the content and the ttxt line", arguments: 0..<4)
    func randomNames(seed: UInt64) {
        var rng = SplitMix64(state: seed)
        for _ in 0..<50 {
            let length = 1 + Int(rng.next() % 30)
            let name = (0..<length).map { _ in UInt8(0x20 + rng.next() % 0x5F) }   // printable ASCII
            var b = StreamBuilder()
            b.xds(class: 0x01, type: 0x03, data: name)
            b.xds(class: 0x05, type: 0x01, data: name)
            let text = String(decoding: name, as: UTF8.self)
            let events = b.events(DecoderOptions(xds: true)).compactMap { e -> XDSEvent? in if case .xds(let x) = e { x } else { nil } }
            #expect(events.map(\.content) == [.programName(text), .networkName(text)], "name \(name)")
            #expect(events.flatMap(\.lines) == ["Program name: " + text, "Network: " + text])
        }
    }

    @Test("a packet with a bad checksum is ignored")
    func badChecksum() {
        var b = StreamBuilder()
        b.xds(class: 0x01, type: 0x03, data: Self.name("Broken"), badChecksum: true)
        #expect(b.events(DecoderOptions(xds: true)).isEmpty)
    }

    @Test("network name, length/elapsed, program type and content advisory")
    func otherPackets() {
        var b = StreamBuilder()
        b.xds(class: 0x05, type: 0x01, data: Self.name("cc101"))                 // channel class: network
        b.xds(class: 0x01, type: 0x02, data: [0x40 | 52, 0x40 | 0, 0x40 | 1, 0x40 | 0]) // 00:52, elapsed 00:01
        b.xds(class: 0x01, type: 0x04, data: [0x23, 0x78])                       // News, Talk
        b.xds(class: 0x01, type: 0x05, data: [0x48, 0x46])                       // US TV, TV-MA
        let events = b.events(DecoderOptions(xds: true))
        let lines = events.flatMap { e -> [String] in if case .xds(let x) = e { return x.lines } else { return [] } }
        #expect(lines == [
            "Network: cc101",
            "Program length (HH:MM): 00:52  ", "Elapsed (HH:MM): 00:01",
            "Program type [News] [Talk] ",
            "ContentAdvisory: US TV Parental Guidelines. Age Rating: TV-MA (Mature Audience Only)", "",
        ])
        let contents = events.compactMap { e -> XDSContent? in if case .xds(let x) = e { return x.content } else { return nil } }
        #expect(contents.contains(.networkName("cc101")))
        #expect(contents.contains(.lengthElapsed(lengthMinutes: 52, elapsedMinutes: 1)))
        #expect(contents.contains(.programType(["News", "Talk"])))
    }

    @Test("XDS on field 2 does not disturb CC1 captions")
    func interleaved() {
        var b = StreamBuilder()
        b.resumeCaptionLoading()
        b.pac(row: 15)
        b.text("HI")
        b.xds(class: 0x01, type: 0x03, data: Self.name("Show"))
        b.text(" THERE")
        b.endOfCaption()
        b.idle(3)
        b.eraseDisplayed()
        #expect(b.render(.txt, xds: true) == "HI THERE\r\n")
    }
}
