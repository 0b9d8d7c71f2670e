/// The limits that keep a 708 decoder's memory bounded whatever a stream sends.
public struct DTVCCLimits: Sendable, Hashable {
    /// Text cells held at once by all windows of all services (4 bytes each; a row's array header
    /// counts as 8). A row takes its window's width when first written; past the budget, symbols
    /// for new rows are dropped. Copies on the services' screens may take as much again.
    public var maximumCells: Int
    /// Windows defined at once, all services together (the standard allows 8 per service).
    public var maximumWindows: Int
    /// Bytes a service holds back during a Delay (the standard's 128-byte service input buffer);
    /// a full buffer cancels the delay.
    public var maximumDelayedBytes: Int

    /// One full 16:9 screen of text (16 rows of 42; real captions use a third of it), two
    /// services' windows, the standard's service buffer.
    public init(maximumCells: Int = 672, maximumWindows: Int = 16, maximumDelayedBytes: Int = 128) {
        self.maximumCells = maximumCells
        self.maximumWindows = maximumWindows
        self.maximumDelayedBytes = maximumDelayedBytes
    }
}

/// What a service reads and writes outside itself while it runs: the time, the shared display
/// clock, the budgets left by the other services, and the cues it writes.
struct ServiceContext708 {
    let now: Int64
    var timing: DisplayTiming708
    let limits: DTVCCLimits
    let cellsElsewhere: Int
    let windowsElsewhere: Int
    let ccextractorCompatible: Bool
    var cues: [Cue] = []
    var droppedSymbols = 0
}

/// CCExtractor's display clock (`minimum_fts`), shared by all services of a decoder: a screen
/// never starts at or before the end of the last one written, whichever service wrote it.
struct DisplayTiming708: Sendable {
    private(set) var minimum: Int64 = 0

    mutating func visibleStart(_ t: Int64) -> Int64 { t <= minimum ? minimum &+ 1 : t }
    mutating func visibleEnd(_ t: Int64) -> Int64 {
        minimum = t
        return t
    }
}

/// One caption service (1...63): its windows, its current window and pen, its Delay, and the
/// commands of CEA-708-E section 7 (C0, C1, EXT1 with C2/C3/G2/G3, G0, G1).
///
/// Timing and cues follow CCExtractor 0.94 (derived from its outputs, see docs/ccr.md): a
/// window's text goes to the service's screen (`Screen708`) when the window is hidden, deleted,
/// cleared or scrolled while shown; the screen is written as a cue once no window is visible
/// (at once for a clear or a scroll), from the last DisplayWindows or visible carriage return.
struct Service708: Sendable {
    let number: Int
    /// Defined windows, at most 8 (ids 0...7).
    private(set) var windows: [Window708] = []
    private var current: Int?
    private var showTime: Int64 = 0
    /// Set while a Delay holds the service's commands back.
    private var delayUntil: Int64?
    private var delayed: [UInt8] = []
    /// Text copied from windows, waiting to be written as a cue.
    private var screen = Screen708()

    init(number: Int) { self.number = number }

    var allocatedCells: Int { windows.reduce(screen.cellCount) { $0 + $1.allocatedCells } }
    /// What the text costs against `DTVCCLimits.maximumCells`: its cells, and 8 cells (32 bytes)
    /// for each row's array header, so that many narrow rows cost what their storage costs.
    var budgetUnits: Int { windows.reduce(screen.cellCount + 8 * screen.rowCount) { $0 + $1.allocatedCells + 8 * $1.allocatedRows } }
    var heldBytes: Int { delayed.capacity }
    /// Arrays this service holds storage for (each costs a header besides its elements).
    var allocatedArrays: Int {
        (windows.isEmpty ? 0 : 1) + (delayed.isEmpty ? 0 : 1) + (screen.isEmpty ? 0 : 1 + screen.rowCount)
            + windows.reduce(0) { $0 + 1 + $1.allocatedRows }
    }

    // MARK: running commands

    /// Runs one service block's commands. A command cut off at the block's end is dropped
    /// (the standard keeps commands within a block).
    mutating func run(_ block: ArraySlice<UInt8>, _ ctx: inout ServiceContext708) {
        releaseExpiredDelay(&ctx)
        var i = block.startIndex
        while i < block.endIndex, let n = Self.commandLength(block, at: i) {
            let command = block[i..<i + n]
            i += n
            if delayUntil != nil {
                hold(command, &ctx)
            } else {
                execute(command, &ctx)
            }
        }
    }

    /// A Delay ends when its time has passed: what it held runs now.
    mutating func releaseExpiredDelay(_ ctx: inout ServiceContext708) {
        guard let until = delayUntil, ctx.now >= until else { return }
        releaseDelay(&ctx)
    }

    /// End of stream: what is on screen is written, ending now.
    mutating func finish(_ ctx: inout ServiceContext708) {
        if delayUntil != nil { releaseDelay(&ctx) }
        if copyToScreen(Array(windows.indices), &ctx) || !screen.isEmpty { printScreen(&ctx) }
    }

    private mutating func hold(_ command: ArraySlice<UInt8>, _ ctx: inout ServiceContext708) {
        if command.first == 0x8E { // DelayCancel acts at once
            releaseDelay(&ctx)
            return
        }
        if delayed.count + command.count > ctx.limits.maximumDelayedBytes {
            releaseDelay(&ctx)
            execute(command, &ctx)
            return
        }
        if delayed.isEmpty { delayed.reserveCapacity(ctx.limits.maximumDelayedBytes) }
        delayed.append(contentsOf: command)
    }

    private mutating func releaseDelay(_ ctx: inout ServiceContext708) {
        delayUntil = nil
        let held = delayed
        delayed = []
        if !held.isEmpty { run(held[...], &ctx) }
    }

    /// The length of the command at `i`, or nil when the block ends inside it.
    static func commandLength(_ b: ArraySlice<UInt8>, at i: Int) -> Int? {
        let c = b[i]
        let n: Int
        switch c {
        case 0x10:
            guard i + 1 < b.endIndex else { return nil }
            let e = b[i + 1]
            switch e {
            case 0x00...0x07: n = 2
            case 0x08...0x0F: n = 3
            case 0x10...0x17: n = 4
            case 0x18...0x1F: n = 5
            case 0x80...0x87: n = 6
            case 0x88...0x8F: n = 7
            case 0x90...0x9F:
                guard i + 2 < b.endIndex else { return nil }
                n = 3 + Int(b[i + 2] & 0x3F)
            default: n = 2
            }
        case 0x11...0x17: n = 2
        case 0x18...0x1F: n = 3
        case 0x88...0x8D: n = 2
        case 0x90, 0x92: n = 3
        case 0x91: n = 4
        case 0x97: n = 5
        case 0x98...0x9F: n = 7
        default: n = 1
        }
        return n <= b.endIndex - i ? n : nil
    }

    private mutating func execute(_ cmd: ArraySlice<UInt8>, _ ctx: inout ServiceContext708) {
        let s = cmd.startIndex
        let c = cmd[s]
        switch c {
        case 0x08: withCurrent { $0.backspace() }
        case 0x0C: formFeed(&ctx)
        case 0x0D: carriageReturn(&ctx)
        case 0x0E: withCurrent { $0.horizontalCarriageReturn() }
        case 0x10: extended(cmd.dropFirst(), &ctx)
        case 0x18: write(CharacterSet708.p16(cmd[s + 1], cmd[s + 2]), &ctx)
        case 0x20...0x7F, 0xA0...0xFF: write(CharacterSet708.basic(c), &ctx)
        case 0x80...0x87: if windowIndex(Int(c & 0x07)) != nil { current = Int(c & 0x07) }
        case 0x88: clearWindows(cmd[s + 1], &ctx)
        case 0x89: displayWindows(cmd[s + 1], &ctx)
        case 0x8A: hideWindows(cmd[s + 1], &ctx)
        case 0x8B: toggleWindows(cmd[s + 1], &ctx)
        case 0x8C: deleteWindows(cmd[s + 1], &ctx)
        case 0x8D: delayUntil = StreamTime.clamped(ctx.now &+ Int64(cmd[s + 1]) * 100)
        case 0x8F: reset(&ctx)
        case 0x90:
            withCurrent {
                $0.pen.italic = cmd[s + 2] & 0x80 != 0
                $0.pen.underline = cmd[s + 2] & 0x40 != 0
            }
        case 0x91: withCurrent { $0.pen.color = cmd[s + 1] & 0x3F }
        case 0x92: withCurrent { $0.movePen(row: Int(cmd[s + 1] & 0x0F), column: Int(cmd[s + 2] & 0x3F)) }
        case 0x98...0x9F: defineWindow(Int(c & 0x07), cmd.dropFirst(), &ctx)
        default: break // ETX, NUL, DelayCancel outside a delay, SetWindowAttributes, reserved codes
        }
    }

    /// EXT1: G2 and G3 characters; the C2 and C3 codes carry nothing a decoder must act on.
    private mutating func extended(_ cmd: ArraySlice<UInt8>, _ ctx: inout ServiceContext708) {
        let e = cmd[cmd.startIndex]
        switch e {
        case 0x20...0x7F: write(CharacterSet708.g2(e), &ctx)
        case 0xA0...0xFF: write(CharacterSet708.substitute, &ctx)
        default: break
        }
    }

    // MARK: windows

    private func windowIndex(_ id: Int) -> Int? { windows.firstIndex { $0.id == id } }

    private mutating func withCurrent(_ body: (inout Window708) -> Void) {
        guard let id = current, let w = windowIndex(id) else { return }
        body(&windows[w])
    }

    private mutating func write(_ symbol: UInt16, _ ctx: inout ServiceContext708) {
        guard let id = current, let w = windowIndex(id) else { return }
        var mayAllocate = true
        if windows[w].penRowNeedsStorage {
            mayAllocate = ctx.cellsElsewhere + budgetUnits + windows[w].columnCount + 8 <= ctx.limits.maximumCells
            if !mayAllocate { ctx.droppedSymbols &+= 1 }
        }
        windows[w].put(symbol, mayAllocate: mayAllocate)
    }

    /// CR. In a visible window the screen is written first (with the window's text when it is
    /// about to scroll), and the next screen starts now.
    private mutating func carriageReturn(_ ctx: inout ServiceContext708) {
        guard let id = current, let w = windowIndex(id) else { return }
        let shown = windows[w].visible
        if shown {
            if windows[w].carriageReturnScrolls { _ = copyToScreen([w], &ctx) }
            printScreen(&ctx)
        }
        windows[w].carriageReturn()
        if shown { showTime = ctx.timing.visibleStart(ctx.now) }
    }

    private mutating func formFeed(_ ctx: inout ServiceContext708) {
        guard let id = current, let w = windowIndex(id) else { return }
        if copyToScreen([w], &ctx) { printScreen(&ctx) }
        windows[w].clearText(homePen: true)
    }

    /// The windows of a command's bitmap that exist.
    private func selected(_ bitmap: UInt8) -> [Int] {
        windows.indices.filter { bitmap & (1 << UInt8(windows[$0].id)) != 0 }
    }

    /// Copies the windows to the screen that hold text (and, unless `hiddenToo`, are visible);
    /// true when any did.
    private mutating func copyToScreen(_ chosen: [Int], hiddenToo: Bool = false, _ ctx: inout ServiceContext708) -> Bool {
        var copied = false
        for w in chosen where (hiddenToo || windows[w].visible) && !windows[w].isBlank {
            // A copy may at most double the text held: windows and screen stay within twice the budget.
            let cost = windows[w].allocatedCells + 8 * windows[w].allocatedRows
            guard ctx.cellsElsewhere + budgetUnits + cost <= 2 * ctx.limits.maximumCells else {
                ctx.droppedSymbols &+= windows[w].allocatedCells
                continue
            }
            screen.copy(windows[w])
            copied = true
        }
        return copied
    }

    /// After windows left the screen: it is written once nothing is visible any more.
    private mutating func printIfNothingVisible(_ copied: Bool, _ ctx: inout ServiceContext708) {
        if copied && !windows.contains(where: \.visible) { printScreen(&ctx) }
    }

    private mutating func clearWindows(_ bitmap: UInt8, _ ctx: inout ServiceContext708) {
        let chosen = selected(bitmap)
        if copyToScreen(chosen, &ctx) { printScreen(&ctx) }
        for w in chosen { windows[w].clearText(homePen: false) }
    }

    private mutating func displayWindows(_ bitmap: UInt8, _ ctx: inout ServiceContext708) {
        for w in selected(bitmap) { windows[w].visible = true }
        showTime = ctx.timing.visibleStart(ctx.now)
    }

    private mutating func hideWindows(_ bitmap: UInt8, _ ctx: inout ServiceContext708) {
        let chosen = selected(bitmap)
        let copied = copyToScreen(chosen, &ctx)
        for w in chosen { windows[w].visible = false }
        printIfNothingVisible(copied, &ctx)
    }

    private mutating func toggleWindows(_ bitmap: UInt8, _ ctx: inout ServiceContext708) {
        let chosen = selected(bitmap)
        let copied = copyToScreen(chosen, &ctx)
        var shown = false
        for w in chosen {
            windows[w].visible.toggle()
            shown = shown || windows[w].visible
        }
        printIfNothingVisible(copied, &ctx)
        if shown { showTime = ctx.timing.visibleStart(ctx.now) }
    }

    private mutating func deleteWindows(_ bitmap: UInt8, _ ctx: inout ServiceContext708) {
        // CCExtractor 0.94 copies windows 4-7 to the screen when deleted even while hidden (89.svc1.srt
        // shows it 14 times: their text joins the next cue, or makes one of its own), windows 0-3 only
        // when visible (25 deletions of hidden windows 0-3 leave no trace there).
        let chosen = selected(bitmap)
        let low = copyToScreen(chosen.filter { windows[$0].id < 4 }, &ctx)
        let high = copyToScreen(chosen.filter { windows[$0].id >= 4 }, hiddenToo: true, &ctx)
        let copied = low || high
        windows.removeAll { bitmap & (1 << UInt8($0.id)) != 0 }
        if windows.isEmpty { windows = [] } // release the storage, not only the elements
        if let id = current, bitmap & (1 << UInt8(id)) != 0 { current = nil }
        printIfNothingVisible(copied, &ctx)
    }

    private mutating func reset(_ ctx: inout ServiceContext708) {
        if copyToScreen(Array(windows.indices), &ctx) { printScreen(&ctx) }
        windows = []
        screen = Screen708()
        current = nil
        delayUntil = nil
        delayed = []
    }

    /// DefineWindow: creates the window (within the decoder's window budget) or reshapes it, makes
    /// it current, and shows or hides it as its visible flag says.
    private mutating func defineWindow(_ id: Int, _ p: ArraySlice<UInt8>, _ ctx: inout ServiceContext708) {
        var w = windowIndex(id)
        if w == nil {
            guard ctx.windowsElsewhere + windows.count < ctx.limits.maximumWindows else { return }
            windows.append(Window708(id: id))
            w = windows.count - 1
        }
        guard let w else { return }
        windows[w].define(p)
        current = id
        let visible = p[p.startIndex] & 0x20 != 0
        if visible && !windows[w].visible {
            // The screen starts here only if nothing else was showing (89.svc1.srt cues 285, 740).
            if !windows.contains(where: \.visible) { showTime = ctx.timing.visibleStart(ctx.now) }
            windows[w].visible = true
        } else if !visible && windows[w].visible {
            let copied = copyToScreen([w], &ctx)
            windows[w].visible = false
            printIfNothingVisible(copied, &ctx)
        }
    }

    // MARK: output

    /// Writes the screen as a cue from the show time to now (nothing when it is empty); the
    /// display clock moves either way.
    private mutating func printScreen(_ ctx: inout ServiceContext708) {
        let hide = ctx.timing.visibleEnd(ctx.now)
        guard !screen.isEmpty else { return }
        let rows = screen.take(ccextractorCompatible: ctx.ccextractorCompatible)
        let lines = rows.map { TranscriptLine(start: showTime, end: hide &+ 1, mode: .popOn, text: $0.plain) }
        ctx.cues.append(Cue(start: showTime, end: hide &+ 1, mode: .popOn, rows: rows.map(\.srt), lines: lines))
    }
}
