/// One caption-data triplet of an RCWT record: `cc_info`, then two data bytes.
///
/// `cc_info` bit 2 is cc_valid, bits 0-1 are cc_type (0/1: NTSC field 1/2 pairs, 2/3: CEA-708).
/// The data bytes still carry their odd-parity bit; the 608 decoder checks and strips it.
public struct CCTriplet: Sendable, Hashable {
    public var info: UInt8
    public var data1: UInt8
    public var data2: UInt8

    public init(info: UInt8, data1: UInt8, data2: UInt8) {
        self.info = info
        self.data1 = data1
        self.data2 = data2
    }

    /// cc_valid: only valid triplets carry data.
    @inlinable public var isValid: Bool { info & 0x04 != 0 }
    /// What the two data bytes are.
    @inlinable public var type: CCType { CCType(rawValue: info & 0x03)! }

    /// A CEA-608 byte pair (field 1 or 2) that the decoder times and reads: valid, not padding
    /// (the same test as the caption clock's, `FrameClock.counter(for:)`).
    public var isCEA608Pair: Bool {
        switch FrameClock.counter(for: self) {
        case .field1?, .field2?: true
        default: false
        }
    }
}

/// The `cc_type` of a triplet.
public enum CCType: UInt8, Sendable, Hashable {
    /// CEA-608 field 1: channels CC1/CC2 (and T1/T2).
    case ntscField1 = 0
    /// CEA-608 field 2: channels CC3/CC4 (T3/T4) and XDS.
    case ntscField2 = 1
    /// CEA-708 DTVCC packet data.
    case dtvccData = 2
    /// CEA-708 DTVCC packet start.
    case dtvccStart = 3
}

/// One RCWT record: the presentation time of its triplets and the triplets.
public struct RCWTRecord: Sendable, Hashable {
    /// Presentation time in milliseconds, as recorded (not rebased).
    public var timestamp: Int64
    public var triplets: [CCTriplet]

    public init(timestamp: Int64, triplets: [CCTriplet]) {
        self.timestamp = timestamp
        self.triplets = triplets
    }

    /// The record in its binary form (10-byte header then 3 bytes per triplet).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(10 + 3 * triplets.count)
        let t = UInt64(bitPattern: timestamp)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: t >> (8 * UInt64(i)))) }
        out.append(UInt8(truncatingIfNeeded: triplets.count))
        out.append(UInt8(truncatingIfNeeded: triplets.count >> 8))
        for t in triplets { out.append(t.info); out.append(t.data1); out.append(t.data2) }
        return out
    }
}

/// One complete record as it is on the wire (8-byte timestamp, 2-byte count, 3 bytes per
/// triplet), borrowed from the reader's buffer: valid only during the callback that receives it.
public struct RCWTRecordBytes {
    /// The whole record, header included (what a `.bin` archive stores).
    public let bytes: UnsafeBufferPointer<UInt8>

    /// Presentation time in milliseconds, as recorded.
    public var timestamp: Int64 {
        var ts: UInt64 = 0
        for k in 0..<8 { ts |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        return Int64(bitPattern: ts)
    }

    /// The triplets' bytes, 3 per triplet.
    public var tripletBytes: UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: bytes[RCWTRecordAssembler.recordHeaderSize...])
    }

    /// A copy as an `RCWTRecord`.
    public var record: RCWTRecord {
        var triplets: [CCTriplet] = []
        let raw = tripletBytes
        triplets.reserveCapacity(raw.count / 3)
        var p = 0
        while p + 3 <= raw.count {
            triplets.append(CCTriplet(info: raw[p], data1: raw[p + 1], data2: raw[p + 2]))
            p += 3
        }
        return RCWTRecord(timestamp: timestamp, triplets: triplets)
    }
}

/// Why RCWT bytes could not be read.
public enum RCWTError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The 11-byte file header is not `CC CC ED ...`.
    case badHeader([UInt8])
    /// The data ends inside a record (at `offset`, wanting `needed` more bytes).
    case truncatedRecord(offset: Int, needed: Int)
    /// A record announces more triplets than the configured bound (garbage or a hostile peer).
    case tooManyTriplets(count: Int, limit: Int)

    public var description: String {
        switch self {
        case .badHeader(let bytes):
            let hex = bytes.map { b in
                let h = String(b, radix: 16, uppercase: true)
                return h.count == 1 ? "0" + h : h
            }.joined(separator: " ")
            return "not an RCWT stream: header is [\(hex)], expected CC CC ED followed by the format version"
        case .truncatedRecord(let offset, let needed):
            return "RCWT data ends inside the record at byte \(offset) (\(needed) more bytes were expected); the recording is truncated"
        case .tooManyTriplets(let count, let limit):
            return "RCWT record announces \(count) triplets, more than the limit of \(limit); the stream is corrupt or not RCWT"
        }
    }
}

/// The RCWT file header and its check.
public enum RCWTHeader {
    /// The header CCExtractor writes (and sends as BIN_HEADER): magic `CC CC ED`, creating program
    /// `CC 00 50` (CCExtractor 0.50+ layout), format version `00 01`, then 3 reserved bytes.
    public static let bytes: [UInt8] = [0xCC, 0xCC, 0xED, 0xCC, 0x00, 0x50, 0x00, 0x01, 0x00, 0x00, 0x00]
    public static let count = 11

    /// Checks an 11-byte header: the magic `CC CC ED` and format version 1 decide; the creating
    /// program bytes are informative only (other writers put their own id there).
    public static func validate<C: Collection>(_ header: C) throws(RCWTError) where C.Element == UInt8 {
        let h = Array(header.prefix(16))
        guard header.count == count, h.count == count, h[0] == 0xCC, h[1] == 0xCC, h[2] == 0xED, h[6] == 0x00, h[7] == 0x01 else {
            throw .badHeader(h)
        }
    }
}

/// Reads a whole `.bin` recording (header + records) held in memory.
public struct RCWTFileReader: Sendable {
    public let bytes: [UInt8]

    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        self.bytes = Array(bytes)
    }

    /// All records, in order. Throws on a bad header or a record cut short.
    public func records() throws(RCWTError) -> [RCWTRecord] {
        var out: [RCWTRecord] = []
        try forEachRecord { out.append($0) }
        return out
    }

    /// Calls `body` with each record's timestamp and raw triplet bytes, allocating nothing (but
    /// for a record cut short at the end). Throws on a bad header or a record cut short (after
    /// the complete records were visited).
    public func forEachRawRecord(_ body: (Int64, UnsafeBufferPointer<UInt8>) -> Void) throws(RCWTError) {
        try RCWTHeader.validate(bytes.prefix(RCWTHeader.count))
        try forEachRecordBytes { (raw: RCWTRecordBytes) in body(raw.timestamp, raw.tripletBytes) }
    }

    /// Calls `body` with each record in order, without keeping them all (for large files).
    public func forEachRecord(_ body: (RCWTRecord) throws(RCWTError) -> Void) throws(RCWTError) {
        guard bytes.count >= RCWTHeader.count else {
            if bytes.count >= 3, !(bytes[0] == 0xCC && bytes[1] == 0xCC && bytes[2] == 0xED) {
                throw .badHeader(Array(bytes.prefix(RCWTHeader.count)))
            }
            throw .truncatedRecord(offset: 0, needed: RCWTHeader.count - bytes.count)
        }
        try RCWTHeader.validate(bytes[0..<RCWTHeader.count])
        try forEachRecordBytes { (raw: RCWTRecordBytes) throws(RCWTError) in try body(raw.record) }
    }

    /// The records after the (already checked) header, as the assembler lends them; a record cut
    /// short at the end is a `truncatedRecord` error.
    private func forEachRecordBytes(_ body: (RCWTRecordBytes) throws(RCWTError) -> Void) throws(RCWTError) {
        var assembler = RCWTRecordAssembler(maxTriplets: Int(UInt16.max))
        var failure: RCWTError?
        bytes.withUnsafeBufferPointer { buf in
            do throws(RCWTError) {
                try assembler.appendBuffer(UnsafeBufferPointer(rebasing: buf[RCWTHeader.count...]), emit: body)
            } catch { failure = error }
        }
        if let failure { throw failure }
        if assembler.pendingByteCount > 0 {
            throw .truncatedRecord(offset: bytes.count - assembler.pendingByteCount, needed: assembler.bytesNeeded)
        }
    }
}

/// Re-joins RCWT records from bytes that arrive in arbitrary pieces.
///
/// CCExtractor's `-sendto` client sends each record as two blocks (the 10-byte header, then the
/// triplets) and a TCP reader may cut them anywhere, so the assembler keeps at most one partial
/// record. `maxTriplets` bounds that partial record (and so the memory per tuner): real streams
/// carry at most a few dozen triplets per record.
public struct RCWTRecordAssembler: Sendable {
    public static let fileHeader: [UInt8] = RCWTHeader.bytes
    public static let recordHeaderSize = 10

    /// The largest triplet count accepted in one record.
    public let maxTriplets: Int
    private var pending: [UInt8] = []
    /// Total bytes consumed so far (for error offsets).
    public private(set) var offset: Int = 0

    public init(maxTriplets: Int = 1024) {
        self.maxTriplets = maxTriplets
    }

    /// Checks BIN_HEADER data (the 11-byte RCWT file header).
    public static func validateHeader<C: Collection>(_ header: C) throws(RCWTError) where C.Element == UInt8 {
        try RCWTHeader.validate(header)
    }

    /// Bytes held of a record not yet complete.
    public var pendingByteCount: Int { pending.count }

    /// Bytes still needed to complete the pending record (0 when nothing is pending).
    public var bytesNeeded: Int {
        if pending.isEmpty { return 0 }
        if pending.count < Self.recordHeaderSize { return Self.recordHeaderSize - pending.count }
        let n = Int(pending[8]) | Int(pending[9]) << 8
        return Self.recordHeaderSize + 3 * n - pending.count
    }

    /// Feeds bytes; returns the records they complete.
    public mutating func append<C: Collection>(_ bytes: C) throws(RCWTError) -> [RCWTRecord] where C.Element == UInt8 {
        var out: [RCWTRecord] = []
        try append(bytes) { out.append($0) }
        return out
    }

    /// Feeds bytes; calls `emit` for each record they complete (no intermediate array).
    public mutating func append<C: Collection>(_ bytes: C, emit: (RCWTRecord) throws(RCWTError) -> Void) throws(RCWTError) where C.Element == UInt8 {
        try appendRecordBytes(bytes) { (raw: RCWTRecordBytes) throws(RCWTError) in try emit(raw.record) }
    }

    /// Feeds bytes; calls `emit` with each completed record as it is on the wire, without building
    /// an `RCWTRecord`. The server's path: a tuner sends ~30 records a second, and an array of
    /// triplets per record was an allocation and a free per record on the event loops.
    public mutating func appendRecordBytes<C: Collection>(_ bytes: C, emit: (RCWTRecordBytes) throws(RCWTError) -> Void) throws(RCWTError) where C.Element == UInt8 {
        var failure: RCWTError?
        let handled: Void? = bytes.withContiguousStorageIfAvailable { buf in
            do throws(RCWTError) { try self.appendBuffer(buf, emit: emit) } catch { failure = error }
        }
        if handled == nil {
            Array(bytes).withUnsafeBufferPointer { buf in
                do throws(RCWTError) { try self.appendBuffer(buf, emit: emit) } catch { failure = error }
            }
        }
        if let failure { throw failure }
    }

    /// `appendRecordBytes` for bytes already contiguous: not generic, so a caller in another
    /// module (the server, for every record) runs this compiled code, not the unspecialized
    /// generic one with its dynamic `withContiguousStorageIfAvailable`.
    public mutating func appendRecordBuffer(_ buf: UnsafeBufferPointer<UInt8>, emit: (RCWTRecordBytes) throws(RCWTError) -> Void) throws(RCWTError) {
        try appendBuffer(buf, emit: emit)
    }

    mutating func appendBuffer(_ buf: UnsafeBufferPointer<UInt8>, emit: (RCWTRecordBytes) throws(RCWTError) -> Void) throws(RCWTError) {
        var i = 0
        let end = buf.count
        // Complete a pending partial record first (the client sends each record's header and
        // triplets as two blocks, so nearly every record passes through here).
        while !pending.isEmpty && i < end {
            let need = bytesNeeded
            let take = min(need, end - i)
            pending.append(contentsOf: UnsafeBufferPointer(rebasing: buf[i..<(i + take)]))
            i += take
            if pending.count == Self.recordHeaderSize {
                try checkCount(Int(pending[8]) | Int(pending[9]) << 8)
            }
            if pending.count >= Self.recordHeaderSize && bytesNeeded == 0 {
                offset += pending.count
                // The buffer keeps its capacity (a few dozen bytes): the next record needs it again.
                defer { pending.removeAll(keepingCapacity: true) }
                try pending.withUnsafeBufferPointer { (record: UnsafeBufferPointer<UInt8>) throws(RCWTError) in
                    try emit(RCWTRecordBytes(bytes: record))
                }
            }
        }
        // Whole records straight from the buffer.
        while end - i >= Self.recordHeaderSize {
            let n = Int(buf[i + 8]) | Int(buf[i + 9]) << 8
            try checkCount(n)
            let size = Self.recordHeaderSize + 3 * n
            guard end - i >= size else { break }
            let record = UnsafeBufferPointer(rebasing: buf[i..<(i + size)])
            i += size
            offset += size
            try emit(RCWTRecordBytes(bytes: record))
        }
        if i < end {
            pending.append(contentsOf: UnsafeBufferPointer(rebasing: buf[i..<end]))
        }
    }

    private func checkCount(_ n: Int) throws(RCWTError) {
        if n > maxTriplets { throw .tooManyTriplets(count: n, limit: maxTriplets) }
    }
}
