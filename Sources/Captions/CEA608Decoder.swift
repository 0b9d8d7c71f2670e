/// The CEA-608 caption state machine for one channel (CC1...CC4), made to reproduce
/// CCExtractor 0.94's output (`-out=srt` and `-out=txt/ttxt`) byte for byte.
///
/// CCExtractor's decoder behaves slightly differently depending on the output format: for srt
/// it writes whole screens, for txt/ttxt ("transcript") it writes roll-up rows one at a time, and
/// the timing bookkeeping (`minimum_fts`, the start of the current line) drifts apart between
/// the two. Both are produced from one pass here: the screen state is shared and the timing
/// state is kept per output view (`Views.screen` for srt, `Views.transcript` for txt/ttxt).
struct CEA608Decoder: Sendable {
    enum Mode: UInt8 { case popOn, rollUp2, rollUp3, rollUp4, paintOn, text }

    /// Timing state that differs between CCExtractor's srt and transcript runs.
    struct ViewTiming: Sendable {
        /// No screen may start at or before this time (end of the previous screen).
        var minimumFTS: Int64 = 0
        var visibleStart: Int64 = 0
        /// When the first character of the current row arrived (-1: unknown).
        var lineStart: Int64 = -1
        /// Set when roll-up starts after pop-on/paint-on; changes how the next start is taken.
        var rollupFromPopOn = false

        @inline(__always) mutating func visibleStartTime(_ fts: Int64) -> Int64 {
            fts <= minimumFTS ? minimumFTS &+ 1 : fts
        }
        /// The end of the screen being written, remembered as the minimum for the next start
        /// even when it is earlier than the last one (after a clock that went back, the next
        /// screen follows this one, as in CCExtractor's output).
        @inline(__always) mutating func visibleEndTime(_ fts: Int64) -> Int64 {
            minimumFTS = fts
            return fts
        }
    }

    /// What the decoder writes: a screen for one view, with its start and end times.
    enum Output {
        /// srt view: the displayed screen (rows rendered for srt).
        case screen(start: Int64, end: Int64, mode: CaptionMode, rows: [String])
        /// transcript view: rows as plain lines (all sharing the times).
        case lines(start: Int64, end: Int64, mode: CaptionMode, texts: [String])
    }

    let myChannel: Int  // 1 or 2 within the field
    let myField: Int    // 1 or 2

    private var buffer1 = Screen608()
    private var buffer2 = Screen608()
    private var visibleIsFirst = true
    private var mode: Mode = .popOn
    private var cursorRow = 0
    private var cursorColumn = 0
    private var color = Color608.white
    private var font = Font608.regular
    private var haveCursorPosition = false
    /// The channel the last control code selected (1 or 2; 3 while XDS interrupts field 2).
    var channel = 1
    var newChannel = 1
    /// The previous control pair, to drop its transmitted duplicate.
    private var lastC1: Int = 0
    private var lastC2: Int = 0
    var views = (screen: ViewTiming(), transcript: ViewTiming())

    init(channel: Int, field: Int) {
        myChannel = channel
        myField = field
    }

    var captionMode: CaptionMode {
        switch mode {
        case .popOn: return .popOn
        case .rollUp2: return .rollUp2
        case .rollUp3: return .rollUp3
        case .rollUp4: return .rollUp4
        case .paintOn: return .paintOn
        case .text: return .text
        }
    }

    // MARK: buffers

    private var visible: Screen608 {
        get { visibleIsFirst ? buffer1 : buffer2 }
    }
    private mutating func withVisible<R>(_ body: (inout Screen608) -> R) -> R {
        visibleIsFirst ? body(&buffer1) : body(&buffer2)
    }
    private mutating func withNonVisible<R>(_ body: (inout Screen608) -> R) -> R {
        visibleIsFirst ? body(&buffer2) : body(&buffer1)
    }
    /// Pop-on writes to the hidden memory, every other mode to the displayed one.
    private mutating func withWriting<R>(_ body: (inout Screen608) -> R) -> R {
        mode == .popOn ? withNonVisible(body) : withVisible(body)
    }

    // MARK: pairs

    /// Handles one control pair (hi in 0x10...0x1F, parity stripped). Returns nothing; writes go to `out`.
    mutating func controlPair(_ hiIn: UInt8, _ lo: UInt8, fts: Int64, out: inout [Output]) {
        if lastC1 == Int(hiIn) && lastC2 == Int(lo) {
            // The transmitted repeat of a control code: ignore it once.
            lastC1 = -1; lastC2 = -1
            return
        }
        lastC1 = Int(hiIn); lastC2 = Int(lo)
        // Channel selection from the first byte (0x1F keeps the current one).
        if hiIn >= 0x10 && hiIn <= 0x17 { newChannel = 1 } else if hiIn >= 0x18 && hiIn <= 0x1E { newChannel = 2 } else { newChannel = channel }
        let hi = hiIn >= 0x18 ? hiIn - 8 : hiIn
        switch hi {
        case 0x10:
            if lo >= 0x40 && lo <= 0x5F { preambleAddress(hi, lo) }
        case 0x11:
            if lo >= 0x20 && lo <= 0x2F { midRow(hi, lo, fts: fts) }
            if lo >= 0x30 && lo <= 0x3F { specialCharacter(lo, fts: fts) }
            if lo >= 0x40 && lo <= 0x7F { preambleAddress(hi, lo) }
        case 0x12, 0x13:
            if lo >= 0x20 && lo <= 0x3F { extendedCharacter(hi, lo, fts: fts) }
            if lo >= 0x40 && lo <= 0x7F { preambleAddress(hi, lo) }
        case 0x14, 0x15:
            if lo >= 0x20 && lo <= 0x2F { command(hi, lo, fts: fts, out: &out) }
            if lo >= 0x40 && lo <= 0x7F { preambleAddress(hi, lo) }
        case 0x16:
            if lo >= 0x40 && lo <= 0x7F { preambleAddress(hi, lo) }
        case 0x17:
            if lo >= 0x21 && lo <= 0x23 { command(hi, lo, fts: fts, out: &out) }
            if lo >= 0x2E && lo <= 0x2F { channel = newChannel } // not a mid-row code for 0x17
            if lo >= 0x40 && lo <= 0x7F { preambleAddress(hi, lo) }
        default:
            break
        }
    }

    /// A non-control pair: two basic characters (or XDS/other data that only resets the repeat check).
    mutating func characterPair(_ hi: UInt8, _ lo: UInt8, fts: Int64) {
        lastC1 = -1; lastC2 = -1
        guard hi >= 0x20 else { return }
        guard channel == myChannel else { return }
        if hi >= 0x20 { writeChar(hi, fts: fts) }
        if lo >= 0x20 { writeChar(lo, fts: fts) }
        lastC1 = 0; lastC2 = 0
    }

    // MARK: characters

    private mutating func writeChar(_ c: UInt8, fts: Int64) {
        if mode == .text { return } // Text mode carries non-program data; CCExtractor drops it.
        guard cursorRow < Screen608.rows, cursorColumn < Screen608.columns else { return }
        let v = UInt16(c) | UInt16(color.rawValue | font << 4) << 8
        let r = cursorRow, col = cursorColumn
        let isPopOn = mode == .popOn
        let wasEmpty = withWriting { s -> Bool in
            s.setCell(r, col, v)
            s.setRowUsed(r, true)
            let e = s.isEmpty
            s.isEmpty = false
            return e
        }
        if wasEmpty && !isPopOn {
            if !views.screen.rollupFromPopOn { views.screen.visibleStart = views.screen.visibleStartTime(fts) }
            if !views.transcript.rollupFromPopOn { views.transcript.visibleStart = views.transcript.visibleStartTime(fts) }
        }
        if cursorColumn < Screen608.columns - 1 { cursorColumn += 1 }
        if views.screen.lineStart == -1 { views.screen.lineStart = fts }
        if views.transcript.lineStart == -1 { views.transcript.lineStart = fts }
    }

    private mutating func specialCharacter(_ lo: UInt8, fts: Int64) {
        guard channel == myChannel else { return }
        writeChar(lo + 0x50, fts: fts)
    }

    private mutating func extendedCharacter(_ hi: UInt8, _ lo: UInt8, fts: Int64) {
        channel = newChannel
        guard channel == myChannel else { return }
        // The extended character replaces the basic fallback sent just before it.
        if cursorColumn > 0 { cursorColumn -= 1 }
        writeChar(hi == 0x12 ? lo + 0x70 : lo + 0x90, fts: fts)
    }

    /// Mid-row code: sets color/italics/underline and shows as a space.
    private mutating func midRow(_ hi: UInt8, _ lo: UInt8, fts: Int64) {
        channel = newChannel
        guard channel == myChannel else { return }
        let a = Self.attributes[Int(lo - 0x20)]
        color = a.color
        font = a.font
        writeChar(0x20, fts: fts)
    }

    /// Preamble address code: row, indent, color and font.
    private mutating func preambleAddress(_ hi: UInt8, _ loIn: UInt8) {
        channel = newChannel
        guard channel == myChannel else { return }
        let row = Self.pacRows[Int(((hi << 1) & 14) | ((loIn >> 5) & 1))]
        let lo: UInt8
        if loIn >= 0x40 && loIn <= 0x5F { lo = loIn - 0x40 } else if loIn >= 0x60 && loIn <= 0x7F { lo = loIn - 0x60 } else { return }
        let a = Self.attributes[Int(lo)]
        color = a.color
        font = a.font
        if mode != .text { cursorRow = row - 1 }
        cursorColumn = a.indent
        haveCursorPosition = true
        if mode == .rollUp2 || mode == .rollUp3 || mode == .rollUp4 {
            // In roll-up, rows below the new base row are erased.
            let start = row
            withWriting { s in
                if start < Screen608.rows {
                    for j in start..<Screen608.rows where s.isRowUsed(j) { s.clearRow(j) }
                }
            }
        }
    }

    // MARK: commands

    private var keepLines: Int {
        switch mode {
        case .rollUp2: return 2
        case .rollUp3: return 3
        case .rollUp4: return 4
        case .text: return 7
        default: return 0
        }
    }

    private mutating func command(_ hi: UInt8, _ lo: UInt8, fts: Int64, out: inout [Output]) {
        channel = newChannel
        guard channel == myChannel else { return }
        switch (hi, lo) {
        case (0x14, 0x21), (0x15, 0x21): // BS
            if cursorColumn > 0 {
                cursorColumn -= 1
                let r = cursorRow, c = cursorColumn
                if r < Screen608.rows {
                    withWriting { s in s.setCell(r, c, (s.cell(r, c) & 0xFF00) | 0x20) }
                }
            }
        case (0x17, 0x21): // TO1
            if cursorColumn < Screen608.columns - 1 { cursorColumn += 1 }
        case (0x17, 0x22): // TO2
            cursorColumn = min(cursorColumn + 2, Screen608.columns - 1)
        case (0x17, 0x23): // TO3
            cursorColumn = min(cursorColumn + 3, Screen608.columns - 1)
        case (_, 0x20): // RCL
            mode = .popOn
        case (_, 0x2B): // RTD
            mode = .text
        case (_, 0x29): // RDC
            mode = .paintOn
        case (_, 0x25), (_, 0x26), (_, 0x27): // RU2, RU3, RU4
            if mode == .popOn || mode == .paintOn {
                // CEA-608 C.10: switching style erases what pop-on/paint-on left in memory.
                writeScreen(view: 0, fts: fts, out: &out)
                writeScreen(view: 1, fts: fts, out: &out)
                withVisible { $0.clear() }
                // (Newer CCExtractor trees defer the roll-up start time here; 0.94 as used for
                // the references does not, so `rollupFromPopOn` stays false.)
            }
            withNonVisible { $0.clear() }
            if mode != .text && !haveCursorPosition {
                cursorRow = 14
                cursorColumn = 0
                haveCursorPosition = true
            }
            mode = lo == 0x25 ? .rollUp2 : (lo == 0x26 ? .rollUp3 : .rollUp4)
        case (_, 0x2D): // CR
            carriageReturn(fts: fts, out: &out)
        case (_, 0x2E): // ENM
            withNonVisible { $0.clear() }
        case (_, 0x2C): // EDM
            eraseDisplayed(fts: fts, out: &out)
        case (_, 0x2F): // EOC
            writeScreen(view: 0, fts: fts, out: &out)
            writeScreen(view: 1, fts: fts, out: &out)
            visibleIsFirst.toggle()
            views.screen.visibleStart = views.screen.visibleStartTime(fts)
            views.transcript.visibleStart = views.transcript.visibleStartTime(fts)
            cursorColumn = 0
            cursorRow = 0
            color = .white
            font = Font608.regular
            mode = .popOn
        case (_, 0x24): // DER
            if mode != .text && cursorRow < Screen608.rows {
                let r = cursorRow, from = cursorColumn, f = font
                withWriting { s in
                    for c in from..<Screen608.columns { s.setCell(r, c, 0x20 | UInt16(f << 4) << 8) }
                }
            }
        default: // AON, AOF, unknown
            break
        }
    }

    private mutating func eraseDisplayed(fts: Int64, out: inout [Output]) {
        writeScreen(view: 0, fts: fts, out: &out)
        if mode == .rollUp2 || mode == .rollUp3 || mode == .rollUp4 {
            // Transcript: earlier rows were written at their CR; write only the cursor row.
            writeLine(fts: fts, out: &out)
        } else {
            views.transcript.lineStart = views.transcript.visibleStart
            writeScreen(view: 1, fts: fts, out: &out)
        }
        withVisible { $0.clear() }
        views.screen.visibleStart = views.screen.visibleStartTime(fts)
        views.transcript.visibleStart = views.transcript.visibleStartTime(fts)
    }

    private mutating func carriageReturn(fts: Int64, out: inout [Output]) {
        if mode == .paintOn { return }
        if mode == .popOn {
            cursorColumn = 0
            if cursorRow < Screen608.rows { cursorRow += 1 }
            return
        }
        writeLine(fts: fts, out: &out)
        let changes = checkRollUp()
        if changes {
            if views.screen.rollupFromPopOn && views.screen.lineStart > 0 {
                views.screen.visibleStart = views.screen.lineStart
                views.screen.rollupFromPopOn = false
            }
            if views.transcript.rollupFromPopOn && views.transcript.lineStart > 0 {
                views.transcript.visibleStart = views.transcript.lineStart
                views.transcript.rollupFromPopOn = false
            }
            // Only when a row scrolls off is the srt screen written.
            writeScreen(view: 0, fts: fts, out: &out)
        }
        rollUp()
        for v in 0..<2 {
            var t = v == 0 ? views.screen : views.transcript
            t.lineStart = (t.rollupFromPopOn && !changes) ? fts : -1
            if changes { t.visibleStart = t.visibleStartTime(fts) }
            if v == 0 { views.screen = t } else { views.transcript = t }
        }
        cursorColumn = 0
    }

    /// Would a roll-up push a row off the roll-up window?
    private func checkRollUp() -> Bool {
        let keep = keepLines
        if keep == 0 { return false }
        let s = visible
        if s.isRowUsed(0) { return true }
        var first = -1, last = -1
        for i in 0..<Screen608.rows where s.isRowUsed(i) {
            if first == -1 { first = i }
            last = i
        }
        if last == -1 { return false }
        if last - first + 1 >= keep { return true }
        if first - 1 <= cursorRow - keep { return true }
        return false
    }

    private mutating func rollUp() {
        let keep = keepLines
        let cursor = cursorRow
        withVisible { s in
            var first = -1, last = -1, before = 0
            for i in 0..<Screen608.rows where s.isRowUsed(i) {
                before += 1
                if first == -1 { first = i }
                last = i
            }
            if last == -1 { return }
            var j = last - keep + 1
            while j < last {
                if j >= 0 { s.copyRow(from: j + 1, to: j) }
                j += 1
            }
            var k = 0
            while k < 1 + cursor - keep {
                if k < Screen608.rows { s.clearRow(k) }
                k += 1
            }
            s.clearRow(last)
            if s.rowUsed == 0 { s.isEmpty = true }
        }
    }

    // MARK: writing out

    /// Writes the displayed memory for one view (CCExtractor's write_cc_buffer).
    private mutating func writeScreen(view: Int, fts: Int64, out: inout [Output]) {
        let start: Int64, end: Int64
        if view == 0 {
            start = views.screen.visibleStart
            end = views.screen.visibleEndTime(fts)
        } else {
            start = views.transcript.visibleStart
            end = views.transcript.visibleEndTime(fts)
        }
        let s = visible
        if s.isEmpty { return }
        var rows: [String] = []
        var buf: [UInt8] = []
        buf.reserveCapacity(64)
        for r in 0..<Screen608.rows where s.isRowUsed(r) {
            buf.removeAll(keepingCapacity: true)
            if view == 0 {
                RowRenderer.srtRow(s, row: r, into: &buf)
                rows.append(String(decoding: buf, as: UTF8.self))
            } else if RowRenderer.transcriptRow(s, row: r, into: &buf) {
                rows.append(String(decoding: buf, as: UTF8.self))
            }
        }
        if view == 0 {
            out.append(.screen(start: start, end: end, mode: captionMode, rows: rows))
        } else {
            out.append(.lines(start: start, end: end, mode: captionMode, texts: rows))
        }
    }

    /// Writes the cursor row for the transcript view (CCExtractor's write_cc_line).
    private mutating func writeLine(fts: Int64, out: inout [Output]) {
        let s = visible
        if s.isEmpty { return }
        var texts: [String] = []
        if cursorRow < Screen608.rows {
            var buf: [UInt8] = []
            if RowRenderer.transcriptRow(s, row: cursorRow, into: &buf) {
                texts.append(String(decoding: buf, as: UTF8.self))
            }
        }
        out.append(.lines(start: views.transcript.lineStart, end: fts, mode: captionMode, texts: texts))
    }

    /// End of stream: CCExtractor erases the displayed memory so the last caption is written.
    mutating func flush(fts: Int64, out: inout [Output]) {
        channel = newChannel
        guard channel == myChannel else { return }
        eraseDisplayed(fts: fts, out: &out)
    }

    // MARK: tables

    /// Rows for PAC index ((hi << 1) & 14) | bit 5 of lo (1-based; 0 entry never happens).
    static let pacRows: [Int] = [11, 1, 1, 2, 3, 4, 12, 13, 14, 15, 5, 6, 7, 8, 9, 10]

    struct Attribute { let color: Color608; let font: UInt8; let indent: Int }
    /// PAC/mid-row attribute table, indexed by the low 5 bits of the second byte.
    static let attributes: [Attribute] = {
        let colors: [Color608] = [.white, .green, .blue, .cyan, .red, .yellow, .magenta]
        var t: [Attribute] = []
        for c in colors {
            t.append(Attribute(color: c, font: Font608.regular, indent: 0))
            t.append(Attribute(color: c, font: Font608.underlined, indent: 0))
        }
        t.append(Attribute(color: .white, font: Font608.italics, indent: 0))
        t.append(Attribute(color: .white, font: Font608.underlinedItalics, indent: 0))
        for i in 0..<8 {
            t.append(Attribute(color: .white, font: Font608.regular, indent: i * 4))
            t.append(Attribute(color: .white, font: Font608.underlined, indent: i * 4))
        }
        return t
    }()
}
