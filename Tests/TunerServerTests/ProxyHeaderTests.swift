import Foundation
import PropertyBased
import Testing
@testable import TunerServer

/// The PROXY header parser (`[server] proxy_protocol_from`) on valid headers of both versions cut
/// at every point, on random and mutated bytes, and on the malformed headers a balancer never
/// sends: it names the client or the error, asks for more bytes only while the bytes can still be
/// a header, and never reads past the bounds it states.
@Suite("PROXY header")
struct ProxyHeaderTests {
    /// An IPv4 address, or an IPv6 one in the canonical (compressed) form the parser answers in.
    static let addresses = zip(Gen.bool, Gen.uint16().array(of: 8)).map { v6, words in
        v6 ? ProxyHeader.canonicalAddress(words.map { String($0, radix: 16) }.joined(separator: ":"), family: AF_INET6)!
            : words.prefix(4).map { String($0 & 0xFF) }.joined(separator: ".")
    }

    /// Parses `bytes` fed as the network might cut them: every proper prefix needs more, the whole
    /// gives the header and its length.
    static func parsesWhole(_ bytes: [UInt8], trailing: [UInt8]) throws -> ProxyHeader? {
        for cut in 0..<bytes.count {
            guard try ProxyHeader.parse(bytes.prefix(cut)) == nil else { return nil }
        }
        guard let (header, length) = try ProxyHeader.parse(bytes + trailing), length == bytes.count else { return nil }
        return header
    }

    @Test("valid v1 and v2 headers, any client address and port, cut anywhere: the client's address; the tuner's bytes after it untouched")
    func validHeaders() async {
        await propertyCheck(count: 300, input: Self.addresses, Gen.int(in: 0...65_535), Gen.uint8().array(of: 0...64), Gen.bool) {
            address, port, trailing, v2 in
            let dst = address.contains(":") ? "::1" : "127.0.0.1"
            let tlvs: [UInt8] = v2 ? [0x04, 0x00, 0x03, 0x61, 0x62, 0x63] : []  // a NOOP TLV, as balancers may add
            let header = v2 ? ProxyHeader.v2(address: address, port: port, to: dst, port: 3030, tlvs: tlvs)!
                : ProxyHeader.v1(address: address, port: port, to: dst, port: 3030)
            #expect((try? Self.parsesWhole(header, trailing: trailing)) == .proxied(address: address, port: port))
        }
    }

    @Test("LOCAL (a health check), v1 UNKNOWN and v2 UNSPEC/UNIX: the connection's own address stands")
    func localHeaders() throws {
        #expect(try Self.parsesWhole(ProxyHeader.v2Local, trailing: [2]) == .local)
        #expect(try Self.parsesWhole(Array("PROXY UNKNOWN\r\n".utf8), trailing: []) == .local)
        #expect(try Self.parsesWhole(Array("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n".utf8), trailing: []) == .local)
        let unspec = ProxyHeader.v2Signature + [0x21, 0x00, 0x00, 0x04, 1, 2, 3, 4]
        #expect(try Self.parsesWhole(unspec, trailing: []) == .local)
        let unix = ProxyHeader.v2Signature + [0x21, 0x31, 0x00, 0xD8] + [UInt8](repeating: 0x2F, count: 216)
        #expect(try Self.parsesWhole(unix, trailing: []) == .local)
    }

    @Test("malformed headers are refused with what is wrong", arguments: [
        ("PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n", "got 4 fields"),
        ("PROXY TCP4 1.2.3.999 5.6.7.8 80 3030\r\n", "not IPv4"),
        ("PROXY TCP4 ::1 ::1 80 3030\r\n", "not IPv4"),
        ("PROXY TCP6 1.2.3.4 5.6.7.8 80 3030\r\n", "not IPv6"),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 080 3030\r\n", "leading zeros"),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 65536 3030\r\n", "0-65535"),
        ("PROXY UDP4 1.2.3.4 5.6.7.8 80 3030\r\n", "unknown protocol"),
        ("PROXY TCP4 1.2.3.4  5.6.7.8 80 3030\r\n", "fields"),
        ("PROXY TCP4 1.2.3.4 5.6.7.8 80 3030\rX", "CR not followed by LF"),
        ("PROXY TCP4 1.2.3.4\u{1B}[2J 5.6.7.8 80 3030\r\n", "control"),
        ("PROXZ TCP4", "does not start"),
    ])
    func malformedV1(_ text: String, _ expected: String) {
        #expect(throws: ProxyHeaderError.self) { try ProxyHeader.parse(Array(text.utf8)) }
        do throws(ProxyHeaderError) { _ = try ProxyHeader.parse(Array(text.utf8)) } catch { #expect(error.description.contains(expected), "\(error)") }
    }

    @Test("a v1 header without CRLF in 107 bytes, a v2 header over 1,040 bytes, a bad version, command, family or length are refused at once")
    func boundsAndBadV2() throws {
        let endless = Array("PROXY TCP4 ".utf8) + [UInt8](repeating: 0x31, count: 200)
        // The CR of a 107-byte header is its 106th byte: 105 bytes may still become one, 106 cannot.
        #expect(try ProxyHeader.parse(endless.prefix(105)) == nil)
        #expect(throws: ProxyHeaderError.badV1("no CRLF within 107 bytes")) { try ProxyHeader.parse(endless.prefix(106)) }
        let longest = Array("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n".utf8)
        #expect(longest.count == 107)
        #expect(try ProxyHeader.parse(longest)?.length == 107)  // the spec's worst case
        #expect(throws: ProxyHeaderError.badV1("no CRLF within 107 bytes")) { try ProxyHeader.parse(endless) }
        let sig = ProxyHeader.v2Signature
        #expect(throws: ProxyHeaderError.tooLong(16 + 0xFFFF, limit: 1040)) { try ProxyHeader.parse(sig + [0x21, 0x11, 0xFF, 0xFF]) }
        #expect(throws: ProxyHeaderError.self) { try ProxyHeader.parse(sig + [0x11, 0x11, 0x00, 0x0C]) }  // version 1
        #expect(throws: ProxyHeaderError.self) { try ProxyHeader.parse(sig + [0x22, 0x11, 0x00, 0x0C]) }  // command 2
        #expect(throws: ProxyHeaderError.self) { try ProxyHeader.parse(sig + [0x21, 0x41, 0x00, 0x0C]) }  // family 4
        #expect(throws: ProxyHeaderError.self) { try ProxyHeader.parse(sig + [0x21, 0x11, 0x00, 0x0B]) }  // 11 < 12 address bytes
        #expect(throws: ProxyHeaderError.self) { try ProxyHeader.parse(sig + [0x21, 0x12, 0x00, 0x0C] + [UInt8](repeating: 1, count: 12)) }  // UDP
        var badSignature = sig
        badSignature[6] = 0x0B
        #expect(throws: ProxyHeaderError.badV2("bad signature")) { try ProxyHeader.parse(badSignature) }
        #expect(throws: ProxyHeaderError.notAHeader(first: 2)) { try ProxyHeader.parse(BlockCommand.password.block([])) }
    }

    @Test("random bytes and mutated headers: an answer, an error, or a need for more only while under the bound; never a length past the bytes")
    func randomAndMutated() async {
        let starts = Gen.element(of: [
            ProxyHeader.v2Signature, Array("PROXY ".utf8), [],
            ProxyHeader.v2(address: "10.1.2.3", port: 4000, to: "10.0.0.1", port: 3030)!,
            ProxyHeader.v1(address: "10.1.2.3", port: 4000, to: "10.0.0.1", port: 3030),
        ]).map { $0! }
        await propertyCheck(count: 2000, input: starts, Gen.uint8().array(of: 0...1200), Gen.int(in: 0...40), Gen.uint8()) {
            start, tail, position, byte in
            var bytes = start + tail
            if !bytes.isEmpty { bytes[position % bytes.count] = byte }
            do throws(ProxyHeaderError) {
                if let (header, length) = try ProxyHeader.parse(bytes) {
                    #expect(length <= bytes.count && length <= ProxyHeader.maximumV2Length)
                    if case .proxied(let address, let port) = header {
                        #expect(AddressSet(parsingOrEmpty: address).contains(address) && (0...65_535).contains(port))
                    }
                } else {
                    // More is needed only while a header could still fit.
                    #expect(bytes.count < ProxyHeader.maximumV2Length)
                    if bytes.first == 0x50 { #expect(bytes.count < ProxyHeader.maximumV1Length) }
                }
            } catch {
                #expect(!error.description.isEmpty)
            }
        }
    }

    @Test("proxy_protocol_from: addresses and networks of both families; anything else is refused with the item named")
    func addressSets() throws {
        let set = try AddressSet(parsing: "10.0.0.5, 192.168.0.0/16,fd00::/8 ,::1")
        for inside in ["10.0.0.5", "192.168.200.1", "fd12::3", "::1", "::ffff:10.0.0.5"] { #expect(set.contains(inside), "\(inside)") }
        for outside in ["10.0.0.6", "192.169.0.1", "fe80::1", "::2", "garbage", ""] { #expect(!set.contains(outside), "\(outside)") }
        #expect(try AddressSet(parsing: "0.0.0.0/0").contains("203.0.113.9"))
        #expect(throws: AddressSetError.notAnAddress("lb.example")) { try AddressSet(parsing: "10.0.0.1,lb.example") }
        #expect(throws: AddressSetError.badPrefix("10.0.0.0/33", maximum: 32)) { try AddressSet(parsing: "10.0.0.0/33") }
        #expect(throws: AddressSetError.badPrefix("::/129", maximum: 128)) { try AddressSet(parsing: "::/129") }
    }
}

extension AddressSet {
    init(parsingOrEmpty text: String) { self = (try? AddressSet(parsing: text)) ?? AddressSet() }
}
