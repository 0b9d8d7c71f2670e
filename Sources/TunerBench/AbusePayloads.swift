import NIOCore

/// The bytes of the abusive tuners' attacks (`AbusiveTuners`), built once so that an attack costs
/// the kernel's send and not the building of its bytes: an attacker's CPU must not starve the
/// server it measures on a shared machine.
///
/// Byte formats are those of CCExtractor's `-sendto` protocol: a block is
/// `[command][10-byte NUL-padded decimal length][data]\r\n`; a record is split into a 10-byte
/// BIN_DATA block (timestamp, triplet count) and a BIN_DATA block with the triplets.
public struct AbusePayloads: Sendable {
    /// PASSWORD (empty), CC_DESC "abuse", BIN_HEADER: what a client says before its records.
    public let hello: [UInt8]
    /// 64 roll-up records, each 15 caption lines in field 1 (a line per two pairs).
    public let flood: StampedChunk
    /// 64 records of XDS program-name packets, alternating two names; by chunk parity (the name
    /// of record k of chunk i is `i + k` mod 2).
    public let names: [StampedChunk]
    /// 64 records with the extreme timestamps (Int64.max, Int64.min, Int64.min + 1) in turn; chunk
    /// i starts at the stamp `i` mod 3.
    public let extreme: [[UInt8]]
    /// A PASSWORD block with 40 bytes of data, sent a byte at a time by the trickle attack.
    public let trickle: [UInt8]

    /// Timestamps of flood record k in chunk i: i * 2112 + k * 33 (ms; 64 records of 33 ms).
    public static let floodChunkMilliseconds: Int64 = 2112
    public static let floodRecordMilliseconds: Int64 = 33
    public static let recordsPerChunk = 64

    public init() {
        hello = Self.block(2) + Self.block(4, Array("abuse".utf8)) + Self.block(5, Self.rcwtHeader)
        var floodTriplets: [[UInt8]] = [[0xFC, 0x14, 0x25]]
        for i in 0..<15 {
            floodTriplets.append([0xFC, 0x41 + UInt8(i), 0x42])
            floodTriplets.append([0xFC, 0x14, 0x2D])
        }
        flood = StampedChunk(records: Array(repeating: floodTriplets, count: Self.recordsPerChunk))
        names = (0..<2).map { parity in
            StampedChunk(records: (0..<Self.recordsPerChunk).map { k in Self.programNamePacket("PROGRAM \((parity + k) % 2)") })
        }
        let stamps: [Int64] = [.max, .min, .min + 1]
        let extremeTriplets: [[UInt8]] = [[0xFC, 0x14, 0x2D], [0xFC, 0x41, 0x42]]
        extreme = (0..<3).map { first in
            (0..<Self.recordsPerChunk).flatMap { k in Self.record(stamps[(first + k) % 3], extremeTriplets) }
        }
        trickle = Self.block(2, Array(repeating: 0x78, count: 40))
    }

    /// The RCWT header of a BIN_HEADER block (CCExtractor's, version 1).
    static let rcwtHeader: [UInt8] = [0xCC, 0xCC, 0xED, 0xCC, 0x00, 0x50, 0x00, 0x01, 0x00, 0x00, 0x00]

    /// `[command][length, decimal, NUL-padded to 10 bytes][data]\r\n`.
    public static func block(_ command: UInt8, _ data: [UInt8] = []) -> [UInt8] {
        var length = Array(String(data.count).utf8)
        length += Array(repeating: 0, count: 10 - length.count)
        return [command] + length + data + [0x0D, 0x0A]
    }

    /// One record as the client sends it: the first 10 bytes (timestamp, count) in one BIN_DATA
    /// block, the triplets in another.
    public static func record(_ timestamp: Int64, _ triplets: [[UInt8]]) -> [UInt8] {
        var raw: [UInt8] = []
        withUnsafeBytes(of: timestamp.littleEndian) { raw += $0 }
        withUnsafeBytes(of: UInt16(triplets.count).littleEndian) { raw += $0 }
        raw += triplets.joined()
        return block(6, Array(raw[..<10])) + block(6, Array(raw[10...]))
    }

    /// Field 2 triplets of one XDS program-name packet (class 1, type 3) with its checksum.
    static func programNamePacket(_ name: String) -> [[UInt8]] {
        var data: [UInt8] = [0x01, 0x03] + Array(name.utf8)
        if data.count % 2 == 1 { data.append(0x20) }
        data.append(0x0F)
        let sum = data.reduce(0) { $0 + Int($1) }
        data.append(UInt8((128 - sum % 128) % 128))
        return stride(from: 0, to: data.count, by: 2).map { [0xFD, data[$0], data[$0 + 1]] }
    }
}

/// Records whose bytes never change but for their timestamps: the bytes once, and where each
/// record's 8-byte little-endian timestamp sits, to be patched in a copy.
public struct StampedChunk: Sendable {
    public let template: [UInt8]
    /// Offset of each record's timestamp in `template`.
    public let stampOffsets: [Int]

    init(records: [[[UInt8]]]) {
        var bytes: [UInt8] = []
        var offsets: [Int] = []
        for triplets in records {
            offsets.append(bytes.count + 11)   // after the block's command and length
            bytes += AbusePayloads.record(0, triplets)
        }
        template = bytes
        stampOffsets = offsets
    }

    /// The chunk with record k stamped `first + k * step`, written at the end of `buffer`.
    public func write(into buffer: inout ByteBuffer, first: Int64, step: Int64) {
        let base = buffer.writerIndex
        buffer.writeBytes(template)
        for (k, offset) in stampOffsets.enumerated() {
            buffer.setInteger(first &+ Int64(k) &* step, at: base + offset, endianness: .little)
        }
    }
}
