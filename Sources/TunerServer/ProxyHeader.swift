#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The header a load balancer (HAProxy's `send-proxy`/`send-proxy-v2`, an AWS NLB with proxy
/// protocol v2) puts before a tuner's bytes, naming the tuner's own address. Behind a load
/// balancer every tuner arrives from the balancer's address, so without it the per-address
/// limits (unauthenticated connections, password lockout, spent budgets) would punish every
/// tuner for one abuser. Format: HAProxy's proxy-protocol.txt, versions 1 (text) and 2 (binary).
public enum ProxyHeader: Sendable, Equatable {
    /// The connection is a tuner's, from `address`:`port`.
    case proxied(address: String, port: Int)
    /// The balancer's own connection (v2 LOCAL, a health check) or a client it cannot name
    /// (v1 UNKNOWN, v2 UNSPEC or UNIX): the connection's own address stands.
    case local

    /// Longest v1 header, CRLF included (the spec's bound).
    public static let maximumV1Length = 107
    /// Longest v2 header accepted: 16 bytes and the addresses, with room for the TLVs that
    /// balancers add (an NLB's endpoint id, HAProxy's unique id), far less than the 64 KB the
    /// length field allows: a header is held whole before it is parsed.
    public static let maximumV2Length = 16 + 1024
    /// The v2 signature: CRLF CRLF NUL CR LF "QUIT" LF.
    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix = Array("PROXY ".utf8)

    /// True when `bytes` may be the start of a PROXY header (v1 or v2): the first byte decides
    /// for a block stream, whose command bytes are never `P` or CR.
    public static func mayStart(_ byte: UInt8) -> Bool {
        byte == v1Prefix[0] || byte == v2Signature[0]
    }

    /// Parses a header at the start of `bytes`: the header and its length in bytes, nil when
    /// `bytes` is a valid beginning that needs more bytes, or an error naming what is wrong.
    public static func parse(_ bytes: some Collection<UInt8>) throws(ProxyHeaderError) -> (ProxyHeader, length: Int)? {
        let b = Array(bytes.prefix(maximumV2Length))
        guard let first = b.first else { return nil }
        if first == v2Signature[0] { return try parseV2(b) }
        if first == v1Prefix[0] { return try parseV1(b) }
        throw .notAHeader(first: first)
    }

    private static func parseV1(_ b: [UInt8]) throws(ProxyHeaderError) -> (ProxyHeader, length: Int)? {
        let prefixLength = min(b.count, v1Prefix.count)
        guard b.prefix(prefixLength).elementsEqual(v1Prefix.prefix(prefixLength)) else {
            throw .badV1("does not start with \"PROXY \"")
        }
        // CR LF end the header within its 107 bytes: the CR is among the first 106.
        guard let cr = b.prefix(maximumV1Length - 1).firstIndex(of: 0x0D) else {
            if b.count >= maximumV1Length - 1 { throw .badV1("no CRLF within \(maximumV1Length) bytes") }
            if let bad = b.first(where: { $0 < 0x20 || $0 > 0x7E }) { throw .badV1("control or non-ASCII byte \(bad) in the header") }
            return nil
        }
        guard cr + 1 < b.count else { return nil }
        guard b[cr + 1] == 0x0A else { throw .badV1("CR not followed by LF") }
        let line = b[v1Prefix.count..<cr]
        if let bad = line.first(where: { $0 < 0x20 || $0 > 0x7E }) { throw .badV1("control or non-ASCII byte \(bad) in the header") }
        let fields = line.split(separator: 0x20, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        let length = cr + 2
        if fields.first == "UNKNOWN" { return (.local, length) }
        guard fields.count == 5 else { throw .badV1("expected TCP4|TCP6 SRC DST SRCPORT DSTPORT, got \(fields.count) fields") }
        let family: Int32
        switch fields[0] {
        case "TCP4": family = AF_INET
        case "TCP6": family = AF_INET6
        default: throw .badV1("unknown protocol \(fields[0].prefix(8)) (TCP4, TCP6 or UNKNOWN)")
        }
        guard let source = canonicalAddress(fields[1], family: family), canonicalAddress(fields[2], family: family) != nil else {
            throw .badV1("address is not \(fields[0] == "TCP4" ? "IPv4" : "IPv6"): \(fields[1].prefix(45)) \(fields[2].prefix(45))")
        }
        guard let port = v1Port(fields[3]), v1Port(fields[4]) != nil else {
            throw .badV1("port is not a decimal 0-65535 without leading zeros: \(fields[3].prefix(8)) \(fields[4].prefix(8))")
        }
        return (.proxied(address: source, port: port), length)
    }

    private static func v1Port(_ s: String) -> Int? {
        guard !s.isEmpty, s.count <= 5, s.utf8.allSatisfy({ (0x30...0x39).contains($0) }), s == "0" || s.first != "0",
              let v = Int(s), v <= 65_535 else { return nil }
        return v
    }

    private static func parseV2(_ b: [UInt8]) throws(ProxyHeaderError) -> (ProxyHeader, length: Int)? {
        let signatureLength = min(b.count, v2Signature.count)
        guard b.prefix(signatureLength).elementsEqual(v2Signature.prefix(signatureLength)) else {
            throw .badV2("bad signature")
        }
        guard b.count >= 16 else { return nil }
        let versionCommand = b[12], familyTransport = b[13]
        guard versionCommand >> 4 == 2 else { throw .badV2("version \(versionCommand >> 4), expected 2") }
        let command = versionCommand & 0x0F
        guard command <= 1 else { throw .badV2("unknown command \(command) (0 LOCAL, 1 PROXY)") }
        let declared = Int(b[14]) << 8 | Int(b[15])
        let length = 16 + declared
        guard length <= maximumV2Length else { throw .tooLong(length, limit: maximumV2Length) }
        let family = familyTransport >> 4, transport = familyTransport & 0x0F
        guard family <= 3, transport <= 2 else { throw .badV2("unknown address family/transport 0x\(String(familyTransport, radix: 16))") }
        let addressBytes = [0, 12, 36, 216][Int(family)]
        guard declared >= addressBytes else { throw .badV2("length \(declared) shorter than the \(addressBytes) address bytes of its family") }
        guard b.count >= length else { return nil }
        // LOCAL (the balancer's own health check), UNSPEC and UNIX: the connection's own address.
        guard command == 1, family == 1 || family == 2 else { return (.local, length) }
        guard transport == 1 else { throw .badV2("a datagram (UDP) client on a TCP connection") }
        let address: String?
        let portOffset: Int
        if family == 1 {
            address = formatAddress(Array(b[16..<20]), family: AF_INET)
            portOffset = 24
        } else {
            address = formatAddress(Array(b[16..<32]), family: AF_INET6)
            portOffset = 48
        }
        guard let address else { throw .badV2("unreadable source address") }
        let port = Int(b[portOffset]) << 8 | Int(b[portOffset + 1])
        return (.proxied(address: address, port: port), length)
    }

    /// The canonical text of an address (as NIO's `ipAddress` writes it), nil when it is not one of `family`.
    static func canonicalAddress(_ text: String, family: Int32) -> String? {
        guard text.utf8.count <= 45 else { return nil }
        var raw = [UInt8](repeating: 0, count: 16)
        guard inet_pton(family, text, &raw) == 1 else { return nil }
        return formatAddress(Array(raw.prefix(family == AF_INET ? 4 : 16)), family: family)
    }

    static func formatAddress(_ raw: [UInt8], family: Int32) -> String? {
        var text = [CChar](repeating: 0, count: 64)
        guard inet_ntop(family, raw, &text, socklen_t(text.count)) != nil else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The v1 header naming `address`:`port` (to `dstAddress`:`dstPort`): for tests and tools.
    public static func v1(address: String, port: Int, to dstAddress: String, port dstPort: Int) -> [UInt8] {
        let proto = address.contains(":") ? "TCP6" : "TCP4"
        return Array("PROXY \(proto) \(address) \(dstAddress) \(port) \(dstPort)\r\n".utf8)
    }

    /// The v2 PROXY header naming `address`:`port` (IPv4 or IPv6), with `tlvs` bytes after the
    /// addresses: for tests and tools.
    public static func v2(address: String, port: Int, to dstAddress: String, port dstPort: Int, tlvs: [UInt8] = []) -> [UInt8]? {
        let v6 = address.contains(":")
        let family = v6 ? AF_INET6 : AF_INET
        let size = v6 ? 16 : 4
        var src = [UInt8](repeating: 0, count: 16), dst = [UInt8](repeating: 0, count: 16)
        guard inet_pton(family, address, &src) == 1, inet_pton(family, dstAddress, &dst) == 1 else { return nil }
        var out = v2Signature
        out += [0x21, v6 ? 0x21 : 0x11]
        let length = 2 * size + 4 + tlvs.count
        out += [UInt8(length >> 8), UInt8(length & 0xFF)]
        out += src.prefix(size) + dst.prefix(size)
        out += [UInt8(port >> 8), UInt8(port & 0xFF), UInt8(dstPort >> 8), UInt8(dstPort & 0xFF)]
        out += tlvs
        return out
    }

    /// The v2 LOCAL header (what a balancer's health check sends).
    public static let v2Local: [UInt8] = v2Signature + [0x20, 0x00, 0x00, 0x00]
}

/// Why the bytes before a tuner's blocks are not a PROXY header. Each case says what was seen,
/// for the log line that closes the connection.
public enum ProxyHeaderError: Error, Equatable, Sendable, CustomStringConvertible {
    case notAHeader(first: UInt8)
    case badV1(String)
    case badV2(String)
    case tooLong(Int, limit: Int)

    public var description: String {
        switch self {
        case .notAHeader(let first):
            "no PROXY header (first byte \(first)) from a load balancer address ([server] proxy_protocol_from): the balancer must send one (HAProxy: send-proxy-v2)"
        case .badV1(let why): "malformed PROXY v1 header: \(why)"
        case .badV2(let why): "malformed PROXY v2 header: \(why)"
        case .tooLong(let length, let limit): "PROXY v2 header of \(length) bytes, over the \(limit) accepted"
        }
    }
}
