/// Commands of CCExtractor's `-sendto` protocol (see shared/design/protocol.md).
///
/// Only the ones a tuner sends are accepted by the framer; the server-to-client ones are
/// here so that replies are written with their names, not magic numbers.
public enum BlockCommand: UInt8, Sendable, CustomStringConvertible {
    case ok = 1
    case password = 2
    case binMode = 3
    case ccDescription = 4
    case binHeader = 5
    case binData = 6
    case epgData = 7
    case error = 51
    case unknownCommand = 52
    case wrongPassword = 53
    case connectionLimit = 54
    case ping = 55

    public var description: String {
        switch self {
        case .ok: "OK"
        case .password: "PASSWORD"
        case .binMode: "BIN_MODE"
        case .ccDescription: "CC_DESC"
        case .binHeader: "BIN_HEADER"
        case .binData: "BIN_DATA"
        case .epgData: "EPG_DATA"
        case .error: "ERROR"
        case .unknownCommand: "UNKNOWN_COMMAND"
        case .wrongPassword: "WRONG_PASSWORD"
        case .connectionLimit: "CONN_LIMIT"
        case .ping: "PING"
        }
    }

    /// The largest data length accepted for a command a tuner may send; nil when a tuner never
    /// sends it. The limits are generous for real clients (a BIN_DATA block holds at most one
    /// record part: 10 header bytes or 3 x 65,535 triplet bytes) and keep a hostile length
    /// from being believed. Payloads are streamed through, never buffered whole, so these
    /// limits bound nonsense, not memory.
    public var maximumClientLength: Int? {
        switch self {
        case .password: 256
        case .ccDescription: 1024
        case .binHeader: 64
        case .binData: 3 * 65_535
        case .epgData: 1 << 20
        case .ping: 16
        default: nil
        }
    }

    /// The bytes of a complete block with this command and data, as both sides frame them.
    public func block(_ data: [UInt8] = []) -> [UInt8] {
        var out: [UInt8] = [rawValue]
        var digits = Array(String(data.count).utf8)
        digits.append(contentsOf: repeatElement(0, count: BlockFramer.lengthFieldSize - digits.count))
        out += digits
        out += data
        out += [0x0D, 0x0A]
        return out
    }
}

/// Why a byte stream is not a valid block stream. Each case names what was seen, so that the
/// log line closing a connection says what the tuner did wrong.
public enum FramingError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownCommand(UInt8)
    case lengthNotDecimal([UInt8])
    case lengthTooLarge(BlockCommand, Int, limit: Int)
    case missingCRLF(BlockCommand, found: [UInt8])

    public var description: String {
        switch self {
        case .unknownCommand(let byte) where ProxyHeader.mayStart(byte):
            "unknown command byte \(byte) (0x\(String(byte, radix: 16))), the start of a PROXY header: only addresses in [server] proxy_protocol_from may send one"
        case .unknownCommand(let byte):
            "unknown command byte \(byte) (0x\(String(byte, radix: 16))); expected 2, 4, 5, 6, 7 or 55"
        case .lengthNotDecimal(let bytes):
            "block length field is not ASCII decimal padded with NUL: \(bytes.map { String(format2: $0) }.joined(separator: " "))"
        case .lengthTooLarge(let command, let length, let limit):
            "\(command) block claims \(length) bytes, more than the \(limit) a tuner ever sends"
        case .missingCRLF(let command, let found):
            "\(command) block not followed by CRLF (found \(found.map { String(format2: $0) }.joined(separator: " ")))"
        }
    }
}

extension String {
    /// Two-digit hex of a byte, for error messages.
    fileprivate init(format2 byte: UInt8) {
        let hex = String(byte, radix: 16)
        self = hex.count == 1 ? "0" + hex : hex
    }
}

/// What the framer found in the bytes fed to it. A block's data is reported in pieces as it
/// arrives (`payload`), between `begin` and `end`, so the framer never holds a block's data:
/// its memory is a few bytes whatever the tuner sends.
public enum FrameEvent<Bytes: Collection<UInt8>> {
    case begin(BlockCommand, length: Int)
    case payload(BlockCommand, Bytes)
    case end(BlockCommand)
}

/// Incremental parser of `[cmd][10-byte NUL-padded decimal length][data][CRLF]` blocks.
///
/// A pure value: feed it bytes in any split (one at a time or many blocks at once) and it
/// calls back with the same events. It stops at the first error and stays failed, because after
/// a framing error no later byte can be trusted to start a block.
public struct BlockFramer: Sendable {
    public static let lengthFieldSize = 10

    private enum State: Sendable {
        case command
        case length(BlockCommand, value: Int, seen: Int, sawNul: Bool)
        case data(BlockCommand, remaining: Int)
        case carriageReturn(BlockCommand)
        case lineFeed(BlockCommand)
        case failed(FramingError)
    }

    private var state: State = .command
    private var lengthBytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    public init() {}

    /// True between blocks: a connection ending here ended cleanly.
    public var isAtBlockBoundary: Bool {
        if case .command = state { return true }
        return false
    }

    /// Where the stream stands, for the log line when a connection ends mid-block.
    public var positionDescription: String {
        switch state {
        case .command: "between blocks"
        case .length(let c, _, let seen, _): "in the length field of a \(c) block (\(seen) of 10 bytes)"
        case .data(let c, let remaining): "in the data of a \(c) block (\(remaining) bytes missing)"
        case .carriageReturn(let c), .lineFeed(let c): "before the CRLF ending a \(c) block"
        case .failed(let e): "after an error: \(e)"
        }
    }

    /// Parses `bytes`, calling `emit` for each event; throws the first framing error (and every
    /// later call throws it again).
    public mutating func feed<C: Collection<UInt8>>(
        _ bytes: C, _ emit: (FrameEvent<C.SubSequence>) throws -> Void
    ) throws {
        var index = bytes.startIndex
        while index != bytes.endIndex {
            switch state {
            case .failed(let error):
                throw error
            case .command:
                let byte = bytes[index]
                bytes.formIndex(after: &index)
                guard let command = BlockCommand(rawValue: byte), command.maximumClientLength != nil else {
                    try fail(.unknownCommand(byte))
                }
                state = .length(command, value: 0, seen: 0, sawNul: false)
            case .length(let command, var value, var seen, var sawNul):
                // The whole field in one go when it is there (the usual case: a block arrives in
                // one write), the state written once, not once per byte.
                while seen < Self.lengthFieldSize && index != bytes.endIndex {
                    let byte = bytes[index]
                    bytes.formIndex(after: &index)
                    setLengthByte(seen, byte)
                    seen += 1
                    switch byte {
                    case UInt8(ascii: "0")...UInt8(ascii: "9") where !sawNul:
                        value = value * 10 + Int(byte - UInt8(ascii: "0"))
                    case 0 where seen > 1:
                        sawNul = true
                    default:
                        // Consume no more: report the field as far as it was read.
                        try fail(.lengthNotDecimal(lengthField(count: seen)))
                    }
                }
                if seen < Self.lengthFieldSize {
                    state = .length(command, value: value, seen: seen, sawNul: sawNul)
                    continue
                }
                let limit = command.maximumClientLength ?? 0
                guard value <= limit else { try fail(.lengthTooLarge(command, value, limit: limit)) }
                try emit(.begin(command, length: value))
                state = value == 0 ? .carriageReturn(command) : .data(command, remaining: value)
            case .data(let command, let remaining):
                let available = bytes.distance(from: index, to: bytes.endIndex)
                let take = min(available, remaining)
                let end = bytes.index(index, offsetBy: take)
                try emit(.payload(command, bytes[index..<end]))
                index = end
                state = take == remaining ? .carriageReturn(command) : .data(command, remaining: remaining - take)
            case .carriageReturn(let command):
                let byte = bytes[index]
                bytes.formIndex(after: &index)
                guard byte == 0x0D else { try fail(.missingCRLF(command, found: [byte])) }
                state = .lineFeed(command)
            case .lineFeed(let command):
                let byte = bytes[index]
                bytes.formIndex(after: &index)
                guard byte == 0x0A else { try fail(.missingCRLF(command, found: [0x0D, byte])) }
                state = .command
                try emit(.end(command))
            }
        }
        if case .failed(let error) = state { throw error }
    }

    private mutating func fail(_ error: FramingError) throws -> Never {
        state = .failed(error)
        throw error
    }

    private mutating func setLengthByte(_ i: Int, _ byte: UInt8) {
        withUnsafeMutableBytes(of: &lengthBytes) { $0[i] = byte }
    }

    private func lengthField(count: Int) -> [UInt8] {
        withUnsafeBytes(of: lengthBytes) { Array($0.prefix(count)) }
    }
}
