import Captions
import Testing

/// CEA-608 behaviour on synthetic byte pairs, checked against what CCExtractor writes.
@Suite("CEA-608 decoding")
struct CEA608Tests {
    @Test("pop-on: shown from EOC to EDM, rows untrimmed in srt, trimmed in txt, doubled codes act once")
    func popOn() {
        var b = StreamBuilder()
        b.resumeCaptionLoading()
        b.pac(row: 15, indent: 4)
        b.text("HELLO")
        // CCExtractor starts a screen 1 ms after the previous one ended (here: the EOC itself).
        let shown = b.endOfCaption() + 1
        b.idle(30)
        let cleared = b.eraseDisplayed()
        let srt = b.render(.srt)
        #expect(srt == "1\r\n\(CaptionTime.format(shown)) --> \(CaptionTime.format(cleared - 1))\r\n" + row32("    HELLO") + "\r\n\r\n")
        #expect(b.render(.txt) == "    HELLO\r\n")
        #expect(b.render(.ttxt) == "\(CaptionTime.format(shown))|\(CaptionTime.format(cleared))|POP|    HELLO\r\n")
    }

    @Test("roll-up 2: a screen is written when a row scrolls off; each row once in txt")
    func rollUp2() {
        var b = StreamBuilder()
        b.rollUp(2)
        b.pac(row: 15)
        let firstChar = b.time
        b.text("ONE")
        let cr1 = b.carriageReturn()
        b.text("TWO")
        let cr2 = b.carriageReturn()
        b.text("THREE")
        let cr3 = b.carriageReturn()
        let srt = b.render(.srt)
        // CR 1 scrolls nothing off; CR 2 shows ONE/TWO, CR 3 TWO/THREE, end of stream THREE.
        let cues = srt.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
        #expect(cues.count == 3)
        #expect(cues[0] == "1\r\n\(CaptionTime.format(firstChar)) --> \(CaptionTime.format(cr2 - 1))\r\n\(row32("ONE"))\r\n\(row32("TWO"))")
        #expect(cues[1] == "2\r\n\(CaptionTime.format(cr2 + 1)) --> \(CaptionTime.format(cr3 - 1))\r\n\(row32("TWO"))\r\n\(row32("THREE"))")
        #expect(cues[2].hasSuffix("\r\n\(row32("THREE"))"))
        #expect(b.render(.txt) == "ONE\r\nTWO\r\nTHREE\r\n")
        let ttxt = b.render(.ttxt)
        #expect(ttxt.hasPrefix("\(CaptionTime.format(firstChar))|\(CaptionTime.format(cr1))|RU2|ONE\r\n"))
    }

    @Test("roll-up 3 and 4 keep 3 and 4 rows on screen", arguments: [3, 4])
    func rollUpDepth(rows: Int) {
        var b = StreamBuilder()
        b.rollUp(rows)
        b.pac(row: 15)
        for i in 1...(rows + 2) {
            b.text("LINE \(i)")
            b.carriageReturn()
        }
        let srt = b.render(.srt)
        let cues = srt.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
        // The first screen appears once `rows` rows are up and one more CR comes.
        let first = cues[0].components(separatedBy: "\r\n")
        #expect(first.count == 2 + rows)
        #expect(Array(first.dropFirst(2)) == (1...rows).map { row32("LINE \($0)") })
        let mode = rows == 3 ? "RU3" : "RU4"
        #expect(b.render(.ttxt).components(separatedBy: "\r\n").filter { !$0.isEmpty }.allSatisfy { $0.contains("|\(mode)|") })
        #expect(b.render(.txt) == (1...(rows + 2)).map { "LINE \($0)\r\n" }.joined())
    }

    @Test("paint-on: characters show as they arrive; mode PAI")
    func paintOn() {
        var b = StreamBuilder()
        b.resumeDirectCaptioning()
        b.pac(row: 14)
        let first = b.time
        b.text("PAINTED")
        b.idle(10)
        let cleared = b.eraseDisplayed()
        #expect(b.render(.ttxt) == "\(CaptionTime.format(first))|\(CaptionTime.format(cleared))|PAI|PAINTED\r\n")
        #expect(b.render(.srt).contains(row32("PAINTED")))
    }

    @Test("text mode data is not caption text (CCExtractor drops it)")
    func textMode() {
        var b = StreamBuilder()
        b.resumeTextDisplay()
        b.text("TEXT SERVICE")
        b.carriageReturn()
        b.resumeCaptionLoading()
        b.pac(row: 15)
        b.text("CAPTION")
        b.endOfCaption()
        b.idle(5)
        b.eraseDisplayed()
        #expect(b.render(.txt) == "CAPTION\r\n")
    }

    @Test("special and extended characters, and the basic-set substitutions")
    func characters() {
        var b = StreamBuilder()
        b.resumeCaptionLoading()
        b.pac(row: 15)
        b.control(0x11, 0x37)          // ♪
        b.text(" ")
        b.control(0x11, 0x30)          // ®
        b.text("E")
        b.control(0x12, 0x21)          // É replaces the E just sent
        b.text("A")
        b.control(0x13, 0x30)          // Ä replaces the A
        b.text("*")                    // 0x2A is á in CEA-608
        b.control(0x12, 0x25)          // ü replaces the á
        b.text("~")                    // 0x7E is ñ
        b.endOfCaption()
        b.idle(5)
        b.eraseDisplayed()
        #expect(b.render(.txt) == "♪ ®ÉÄüñ\r\n")
        #expect(b.render(.srt).contains("♪ ®ÉÄüñ" + String(repeating: " ", count: 25) + "\r\n"))
    }

    @Test("mid-row codes: italics and colors as CCExtractor tags them")
    func midRow() {
        var b = StreamBuilder()
        b.resumeCaptionLoading()
        b.pac(row: 15)
        b.text("A")
        b.control(0x11, 0x2E)          // italics (shows as a space)
        b.text("B")
        b.control(0x11, 0x20)          // white, plain
        b.text("C")
        b.control(0x11, 0x22)          // green
        b.text("D")
        b.control(0x11, 0x20)
        b.text("E")
        b.endOfCaption()
        b.idle(5)
        b.eraseDisplayed()
        let expected = "A<i> B</i> C<font color=\"#00ff00\"> D</font> E" + String(repeating: " ", count: 23)
        #expect(b.render(.srt).contains("\r\n" + expected + "\r\n"))
        #expect(b.render(.txt) == "A B C D E\r\n")
    }

    @Test("PAC italics rows are wrapped in <i>...</i> up to the end of the row")
    func pacItalics() {
        var b = StreamBuilder()
        b.resumeCaptionLoading()
        b.control(0x14, 0x6E)          // row 15, white italics
        b.text("SLANTED")
        b.endOfCaption()
        b.idle(5)
        b.eraseDisplayed()
        // Blank cells after the text are plain, so the tag closes after the text.
        #expect(b.render(.srt).contains("\r\n<i>SLANTED</i>" + String(repeating: " ", count: 25) + "\r\n"))
    }

    @Test("channel selection: CC1 by default, CC2 when asked")
    func channels() {
        var b = StreamBuilder()
        b.resumeCaptionLoading()
        b.pac(row: 15)
        b.text("FIRST CHANNEL")
        b.endOfCaption()
        b.resumeCaptionLoading(ch2: true)
        b.pac(row: 15, ch2: true)
        b.text("SECOND CHANNEL")
        b.endOfCaption(ch2: true)
        b.idle(5)
        b.eraseDisplayed()
        b.eraseDisplayed(ch2: true)
        #expect(b.render(.txt) == "FIRST CHANNEL\r\n")
        #expect(b.render(.txt, channel: .cc2) == "SECOND CHANNEL\r\n")
    }

    @Test("CC3 on field 2 is decoded when selected, ignored for CC1")
    func field2Channel() {
        var b = StreamBuilder()
        b.resumeCaptionLoading(field: 2)
        b.pac(row: 15, field: 2)
        b.text("FIELD TWO", field: 2)
        b.endOfCaption(field: 2)
        b.idle(5)
        b.eraseDisplayed(field: 2)
        #expect(b.render(.txt, channel: .cc3) == "FIELD TWO\r\n")
        #expect(b.render(.txt) == "")
    }

    @Test("a control code repeated after other data acts again (only the immediate repeat is dropped)")
    func doubling() {
        var b = StreamBuilder()
        b.resumeCaptionLoading()
        b.pac(row: 15)
        b.text("X")
        b.pair(0x14, 0x2F)             // EOC once: shows X
        b.pair(0x01, 0x02)             // other (non-caption) data in between
        b.pair(0x14, 0x2F)             // EOC again: swaps back (empty memory shown)
        b.idle(3)
        b.eraseDisplayed()
        // Two EOCs: X was shown, then replaced; one cue only (the empty screen writes nothing).
        let srt = b.render(.srt)
        #expect(srt.components(separatedBy: " --> ").count == 2)
    }

    @Test("parity: with checking on, a pair whose second byte fails parity is dropped")
    func parity() {
        var b = StreamBuilder()
        b.resumeCaptionLoading()
        b.pac(row: 15)
        b.text("AB")
        b.pair(0x43, 0x44, rawParity: true) // 'C' 0x43 has odd parity, 'D' 0x44 has even: bad
        b.endOfCaption()
        b.idle(3)
        b.eraseDisplayed()
        #expect(b.render(.txt) == "ABCD\r\n") // CCExtractor on .bin input ignores parity
        var d = CaptionDecoder(options: DecoderOptions(checkParity: true))
        var lines: [String] = []
        for r in b.records { for case .cue(let c) in d.decode(r) { lines += c.lines.map(\.text) } }
        for case .cue(let c) in d.finish() { lines += c.lines.map(\.text) }
        #expect(lines == ["AB"])
    }

    @Test("end of stream: the displayed caption ends one frame + 1/3 s per pair after the last record")
    func finishTiming() {
        var b = StreamBuilder()
        b.resumeCaptionLoading()
        b.pac(row: 15)
        b.text("LAST")
        let shown = b.endOfCaption() + 1
        let lastRecord = b.time - b.frame
        let events = b.events()
        let cues = events.compactMap { e -> Cue? in if case .cue(let c) = e, !c.rows.isEmpty { return c } else { return nil } }
        #expect(cues.count == 1)
        #expect(cues.first?.start == shown)
        #expect(cues.first?.end == lastRecord + 33 + 333)
    }
}
