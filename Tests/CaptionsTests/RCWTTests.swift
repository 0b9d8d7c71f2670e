import Captions
import Foundation
import SupportKit
import Testing

/// Splits a capture of CCExtractor's `-sendto` client into blocks (test-only; the server has
/// its own framer): 1 command byte, 10-byte NUL-padded ASCII decimal length, data, CRLF.
func sendtoBlocks(_ bytes: [UInt8]) throws -> [(command: UInt8, data: ArraySlice<UInt8>)] {
    struct BadCapture: Error {}
    var blocks: [(UInt8, ArraySlice<UInt8>)] = []
    var i = 0
    while i < bytes.count {
        guard bytes.count - i >= 11 else { throw BadCapture() }
        let command = bytes[i]
        let digits = bytes[(i + 1)..<(i + 11)].prefix { $0 != 0 }
        guard let length = Int(String(decoding: digits, as: UTF8.self)) else { throw BadCapture() }
        let start = i + 11
        guard bytes.count >= start + length + 2, bytes[start + length] == 13, bytes[start + length + 1] == 10 else { throw BadCapture() }
        blocks.append((command, bytes[start..<(start + length)]))
        i = start + length + 2
    }
    return blocks
}

/// The `.bin` stream a capture carries: BIN_HEADER data then all BIN_DATA data.
func rebuiltStream(_ capture: [UInt8]) throws -> [UInt8] {
    var out: [UInt8] = []
    for b in try sendtoBlocks(capture) where b.command == 5 || b.command == 6 { out += b.data }
    return out
}

@Suite("RCWT reading")
struct RCWTTests {
    @Test("file reader: header checked, records parsed")
    func fileReader() throws {
        var b = StreamBuilder()
        b.text("HELLO")
        let records = try RCWTFileReader(bytes: b.binFile).records()
        #expect(records == b.records)
        #expect(throws: RCWTError.self) { try RCWTFileReader(bytes: [0x00, 0x01, 0x02] + b.binFile.dropFirst(3)).records() }
        #expect(throws: RCWTError.self) { try RCWTFileReader(bytes: b.binFile.dropLast(2)).records() }
        #expect(throws: RCWTError.self) { try RCWTFileReader(bytes: []).records() }
        #expect(throws: Never.self) { try RCWTRecordAssembler.validateHeader(RCWTRecordAssembler.fileHeader) }
        #expect(throws: RCWTError.self) { try RCWTRecordAssembler.validateHeader([UInt8]("GET / HTTP".utf8) + [0]) }
    }

    /// the.tudors.bin's records, and its bytes after the file header (what a tuner streams).
    private func tudorsRecordsAndBody() throws -> (records: [RCWTRecord], body: [UInt8]) {
        let file = [UInt8](try Fixtures.sharedData("the.tudors.bin"))
        return (try RCWTFileReader(bytes: file).records(), Array(file.dropFirst(RCWTHeader.count)))
    }

    @Test("assembler: the same records whatever the cut (random pieces of 1 to 4096 bytes)",
          .enabled(if: Fixtures.shouldRunSharedTests, "shared fixtures needed"))
    func randomCuts() throws {
        let (expected, body) = try tudorsRecordsAndBody()
        var rng = SystemRandomNumberGenerator()
        for round in 0..<20 {
            var assembler = RCWTRecordAssembler()
            var got: [RCWTRecord] = []
            var i = 0
            let maxPiece = round < 10 ? 16 : 4096
            while i < body.count {
                let n = min(Int.random(in: 1...maxPiece, using: &rng), body.count - i)
                got += try assembler.append(body[i..<(i + n)])
                i += n
            }
            #expect(got == expected)
            #expect(assembler.pendingByteCount == 0)
        }
    }

    @Test("assembler: the record bytes it lends are the wire bytes, whatever the split",
          .enabled(if: Fixtures.shouldRunSharedTests, "shared fixtures needed"))
    func recordBytesAreWireBytes() throws {
        let (expected, body) = try tudorsRecordsAndBody()
        for maxPiece in [1, 7, 13, 4096] {
            var assembler = RCWTRecordAssembler()
            var joined: [UInt8] = []
            var records: [RCWTRecord] = []
            var i = 0
            while i < body.count {
                let n = min(maxPiece, body.count - i)
                try assembler.appendRecordBytes(body[i..<(i + n)]) { (raw: RCWTRecordBytes) throws(RCWTError) in
                    joined += raw.bytes
                    #expect(raw.tripletBytes.count == raw.bytes.count - 10)
                    records.append(RCWTRecord(timestamp: raw.timestamp, triplets: stride(from: 0, to: raw.tripletBytes.count, by: 3).map {
                        CCTriplet(info: raw.tripletBytes[$0], data1: raw.tripletBytes[$0 + 1], data2: raw.tripletBytes[$0 + 2])
                    }))
                }
                i += n
            }
            #expect(joined == body, "pieces of at most \(maxPiece) bytes")
            #expect(records == expected)
        }
    }

    @Test("assembler: the client's two-block layout (10-byte header block, then triplets) re-joins",
          .enabled(if: Fixtures.shouldRunSharedTests, "shared fixtures needed"))
    func clientBlocks() throws {
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        let blocks = try sendtoBlocks(capture)
        #expect(blocks.prefix(3).map(\.command) == [2, 4, 5])
        try RCWTRecordAssembler.validateHeader(blocks[2].data)
        var assembler = RCWTRecordAssembler()
        var records: [RCWTRecord] = []
        for b in blocks.dropFirst(3) {
            #expect(b.command == 6)
            records += try assembler.append(b.data)
        }
        let original = try RCWTFileReader(bytes: [UInt8](try Fixtures.sharedData("the.tudors.bin"))).records()
        #expect(Array(records.dropLast()) == original)
        #expect(records.last?.timestamp == original.last!.timestamp + 333)
    }

    @Test("assembler: a huge triplet count is a typed error, not an allocation")
    func hugeCount() {
        var assembler = RCWTRecordAssembler(maxTriplets: 1024)
        let header: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF]
        #expect(throws: RCWTError.tooManyTriplets(count: 65535, limit: 1024)) { try assembler.append(header) }
        // Split across calls, the header is still checked as soon as it is complete.
        var split = RCWTRecordAssembler(maxTriplets: 1024)
        #expect(throws: Never.self) { try split.append(header.prefix(9)) }
        #expect(throws: RCWTError.self) { try split.append(header.suffix(1)) }
        #expect(split.pendingByteCount <= 10)
    }

    @Test("assembler: random garbage never crashes; it either parses or fails with RCWTError")
    func garbage() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var assembler = RCWTRecordAssembler(maxTriplets: 64)
            let junk = (0..<Int.random(in: 0...2000, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            do {
                for r in try assembler.append(junk) { #expect(r.triplets.count <= 64) }
            } catch {
                if case .tooManyTriplets(_, let limit) = error { #expect(limit == 64) } else { Issue.record("unexpected \(error)") }
            }
            #expect(assembler.pendingByteCount < 10 + 3 * 64)
        }
    }

    @Test("error messages say what is wrong")
    func messages() {
        #expect(RCWTError.badHeader([0x47, 0x45]).description.contains("not an RCWT stream"))
        #expect(RCWTError.truncatedRecord(offset: 20, needed: 3).description.contains("truncated"))
        #expect(RCWTError.tooManyTriplets(count: 9, limit: 1).description.contains("limit"))
    }
}
