import Captions
import Synchronization
import TunerServer

/// The bytes a latency-probe tuner sends (benchmarks): one pop-on caption per interval whose text
/// carries a unique id, e.g. `BENCH 42`.
///
/// Why pop-on with no erase: a pop-on caption becomes a line when the NEXT caption's End Of
/// Caption swaps it off the screen, so the block carrying caption k+1 is exactly the bytes whose
/// arrival makes caption k's line; the load generator notes that send time under k's id.
public enum LatencyProbe {
    /// The text marker before the id; readers find probe lines by it.
    public static let marker = "BENCH "

    /// One caption as the two BIN_DATA blocks of one record (header, then triplets), the way the
    /// real client splits records: Resume Caption Loading, a row-15 address, the text, End Of
    /// Caption, control codes doubled as broadcast encoders send them.
    public static func caption(id: Int, at milliseconds: Int64) -> [UInt8] {
        var pairs: [(UInt8, UInt8)] = [(0x14, 0x20), (0x14, 0x20), (0x14, 0x60), (0x14, 0x60)]
        let text = Array((marker + String(id)).utf8)
        var i = 0
        while i < text.count {
            pairs.append((text[i], i + 1 < text.count ? text[i + 1] : 0))
            i += 2
        }
        pairs += [(0x14, 0x2F), (0x14, 0x2F)]
        let triplets = pairs.map { CCTriplet(info: 0xFC, data1: oddParity($0.0), data2: oddParity($0.1)) }
        return ClientBytes.record(milliseconds, triplets)
    }

    /// The probe id in a stored caption line's text, if it is a probe line.
    public static func id(in text: String) -> Int? {
        guard let range = text.firstRange(of: marker) else { return nil }
        return Int(text[range.upperBound...].prefix { $0.isASCII && $0.isNumber })
    }

    static func oddParity(_ byte: UInt8) -> UInt8 {
        let v = byte & 0x7F
        return v.nonzeroBitCount % 2 == 1 ? v : v | 0x80
    }
}

/// When each probe caption's completing bytes were sent, shared by the load generator (writes)
/// and the reader measuring latency (takes).
public final class ProbeLedger: Sendable {
    /// A send time: monotonic for the latency itself, wall-clock milliseconds to compare with the
    /// server's decode time stored with the line (`capturedAt`), which splits the latency into
    /// its way to the decoder and its way through the store.
    public struct SendTime: Sendable {
        public let instant: ContinuousClock.Instant
        public let wallMilliseconds: Int64
    }

    private let sent = Mutex<[Int: SendTime]>([:])

    public init() {}

    func record(id: Int, at time: ContinuousClock.Instant) {
        let entry = SendTime(instant: time, wallMilliseconds: wallClockMilliseconds())
        sent.withLock { $0[id] = entry }
    }

    /// Removes and returns the send time of `id` (a line is measured once).
    public func take(id: Int) -> SendTime? { sent.withLock { $0.removeValue(forKey: id) } }

    /// Probe lines sent before `deadline` that no reader has taken yet (lost or still late).
    public func outstanding(sentBefore deadline: ContinuousClock.Instant) -> Int {
        sent.withLock { $0.values.filter { $0.instant < deadline }.count }
    }

    /// Forgets everything sent so far (e.g. during the ramp, before measuring).
    public func reset() { sent.withLock { $0.removeAll() } }
}
