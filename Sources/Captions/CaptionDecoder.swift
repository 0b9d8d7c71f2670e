/// Decodes RCWT records into caption cues and XDS events, like `ccextractor -in=bin -1`.
///
/// Feed records in stream order with `decode(_:)`, and call `finish()` once at the end of the
/// stream. Events come out in the order CCExtractor writes them. Timing follows CCExtractor:
/// the n-th caption pair of a field within a record is timed `n * 1001/30` ms after the record,
/// a screen ends when the next one starts, and the last screen ends one frame plus a third of a
/// second (per pending pair) after the last record.
///
/// Memory: a decoder with nothing on screen holds a few hundred bytes; screen memories are
/// allocated when their channel first writes, which is why 10,000 of them fit in a server.
public struct CaptionDecoder: Sendable {
    public let options: DecoderOptions

    private var cc: CEA608Decoder?
    private var xds: XDSDecoder?
    private var inXDSMode = false
    private var xdsStart: Int64 = -1

    // Timing, as CCExtractor derives it from RCWT timestamps: each record's own timestamp.
    private var clock = FrameClock()
    private var finished = false

    /// Output waiting for its timing to be known (CCExtractor's `cc_subtitle` per output run).
    private struct Pending: Sendable {
        var start: Int64
        var end: Int64
        /// False while the item is held: its end was not after its start.
        var assigned: Bool
        var payload: Payload
    }
    private enum Payload: Sendable {
        case screen(CaptionMode, [String])
        case lines(CaptionMode, [String])
        case xds(XDSContent, [String])
    }

    /// At most this many held items per queue. CCExtractor holds without limit, and a tuner whose
    /// clock stands still would make every screen a held one; past the limit the held items are
    /// written with their own times (a held item's end is then its start).
    public static let maximumHeld = 8

    private struct Queue: Sendable {
        var items: [Pending] = []
        var gotOutput = false
        /// Held items written early because `maximumHeld` was reached.
        var releasedEarly = 0

        /// A screen or row from `start` to `end`. One whose end is not after its start is held,
        /// and shares the interval of the next one that has a duration, in equal parts (as
        /// CCExtractor does after its clock goes back).
        mutating func add(start: Int64, end: Int64, _ payload: Payload) {
            items.append(Pending(start: start, end: end, assigned: false, payload: payload))
            if start == end && gotOutput { gotOutput = false }
            if start < end {
                var skip = 0
                while skip < items.count && items[skip].assigned { skip += 1 }
                let n = items.count - skip
                let step = (end &- start) / Int64(n)
                for k in 0..<n {
                    items[skip + k].start = start &+ step &* Int64(k)
                    items[skip + k].end = start &+ step &* Int64(k + 1)
                    items[skip + k].assigned = true
                }
                gotOutput = true
            } else if items.count > CaptionDecoder.maximumHeld {
                releaseHeld()
            }
        }

        mutating func addTimed(start: Int64, end: Int64, _ payload: Payload) {
            items.append(Pending(start: start, end: end, assigned: true, payload: payload))
            gotOutput = true
        }

        /// Writes the held items with the times they came with (a held item ends at its start).
        private mutating func releaseHeld() {
            for k in items.indices where !items[k].assigned {
                items[k].end = max(items[k].start, items[k].end)
                items[k].assigned = true
                releasedEarly &+= 1
            }
            gotOutput = true
        }

        /// Calls `body` with every item and empties the queue. An item still held is passed
        /// with its own times (`end` at least `start`) and `assigned` false: CCExtractor loses
        /// it when an XDS line is written first, and only the ttxt writer follows it there.
        mutating func drain(_ body: (Pending) -> Void) {
            for var p in items {
                if !p.assigned { p.end = max(p.start, p.end) }
                body(p)
            }
            items.removeAll(keepingCapacity: false)
            gotOutput = false
        }
    }
    private var screenQueue = Queue()
    private var transcriptQueue = Queue()
    private var scratch: [CEA608Decoder.Output] = []

    public init(options: DecoderOptions = .init()) {
        self.options = options
    }

    /// Decodes one record; returns the events it completes.
    public mutating func decode(_ record: RCWTRecord) -> [CaptionEvent] {
        var events: [CaptionEvent] = []
        decode(record) { events.append($0) }
        return events
    }

    /// Decodes one record, calling `emit` for each completed event (no intermediate array).
    public mutating func decode(_ record: RCWTRecord, emit: (CaptionEvent) -> Void) {
        guard !finished else { return }
        setTime(record.timestamp)
        for t in record.triplets { triplet(t) }
        flushQueues(emit)
    }

    /// Decodes one record given as raw triplet bytes (3 per triplet), without building an
    /// `RCWTRecord`: the fast path for whole files and for servers that already hold the bytes.
    public mutating func decode(timestamp: Int64, tripletBytes: UnsafeBufferPointer<UInt8>, emit: (CaptionEvent) -> Void) {
        guard !finished else { return }
        setTime(timestamp)
        var i = 0
        let n = tripletBytes.count - tripletBytes.count % 3
        while i < n {
            triplet(CCTriplet(info: tripletBytes[i], data1: tripletBytes[i + 1], data2: tripletBytes[i + 2]))
            i += 3
        }
        flushQueues(emit)
    }

    /// End of stream: writes what is still displayed and returns the last events.
    public mutating func finish() -> [CaptionEvent] {
        var events: [CaptionEvent] = []
        finish { events.append($0) }
        return events
    }

    public mutating func finish(emit: (CaptionEvent) -> Void) {
        guard !finished else { return }
        finished = true
        // CCExtractor ends a file by moving the clock past the last record, then erasing the screen.
        let global = clock.endOfStream
        if cc != nil {
            cc!.flush(fts: global, out: &scratch)
            enqueue(scratch)
            scratch = []
        }
        flushQueues(emit)
        // Anything still waiting for a time is dropped, as CCExtractor does.
    }

    /// The last XDS program name seen (current class), if any.
    public var currentProgramName: String? { xds?.currentProgramName }

    // MARK: timing

    /// CCExtractor reads RCWT with its clock-jump check off (`disable_sync_check`): every
    /// record is timed by its own timestamp, whatever the gap before it, forward or back. Only
    /// the range is ours: a tuner's timestamp is clamped into `StreamTime.range`, so no later
    /// sum (pair offsets, end of stream, the web's durations) can overflow.
    private mutating func setTime(_ ts: Int64) {
        clock.startRecord(at: ts)
    }

    @inline(__always) private func fts(field: Int) -> Int64 {
        clock.time(field == 1 ? .field1 : .field2)
    }

    // MARK: triplets

    private mutating func triplet(_ t: CCTriplet) {
        guard let counter = FrameClock.counter(for: t) else { return }
        switch counter {
        case .field1:
            if options.channel.field == 1 { pair(t.data1, t.data2, field: 1) }
        case .field2:
            if options.channel.field == 2 || options.xds { pair(t.data1, t.data2, field: 2) }
        case .dtvcc:
            break
        }
        clock.tick(counter)
    }

    private mutating func pair(_ b1: UInt8, _ b2: UInt8, field: Int) {
        var d1 = b1, d2 = b2
        if options.checkParity {
            if !Self.oddParity(d2) { return }
            if !Self.oddParity(d1) { d1 = 0x7F }
        }
        d1 &= 0x7F; d2 &= 0x7F
        if d1 == 0 && d2 == 0 { return }
        let hasContext = field == options.channel.field
        let fieldTwo = field == 2
        let now = fts(field: field)
        if hasContext && cc == nil {
            cc = CEA608Decoder(channel: options.channel.dataChannel + 1, field: field)
        }
        if d1 >= 0x01 && d1 <= 0x0E && fieldTwo {
            if hasContext { cc!.channel = 3 }
            if !inXDSMode {
                xdsStart = now
                inXDSMode = true
            }
        }
        if d1 == 0x0F && inXDSMode && fieldTwo {
            inXDSMode = false
            endOfXDS(checksum: d2, at: now)
            if hasContext { cc!.channel = cc!.newChannel }
            return
        }
        if d1 >= 0x10 && d1 <= 0x1F {
            if fieldTwo { inXDSMode = false }
            guard hasContext else { return }
            cc!.controlPair(d1, d2, fts: now, out: &scratch)
            if !scratch.isEmpty { enqueue(scratch); scratch.removeAll(keepingCapacity: true) }
        } else {
            if inXDSMode && fieldTwo {
                if options.xds {
                    if xds == nil { xds = XDSDecoder() }
                    xds!.bytes(d1, d2)
                }
                return
            }
            guard hasContext else { return }
            cc!.characterPair(d1, d2, fts: now)
        }
    }

    private mutating func endOfXDS(checksum: UInt8, at now: Int64) {
        guard options.xds, xds != nil, let result = xds!.end(checksum: checksum) else { return }
        transcriptQueue.addTimed(start: xdsStart, end: now, .xds(result.content, result.lines))
    }

    private mutating func enqueue(_ outputs: [CEA608Decoder.Output]) {
        for o in outputs {
            switch o {
            case .screen(let s, let e, let mode, let rows):
                screenQueue.add(start: s, end: e, .screen(mode, rows))
            case .lines(let s, let e, let mode, let texts):
                transcriptQueue.add(start: s, end: e, .lines(mode, texts))
            }
        }
    }

    private mutating func flushQueues(_ emit: (CaptionEvent) -> Void) {
        if screenQueue.gotOutput {
            screenQueue.drain { p in
                // Only XDS (transcript queue) writes a queue with items still held: a screen is always placed here.
                guard case .screen(let mode, let rows) = p.payload, !rows.isEmpty, p.assigned else { return }
                emit(.cue(Cue(start: p.start, end: p.end, mode: mode, rows: rows, lines: [])))
            }
        }
        if transcriptQueue.gotOutput {
            transcriptQueue.drain { p in
                switch p.payload {
                case .lines(let mode, let texts):
                    // CCExtractor skips rows whose start time is unknown (-1).
                    guard p.start != -1, !texts.isEmpty else { return }
                    let lines = texts.map { TranscriptLine(start: p.start, end: p.end, mode: mode, text: $0) }
                    emit(.cue(Cue(start: p.start, end: p.end, mode: mode, rows: [], lines: lines, unplaced: !p.assigned)))
                case .xds(let content, let lines):
                    emit(.xds(XDSEvent(start: p.start, end: p.end, content: content, lines: lines)))
                case .screen:
                    break
                }
            }
        }
        // Nothing is kept between records but what is waiting: idle decoders stay small.
        if !scratch.isEmpty || scratch.capacity > 0 { scratch = [] }
    }

    /// Held screens and rows written early with their own times, because more than
    /// `maximumHeld` waited at once (a tuner whose clock does not advance).
    public var heldReleasedEarly: Int { screenQueue.releasedEarly &+ transcriptQueue.releasedEarly }

    @inline(__always) static func oddParity(_ b: UInt8) -> Bool { b.nonzeroBitCount & 1 == 1 }
}
