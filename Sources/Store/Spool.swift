#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The durable, append-only spool of writes made while the database was unreachable.
///
/// File layout: records of `[UInt32 LE payload length][UInt32 LE CRC-32 of payload][JSON
/// payload]`, each fsync'd before the write is acknowledged. A record cut short by a crash (or
/// failing its checksum) ends the valid part; the file is truncated there on open. Records are
/// replayed in order; the file is truncated to empty once all are applied. A crash in the middle
/// of a replay re-applies a prefix, which the operations' idempotency makes harmless.
///
/// Used only from the writer's `DatabaseThread`; an exclusive `flock` keeps a second ccr process
/// from sharing the file.
final class Spool {
    let path: String
    private var descriptor: Int32
    /// Offset of the first record not yet applied.
    private var readOffset: UInt64 = 0
    private var endOffset: UInt64 = 0
    /// Records appended and not yet applied.
    private(set) var pendingCount = 0
    /// Bytes of records not yet applied at most: a long outage must not fill the disk the
    /// archive also needs. Past it, writes fail (the archive still has the captions).
    let limitBytes: UInt64

    init(directory: String, limitBytes: UInt64 = StoreOptions.defaultSpoolLimitBytes) throws {
        self.limitBytes = limitBytes
        path = directory.hasSuffix("/") ? directory + "ccr-spool.log" : directory + "/ccr-spool.log"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw StoreError.spool(path: directory, reason: "cannot create the spool folder: \(fileErrorReason(error))")
        }
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw StoreError.spool(path: path, reason: "open: \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            Glibc.close(descriptor)
            throw StoreError.spool(path: path, reason: "in use by another ccr process (locked)")
        }
        try recover()
    }

    deinit { close() }

    /// Closes the file and releases the lock; later calls fail.
    func close() {
        if descriptor >= 0 { Glibc.close(descriptor) }
        descriptor = -1
    }

    /// Counts the valid records and cuts off a torn tail.
    private func recover() throws {
        var offset: UInt64 = 0
        var count = 0
        while let (_, next) = try readRecord(at: offset) {
            offset = next
            count += 1
        }
        let size = UInt64(lseek(descriptor, 0, SEEK_END))
        if size != offset {
            guard ftruncate(descriptor, off_t(offset)) == 0, fsync(descriptor) == 0 else {
                throw StoreError.spool(path: path, reason: "cannot cut the torn tail: \(String(cString: strerror(errno)))")
            }
        }
        endOffset = offset
        pendingCount = count
    }

    /// Appends one operation and fsyncs it.
    func append(_ operation: WriteOperation) throws {
        let payload: Data
        do { payload = try JSONEncoder().encode(operation) } catch {
            throw StoreError.spool(path: path, reason: "cannot encode a write: \(error)")
        }
        var record = Data(capacity: payload.count + 8)
        withUnsafeBytes(of: UInt32(payload.count).littleEndian) { record.append(contentsOf: $0) }
        withUnsafeBytes(of: CRC32.checksum(payload).littleEndian) { record.append(contentsOf: $0) }
        record.append(payload)
        guard endOffset - readOffset + UInt64(record.count) <= limitBytes else {
            throw StoreError.spool(path: path, reason: """
                full: \(endOffset - readOffset) bytes of writes wait for the database (limit \(limitBytes), \
                [database] spool_limit); writes are dropped until it is back
                """)
        }
        try record.withUnsafeBytes { raw in
            var written = 0
            while written < raw.count {
                let n = pwrite(descriptor, raw.baseAddress! + written, raw.count - written, off_t(endOffset) + off_t(written))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw StoreError.spool(path: path, reason: "write: \(String(cString: strerror(errno)))")
                }
                written += n
            }
        }
        guard fsync(descriptor) == 0 else {
            throw StoreError.spool(path: path, reason: "fsync: \(String(cString: strerror(errno)))")
        }
        endOffset += UInt64(record.count)
        pendingCount += 1
    }

    /// Up to `limit` pending operations from the oldest, with the offset after the last one.
    func peek(limit: Int) throws -> (operations: [WriteOperation], end: UInt64) {
        var operations: [WriteOperation] = []
        var offset = readOffset
        while operations.count < limit, offset < endOffset, let (payload, next) = try readRecord(at: offset) {
            do { operations.append(try JSONDecoder().decode(WriteOperation.self, from: payload)) } catch {
                throw StoreError.spool(path: path, reason: "unreadable record at offset \(offset): \(error)")
            }
            offset = next
        }
        return (operations, offset)
    }

    /// Marks operations up to `offset` applied; empties the file when everything is.
    func markApplied(upTo offset: UInt64, count: Int) throws {
        readOffset = offset
        pendingCount -= count
        if readOffset >= endOffset {
            guard ftruncate(descriptor, 0) == 0, fsync(descriptor) == 0 else {
                throw StoreError.spool(path: path, reason: "truncate: \(String(cString: strerror(errno)))")
            }
            readOffset = 0
            endOffset = 0
            pendingCount = 0
        }
    }

    /// The record at `offset` (payload, next offset), or nil at the end or at a torn/corrupt record.
    private func readRecord(at offset: UInt64) throws -> (Data, UInt64)? {
        var header = [UInt8](repeating: 0, count: 8)
        guard try readFully(&header, at: offset) else { return nil }
        let length = UInt32(header[0]) | UInt32(header[1]) << 8 | UInt32(header[2]) << 16 | UInt32(header[3]) << 24
        let checksum = UInt32(header[4]) | UInt32(header[5]) << 8 | UInt32(header[6]) << 16 | UInt32(header[7]) << 24
        guard length <= 64 << 20 else { return nil }
        var payload = [UInt8](repeating: 0, count: Int(length))
        guard try readFully(&payload, at: offset + 8) else { return nil }
        let data = Data(payload)
        guard CRC32.checksum(data) == checksum else { return nil }
        return (data, offset + 8 + UInt64(length))
    }

    private func readFully(_ buffer: inout [UInt8], at offset: UInt64) throws -> Bool {
        var done = 0
        while done < buffer.count {
            let n = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + done, $0.count - done, off_t(offset) + off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError.spool(path: path, reason: "read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return false }
            done += n
        }
        return true
    }
}

/// CRC-32 (IEEE 802.3, as zlib) for spool records.
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ data: Data) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
