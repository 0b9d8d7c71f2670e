/// CCExtractor's caption clock for RCWT input, shared by the 608 and 708 decoders.
///
/// Every record is timed by its own timestamp (CCExtractor reads RCWT with its clock-jump check
/// off), and the n-th triplet of a kind within a record is `n * 1001/30` ms later: field 1 pairs,
/// field 2 pairs and DTVCC (708) triplets are counted separately. Timestamps come from tuners, so
/// they are clamped into `StreamTime.range` where they enter; no later sum can overflow.
struct FrameClock: Sendable {
    /// What a triplet counts as, for timing.
    enum Counter: Sendable { case field1, field2, dtvcc }

    /// The current record's time.
    private(set) var now: Int64 = 0
    /// The latest record time seen (a clock that goes back does not lower it).
    private(set) var latest: Int64 = 0
    private var field1 = 0
    private var field2 = 0
    private var dtvcc = 0

    /// A new record starts: its own timestamp, no triplet counted yet.
    mutating func startRecord(at timestamp: Int64) {
        now = StreamTime.clamped(timestamp)
        if now > latest { latest = now }
        field1 = 0; field2 = 0; dtvcc = 0
    }

    /// The time of the next triplet of this kind in the current record.
    @inline(__always) func time(_ counter: Counter) -> Int64 {
        StreamTime.clamped(now &+ Int64(count(counter)) * 1001 / 30)
    }

    /// Counts one triplet of this kind (after it was handled).
    @inline(__always) mutating func tick(_ counter: Counter) {
        switch counter {
        case .field1: field1 += 1
        case .field2: field2 += 1
        case .dtvcc: dtvcc += 1
        }
    }

    @inline(__always) private func count(_ counter: Counter) -> Int {
        switch counter {
        case .field1: field1
        case .field2: field2
        case .dtvcc: dtvcc
        }
    }

    /// CCExtractor ends a file by moving the clock one frame past the last record, plus a third
    /// of a second per caption pair counted in that record (field 1's, else field 2's, else 708's).
    var endOfStream: Int64 {
        let pairs = field1 != 0 ? field1 : (field2 != 0 ? field2 : dtvcc)
        return StreamTime.clamped(latest &+ 33 &+ Int64(pairs) * 1001 / 3)
    }

    /// How a triplet is counted, or nil when CCExtractor skips it without counting: padding
    /// (`0x80 0x80` under the standard markers), and invalid triplets other than a 708 packet start.
    static func counter(for t: CCTriplet) -> Counter? {
        if (t.info == 0xFA || t.info == 0xFC || t.info == 0xFD) && t.data1 & 0x7F == 0 && t.data2 & 0x7F == 0 { return nil }
        let type = t.info & 0x03
        guard t.info & 0x04 != 0 || type == 3 else { return nil }
        switch type {
        case 0: return .field1
        case 1: return .field2
        default: return .dtvcc
        }
    }
}
