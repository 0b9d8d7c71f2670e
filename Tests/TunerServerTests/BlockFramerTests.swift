import Testing
@testable import TunerServer

/// Collects a framer's events as plain values.
private struct Recorded: Equatable {
    var blocks: [(BlockCommand, [UInt8])] = []
    var open: (BlockCommand, Int, [UInt8])?
    static func == (a: Recorded, b: Recorded) -> Bool {
        a.blocks.map { "\($0.0)\($0.1)" } == b.blocks.map { "\($0.0)\($0.1)" }
    }
}

private func frame(_ chunks: [[UInt8]]) throws -> [(BlockCommand, [UInt8])] {
    var framer = BlockFramer()
    var out: [(BlockCommand, [UInt8])] = []
    var current: (BlockCommand, Int, [UInt8])?
    for chunk in chunks {
        try framer.feed(chunk) { event in
            switch event {
            case .begin(let c, let length): current = (c, length, [])
            case .payload(_, let bytes): current!.2 += bytes
            case .end(let c):
                #expect(current?.0 == c)
                #expect(current?.1 == current?.2.count)
                out.append((c, current!.2))
                current = nil
            }
        }
    }
    #expect(framer.isAtBlockBoundary)
    return out
}

@Suite struct BlockFramerTests {
    let stream: [UInt8] = BlockCommand.password.block(Array("s3cret".utf8))
        + BlockCommand.ccDescription.block([])
        + BlockCommand.binHeader.block([0xCC, 0xCC, 0xED, 0xCC, 0x00, 0x50, 0x00, 0x01, 0x00, 0x00, 0x00])
        + BlockCommand.binData.block([1, 2, 3, 4, 5, 6, 7, 8, 1, 0])
        + BlockCommand.binData.block([0x04, 0x80, 0x80])
        + BlockCommand.ping.block()

    @Test func blockLayoutIsCommandNulPaddedDecimalLengthDataCRLF() {
        #expect(BlockCommand.binData.block([9, 9, 9]) == [6, 0x33, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 13, 10])
    }

    @Test func wholeStreamGivesEveryBlock() throws {
        let blocks = try frame([stream])
        #expect(blocks.map(\.0) == [.password, .ccDescription, .binHeader, .binData, .binData, .ping])
        #expect(blocks[0].1 == Array("s3cret".utf8))
        #expect(blocks[1].1 == [])
        #expect(blocks[4].1 == [0x04, 0x80, 0x80])
    }

    @Test func everySplitGivesTheSameBlocks() throws {
        let whole = try frame([stream])
        for cut in 1..<stream.count {
            let parts = try frame([Array(stream[..<cut]), Array(stream[cut...])])
            #expect(parts.map { "\($0.0)\($0.1)" } == whole.map { "\($0.0)\($0.1)" }, "cut at \(cut)")
        }
        let bytewise = try frame(stream.map { [$0] })
        #expect(bytewise.map { "\($0.0)\($0.1)" } == whole.map { "\($0.0)\($0.1)" })
    }

    private func error(_ bytes: [UInt8]) -> FramingError? {
        var framer = BlockFramer()
        do {
            try framer.feed(bytes) { _ in }
            return nil
        } catch let e as FramingError {
            // A failed framer stays failed.
            #expect(throws: FramingError.self) { try framer.feed([2]) { _ in } }
            return e
        } catch { return nil }
    }

    @Test func unknownCommandsAreRejected() {
        #expect(error([0x99]) == .unknownCommand(0x99))
        #expect(error([0]) == .unknownCommand(0))
        // Server-to-client commands are not accepted from a tuner.
        #expect(error([54]) == .unknownCommand(54))
        #expect(error(Array("GET / HTTP/1.1\r\n".utf8)) == .unknownCommand(UInt8(ascii: "G")))
    }

    @Test func nonDecimalLengthsAreRejected() {
        #expect(error([6, 0x31, 0x41]) == .lengthNotDecimal([0x31, 0x41]))
        #expect(error([6, 0, 0]) == .lengthNotDecimal([0]))
        #expect(error([6, 0x31, 0, 0x32]) == .lengthNotDecimal([0x31, 0, 0x32]))
        #expect(error([6, 0x2D, 0x31]) == .lengthNotDecimal([0x2D]))
    }

    @Test func hugeLengthsAreRejectedBeforeAnyData() {
        #expect(error([6] + Array("9999999999".utf8)) == .lengthTooLarge(.binData, 9_999_999_999, limit: 3 * 65_535))
        #expect(error([2] + Array("257".utf8) + [0, 0, 0, 0, 0, 0, 0]) == .lengthTooLarge(.password, 257, limit: 256))
    }

    @Test func missingCRLFIsRejected() {
        #expect(error(BlockCommand.ping.block().dropLast(2) + [0x41]) == .missingCRLF(.ping, found: [0x41]))
        #expect(error(BlockCommand.ping.block().dropLast(1) + [0x41]) == .missingCRLF(.ping, found: [0x0D, 0x41]))
    }

    @Test func halfBlocksAreNotABoundary() throws {
        var framer = BlockFramer()
        try framer.feed(BlockCommand.binData.block([1, 2, 3, 4]).prefix(13)) { _ in }
        #expect(!framer.isAtBlockBoundary)
        #expect(framer.positionDescription.contains("2 bytes missing"))
    }
}
