#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A set of IP addresses and networks (`10.0.0.5`, `10.0.0.0/24`, `fd00::/8`), for
/// `[server] proxy_protocol_from`: the load balancers whose connections start with a PROXY header.
public struct AddressSet: Sendable, Equatable, CustomStringConvertible {
    private struct Network: Sendable, Equatable {
        /// 16 bytes: IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), so one comparison serves both.
        var bytes: [UInt8]
        var prefixLength: Int
        var text: String

        func contains(_ address: [UInt8]) -> Bool {
            var bits = prefixLength
            for i in 0..<16 where bits > 0 {
                let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
                if address[i] & mask != bytes[i] & mask { return false }
                bits -= 8
            }
            return true
        }
    }

    private var networks: [Network] = []

    public init() {}

    /// Parses `ADDR[/PREFIX][,ADDR[/PREFIX]...]` (spaces allowed around commas).
    public init(parsing text: String) throws(AddressSetError) {
        for item in text.split(separator: ",").map({ $0.trimmingSpaces }) where !item.isEmpty {
            let parts = item.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            let addressText = String(parts[0])
            guard let (bytes, isV4) = Self.mappedBytes(addressText) else { throw .notAnAddress(String(item)) }
            var prefix = 128
            if parts.count == 2 {
                let maximum = isV4 ? 32 : 128
                guard let p = Int(parts[1]), (0...maximum).contains(p) else { throw .badPrefix(String(item), maximum: maximum) }
                prefix = isV4 ? p + 96 : p
            }
            networks.append(Network(bytes: bytes, prefixLength: prefix, text: String(item)))
        }
    }

    public var isEmpty: Bool { networks.isEmpty }

    /// True when `address` (as NIO writes a peer's address) is in one of the networks.
    public func contains(_ address: String) -> Bool {
        guard !networks.isEmpty, let (bytes, _) = Self.mappedBytes(address) else { return false }
        return networks.contains { $0.contains(bytes) }
    }

    public var description: String { networks.map(\.text).joined(separator: ",") }

    /// 16 bytes of an IPv4 or IPv6 address (IPv4 mapped), and whether it was written as IPv4.
    private static func mappedBytes(_ text: String) -> ([UInt8], Bool)? {
        var raw = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, text, &raw) == 1 {
            return ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + raw.prefix(4), true)
        }
        if inet_pton(AF_INET6, text, &raw) == 1 { return (raw, false) }
        return nil
    }
}

public enum AddressSetError: Error, Equatable, Sendable, CustomStringConvertible {
    case notAnAddress(String)
    case badPrefix(String, maximum: Int)

    public var description: String {
        switch self {
        case .notAnAddress(let item): "`\(item)` is not an IPv4 or IPv6 address (ADDR or ADDR/PREFIX, comma-separated)"
        case .badPrefix(let item, let maximum): "`\(item)`: the prefix length must be 0 to \(maximum)"
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}
