import Captions
import NIOCore
import TunerServer

/// The bytes of the abusive tuners' attacks (`AbusiveTuners`), built once so that an attack costs
/// the kernel's send and not the building of its bytes: an attacker's CPU must not starve the
/// server it measures on a shared machine.
///
/// The bytes are CCExtractor's `-sendto` protocol, built by `ClientBytes` as the probes' are.
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
        hello = ClientBytes.preamble(description: "abuse")
        var floodTriplets = [CCTriplet(info: 0xFC, data1: 0x14, data2: 0x25)]
        for i in 0..<15 {
            floodTriplets.append(CCTriplet(info: 0xFC, data1: 0x41 + UInt8(i), data2: 0x42))
            floodTriplets.append(CCTriplet(info: 0xFC, data1: 0x14, data2: 0x2D))
        }
        flood = StampedChunk(records: Array(repeating: floodTriplets, count: Self.recordsPerChunk))
        names = (0..<2).map { parity in
            StampedChunk(records: (0..<Self.recordsPerChunk).map { k in Self.programNamePacket("PROGRAM \((parity + k) % 2)") })
        }
        let stamps: [Int64] = [.max, .min, .min + 1]
        let extremeTriplets = [CCTriplet(info: 0xFC, data1: 0x14, data2: 0x2D), CCTriplet(info: 0xFC, data1: 0x41, data2: 0x42)]
        extreme = (0..<3).map { first in
            (0..<Self.recordsPerChunk).flatMap { k in ClientBytes.record(stamps[(first + k) % 3], extremeTriplets) }
        }
        trickle = BlockCommand.password.block(Array(repeating: 0x78, count: 40))
    }

    /// Field 2 triplets of one XDS program-name packet (class 1, type 3) with its checksum.
    static func programNamePacket(_ name: String) -> [CCTriplet] {
        var data: [UInt8] = [0x01, 0x03] + Array(name.utf8)
        if data.count % 2 == 1 { data.append(0x20) }
        data.append(0x0F)
        let sum = data.reduce(0) { $0 + Int($1) }
        data.append(UInt8((128 - sum % 128) % 128))
        return stride(from: 0, to: data.count, by: 2).map { CCTriplet(info: 0xFD, data1: data[$0], data2: data[$0 + 1]) }
    }
}

/// Records whose bytes never change but for their timestamps: the bytes once, and where each
/// record's 8-byte little-endian timestamp sits, to be patched in a copy.
public struct StampedChunk: Sendable {
    public let template: [UInt8]
    /// Offset of each record's timestamp in `template`.
    public let stampOffsets: [Int]

    init(records: [[CCTriplet]]) {
        var bytes: [UInt8] = []
        var offsets: [Int] = []
        for triplets in records {
            offsets.append(bytes.count + 11)   // after the block's command and length
            bytes += ClientBytes.record(0, triplets)
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
