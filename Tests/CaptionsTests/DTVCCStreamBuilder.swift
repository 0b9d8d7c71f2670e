import Captions

/// Builds synthetic RCWT streams of CEA-708 caption channel packets: one packet per record, one
/// service block per packet, records one frame apart.
struct DTVCCStreamBuilder {
    private(set) var records: [RCWTRecord] = []
    var time: Int64
    var frame: Int64 = 33
    private var sequence: UInt8 = 0

    init(start: Int64 = 1000) { time = start }

    /// The packet triplets for `block` of `service` (extended header for 7...63), padded with a
    /// null block to an even size.
    static func packet(service: Int, _ block: [UInt8], sequence: UInt8 = 0) -> [CCTriplet] {
        var body: [UInt8] = service < 7 ? [UInt8(service << 5) | UInt8(block.count)] : [0xE0 | UInt8(block.count), UInt8(service)]
        body += block
        if (body.count + 1) % 2 != 0 { body.append(0) }
        let size = body.count + 1
        let bytes = [(sequence & 3) << 6 | UInt8(size / 2 & 0x3F)] + body
        var triplets = [CCTriplet(info: 0xFF, data1: bytes[0], data2: bytes[1])]
        var i = 2
        while i < bytes.count {
            triplets.append(CCTriplet(info: 0xFE, data1: bytes[i], data2: bytes[i + 1]))
            i += 2
        }
        return triplets
    }

    /// One record carrying one packet; returns the record's time.
    @discardableResult
    mutating func block(_ bytes: [UInt8], service: Int = 1) -> Int64 {
        records.append(RCWTRecord(timestamp: time, triplets: Self.packet(service: service, bytes, sequence: sequence)))
        sequence &+= 1
        let at = time
        time += frame
        return at
    }

    mutating func idle(_ frames: Int) { time += frame * Int64(frames) }

    // Commands (CEA-708-E section 8.10).
    static func defineWindow(_ id: Int, visible: Bool = false, anchorVertical: UInt8 = 60, rows: Int, columns: Int = 32) -> [UInt8] {
        [0x98 | UInt8(id), (visible ? 0x20 : 0) | 0x18, anchorVertical, 0x19, UInt8(rows - 1), UInt8(columns - 1), 0x11]
    }
    static func windows(_ command: UInt8, _ ids: Int...) -> [UInt8] { [command, ids.reduce(0) { $0 | UInt8(1 << $1) }] }
    static func penLocation(row: Int, column: Int) -> [UInt8] { [0x92, UInt8(row), UInt8(column)] }
    static let whitePen: [UInt8] = [0x91, 0x2A, 0x00, 0x00]
    static let italicPen: [UInt8] = [0x90, 0x05, 0x80]
    static func text(_ s: String) -> [UInt8] { Array(s.utf8) }

    var binFile: [UInt8] { RCWTHeader.bytes + records.flatMap(\.bytes) }
}
