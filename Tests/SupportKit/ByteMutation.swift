/// One random change to a byte stream, for the property tests of the parsers: overwrite, insert
/// or delete a byte at a position (taken modulo the stream's length, so any generated value
/// applies to any stream).
public struct ByteMutation: Sendable, CustomStringConvertible {
    /// 0 = set, 1 = insert, anything else = delete.
    public var kind: Int
    public var position: Int
    public var byte: UInt8

    public init(kind: Int, position: Int, byte: UInt8) {
        self.kind = kind
        self.position = position
        self.byte = byte
    }

    public var description: String { "\(["set", "insert", "delete"][min(kind, 2)]) @\(position) \(byte)" }

    public func apply(_ bytes: inout [UInt8]) {
        guard !bytes.isEmpty else { bytes.append(byte); return }
        let at = position % bytes.count
        switch kind {
        case 0: bytes[at] = byte
        case 1: bytes.insert(byte, at: at)
        default: bytes.remove(at: at)
        }
    }
}
