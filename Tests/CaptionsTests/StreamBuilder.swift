import Captions

/// Builds synthetic RCWT streams of CEA-608 byte pairs (with odd parity), one pair per frame,
/// the way a caption encoder sends them: control codes twice, text two characters at a time.
struct StreamBuilder {
    private(set) var records: [RCWTRecord] = []
    /// Time of the next record, in ms.
    var time: Int64
    /// Milliseconds between records (one frame).
    var frame: Int64 = 33

    init(start: Int64 = 1000) { time = start }

    /// Adds odd parity to a 7-bit value.
    static func parity(_ b: UInt8) -> UInt8 {
        let v = b & 0x7F
        return v.nonzeroBitCount % 2 == 1 ? v : v | 0x80
    }

    /// One record holding one triplet; returns the record's time.
    @discardableResult
    mutating func pair(_ b1: UInt8, _ b2: UInt8, field: Int = 1, rawParity: Bool = false) -> Int64 {
        let info: UInt8 = field == 1 ? 0xFC : 0xFD
        let t = CCTriplet(info: info, data1: rawParity ? b1 : Self.parity(b1), data2: rawParity ? b2 : Self.parity(b2))
        records.append(RCWTRecord(timestamp: time, triplets: [t]))
        let at = time
        time += frame
        return at
    }

    /// A control code sent twice (the receiver must act once); returns the time of the first.
    @discardableResult
    mutating func control(_ b1: UInt8, _ b2: UInt8, field: Int = 1) -> Int64 {
        let t = pair(b1, b2, field: field)
        pair(b1, b2, field: field)
        return t
    }

    /// Basic characters, two per pair.
    mutating func text(_ s: String, field: Int = 1) {
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            pair(bytes[i], i + 1 < bytes.count ? bytes[i + 1] : 0, field: field)
            i += 2
        }
    }

    /// Nothing for `frames` frames.
    mutating func idle(_ frames: Int) { time += frame * Int64(frames) }

    // Common commands on data channel 1 (CC1/CC3); `ch2` shifts to CC2/CC4.
    static func misc(_ lo: UInt8, ch2: Bool = false) -> (UInt8, UInt8) { (ch2 ? 0x1C : 0x14, lo) }
    mutating func resumeCaptionLoading(ch2: Bool = false, field: Int = 1) { control(ch2 ? 0x1C : 0x14, 0x20, field: field) }
    @discardableResult mutating func endOfCaption(ch2: Bool = false, field: Int = 1) -> Int64 { control(ch2 ? 0x1C : 0x14, 0x2F, field: field) }
    @discardableResult mutating func eraseDisplayed(ch2: Bool = false, field: Int = 1) -> Int64 { control(ch2 ? 0x1C : 0x14, 0x2C, field: field) }
    @discardableResult mutating func carriageReturn(field: Int = 1) -> Int64 { control(0x14, 0x2D, field: field) }
    mutating func rollUp(_ rows: Int) { control(0x14, UInt8(0x25 + rows - 2)) }
    mutating func resumeDirectCaptioning() { control(0x14, 0x29) }
    mutating func resumeTextDisplay() { control(0x14, 0x2B) }

    /// Preamble address code for `row` (1...15), white, indent `indent` (multiple of 4).
    mutating func pac(row: Int, indent: Int = 0, ch2: Bool = false, field: Int = 1) {
        // First byte and high/low half per row, from the CEA-608 PAC table.
        let table: [Int: (UInt8, Bool)] = [1: (0x11, false), 2: (0x11, true), 3: (0x12, false), 4: (0x12, true),
                                           5: (0x15, false), 6: (0x15, true), 7: (0x16, false), 8: (0x16, true),
                                           9: (0x17, false), 10: (0x17, true), 11: (0x10, false), 12: (0x13, false),
                                           13: (0x13, true), 14: (0x14, false), 15: (0x14, true)]
        let (hi, upper) = table[row]!
        let lo: UInt8 = (upper ? 0x60 : 0x40) | (indent > 0 ? UInt8(0x10 + (indent / 4) * 2) : 0)
        control(ch2 ? hi + 8 : hi, lo, field: field)
    }

    /// An XDS packet on field 2 (start code, type, data, end with checksum).
    mutating func xds(class start: UInt8, type: UInt8, data: [UInt8], badChecksum: Bool = false) {
        var payload: [UInt8] = [start, type]
        pair(start, type, field: 2)
        var i = 0
        while i < data.count {
            let a = data[i], b = i + 1 < data.count ? data[i + 1] : 0
            pair(a, b, field: 2)
            payload += [a, b]
            i += 2
        }
        payload.append(0x0F)
        var sum = 0
        for v in payload { sum = (sum + Int(v)) & 0x7F }
        var checksum = UInt8((128 - sum) & 0x7F)
        if badChecksum { checksum ^= 0x01 }
        pair(0x0F, checksum, field: 2)
    }

    /// The records as a `.bin` file.
    var binFile: [UInt8] { RCWTHeader.bytes + records.flatMap(\.bytes) }

    /// Decodes everything and renders `format`.
    func render(_ format: CaptionFormat, xds: Bool = false, channel: CaptionChannel = .cc1) -> String {
        CaptionFile.render(records: records, format: format, xds: xds, channel: channel)
    }

    /// All events.
    func events(_ options: DecoderOptions = .init()) -> [CaptionEvent] {
        var d = CaptionDecoder(options: options)
        var out: [CaptionEvent] = []
        for r in records { out += d.decode(r) }
        out += d.finish()
        return out
    }
}

/// A 32-column srt row.
func row32(_ s: String) -> String {
    s + String(repeating: " ", count: max(0, 32 - s.count))
}
