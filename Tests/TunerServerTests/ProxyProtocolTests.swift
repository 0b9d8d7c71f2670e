import Captions
import Foundation
import Testing
@testable import TunerServer
#if canImport(Glibc)
import Glibc
#endif

/// A real `haproxy` on loopback in front of `ccr serve` (issue 16): with `proxy_protocol_from`,
/// the PROXY header's client address is the one the limits, the logs and the tuners table use,
/// so one abuser behind the balancer is refused while the other tuners behind it are not.
/// Clients connect to HAProxy from 127.0.0.2 and 127.0.0.3; HAProxy connects to ccr from
/// 127.0.0.1.
@Suite(.serialized, .enabled(if: CCRBinary.shouldRun, "needs the ccr executable (swift test builds it; or set CCR_BINARY) and the shared fixtures"),
       .enabled(if: HAProxyProcess.binary != nil || ProcessInfo.processInfo.environment["CI"] == "true",
                "haproxy is not installed (apt-get install haproxy); CI must have it (scripts/setup)"))
struct ProxyProtocolTests {
    @Test("behind HAProxy (send-proxy-v2 and send-proxy): a guesser is locked out by its own address, another tuner behind the same balancer gets in; the tuners table and the log name the tuner")
    func limitsPerRealClient() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig(server: "password = s3cret\nproxy_protocol_from = 127.0.0.1",
                                                                   limits: "password_failures = 3"), metrics: true)
        defer { serve.remove() }
        try await serve.start()
        let haproxy = try HAProxyProcess(backendPort: serve.port)
        defer { haproxy.stop() }
        try await haproxy.start()

        // The guesser, from 127.0.0.2 through the v2 frontend: three wrong passwords lock it out.
        for i in 0..<3 {
            let t = try TestTuner(port: haproxy.v2Port, from: "127.0.0.2")
            try t.send(BlockCommand.password.block(Array("guess\(i)".utf8)))
            #expect(await t.readUntilClosed(timeout: 10) == [0x02])
        }
        #expect(try await serve.metric("ccr_lockouts_total") == 1)
        #expect(serve.log.contains("address locked out for 60 s after 3 wrong passwords"))
        #expect(serve.log.contains("127.0.0.2"))
        // Locked out: even its right password is not read.
        let locked = try TestTuner(port: haproxy.v2Port, from: "127.0.0.2")
        try? locked.send(HostileTunerTests.hello(password: "s3cret", description: "locked") + BlockCommand.ping.block())
        #expect(await locked.readUntilClosed(timeout: 10) == [])
        // Another tuner behind the same balancer, through both frontends (v2 and v1 headers).
        for (port, name) in [(haproxy.v2Port, "behind-v2"), (haproxy.v1Port, "behind-v1")] {
            let t = try TestTuner(port: port, from: "127.0.0.3")
            try t.send(HostileTunerTests.hello(password: "s3cret", description: name) + BlockCommand.ping.block()
                       + SharedAddressTests.captions(0) + SharedAddressTests.captions(1))
            #expect(await t.read(count: 1) == [0x37], "\(name) not answered")
            t.finishSending()
            _ = await t.readUntilClosed(timeout: 10)
        }
        // The tuners table has the tuners' own address, never the balancer's.
        #expect(await eventually {
            TimestampProcessTests.sqlite(serve, "SELECT description || ' ' || address FROM tuners ORDER BY description")
                == "behind-v1 127.0.0.3\nbehind-v2 127.0.0.3"
        })
        #expect(serve.log.contains("127.0.0.3") && serve.log.contains("via 127.0.0.1"))
        // HAProxy's health checks (a PROXY header and a close, every 300 ms) cost no log line.
        #expect(!serve.log.contains("closing load balancer connection"))
        #expect(try await serve.metric("ccr_connections_closed_total{reason=\"proxy-header\"}") == 0)
    }

    @Test("from the balancer's address: no header, a malformed one or a slow one closes with a logged reason; from elsewhere a PROXY header is a protocol error")
    func headerErrors() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig(server: "proxy_protocol_from = 127.0.0.9, 127.0.1.0/24"), metrics: true)
        defer { serve.remove() }
        try await serve.start()
        // No header: the tuner's blocks where the header belongs.
        let bare = try TestTuner(port: serve.port, from: "127.0.0.9")
        try bare.send(HostileTunerTests.hello(description: "bare"))
        #expect(await bare.readUntilClosed(timeout: 5) == [])
        // Malformed (v1 with a bad address), and over-long (v2 claiming 64 KB).
        let bad = try TestTuner(port: serve.port, from: "127.0.1.5")
        try bad.send(Array("PROXY TCP4 10.0.0.999 10.0.0.1 5000 3030\r\n".utf8))
        #expect(await bad.readUntilClosed(timeout: 5) == [])
        let long = try TestTuner(port: serve.port, from: "127.0.1.6")
        try long.send(ProxyHeader.v2Signature + [0x21, 0x11, 0xFF, 0xFF] + [UInt8](repeating: 0, count: 2000))
        #expect(await long.readUntilClosed(timeout: 5) == [])
        // Slow: half a header, then nothing, is closed at the handshake deadline (2 s).
        let start = Date()
        let slow = try TestTuner(port: serve.port, from: "127.0.0.9")
        try slow.send(Array("PROXY TCP4 10.".utf8))
        #expect(await slow.readUntilClosed(timeout: 6) == [])
        #expect(Date().timeIntervalSince(start) < 4)
        #expect(try await serve.metric("ccr_connections_closed_total{reason=\"proxy-header\"}") == 4)
        let log = serve.log
        #expect(log.contains("no PROXY header (first byte 2) from a load balancer address"))
        #expect(log.contains("malformed PROXY v1 header: address is not IPv4"))
        #expect(log.contains("PROXY v2 header of 65551 bytes, over the 1040 accepted"))
        #expect(log.contains("no complete PROXY header within 2 s of connecting"))
        // A header from an address that is not a balancer: a protocol error, said as such.
        let forged = try TestTuner(port: serve.port, from: "127.0.0.10")
        try forged.send(ProxyHeader.v1(address: "10.1.1.1", port: 1, to: "127.0.0.1", port: 3030) + HostileTunerTests.hello(description: "forged"))
        #expect(await forged.readUntilClosed(timeout: 5) == [])
        #expect(serve.log.contains("the start of a PROXY header: only addresses in [server] proxy_protocol_from may send one"))
        // A well-formed header then the tuner: admitted under the header's address.
        let good = try TestTuner(port: serve.port, from: "127.0.1.7")
        try good.send(ProxyHeader.v2(address: "203.0.113.5", port: 4321, to: "127.0.0.1", port: 3030)! + HostileTunerTests.hello(description: "good")
                      + BlockCommand.ping.block() + SharedAddressTests.captions(0))
        #expect(await good.read(count: 1) == [0x37])
        #expect(await eventually { TimestampProcessTests.sqlite(serve, "SELECT address || ':' || port FROM tuners WHERE description = 'good'") == "203.0.113.5:4321" })
    }
}

/// `haproxy` in the foreground with a generated config: two TCP frontends on free loopback ports,
/// one sending PROXY v2 headers (as the lb runbook's) and one v1, both to one `ccr serve`.
final class HAProxyProcess: @unchecked Sendable {
    // @unchecked: started and stopped by one test.
    static let binary: String? = ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy", "/usr/bin/haproxy"].first { access($0, X_OK) == 0 }

    let v2Port: Int
    let v1Port: Int
    private let dir: URL
    private let process = Process()

    init(backendPort: Int) throws {
        dir = try makeTemporaryDirectory("haproxy")
        v2Port = try Self.freePort()
        v1Port = try Self.freePort()
        let config = """
            global
                maxconn 1000
            defaults
                mode tcp
                timeout connect 5s
                timeout client 3m
                timeout server 3m
            frontend tuners-v2
                bind 127.0.0.1:\(v2Port)
                default_backend ccr-v2
            backend ccr-v2
                server ccr 127.0.0.1:\(backendPort) send-proxy-v2 check inter 300ms
            frontend tuners-v1
                bind 127.0.0.1:\(v1Port)
                default_backend ccr-v1
            backend ccr-v1
                server ccr 127.0.0.1:\(backendPort) send-proxy check inter 300ms

            """
        try config.write(to: dir.appendingPathComponent("haproxy.cfg"), atomically: true, encoding: .utf8)
    }

    func start() async throws {
        let binary = try #require(Self.binary, "haproxy is not installed: scripts/setup must install it (apt-get install haproxy)")
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-db", "-f", dir.appendingPathComponent("haproxy.cfg").path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: {
            let log = dir.appendingPathComponent("haproxy.log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            return log
        }())
        try process.run()
        // Ready when both frontends accept.
        let ready = await eventually(timeout: 10) {
            (try? TestTuner(port: self.v2Port)) != nil && (try? TestTuner(port: self.v1Port)) != nil
        }
        let log = (try? String(contentsOf: dir.appendingPathComponent("haproxy.log"), encoding: .utf8)) ?? ""
        try #require(ready && process.isRunning, "haproxy did not start: \(log)")
    }

    func stop() {
        if process.isRunning { process.terminate(); process.waitUntilExit() }
        try? FileManager.default.removeItem(at: dir)
    }

    /// A port free on loopback now (bound and released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard ok else { throw TestSocketError.failed("bind", errno) }
        return Int(UInt16(bigEndian: a.sin_port))
    }
}
