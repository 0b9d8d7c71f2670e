import Captions
import Foundation
import SupportKit
import Synchronization
import Testing
@testable import TunerServer
#if canImport(Glibc)
import Glibc
#endif

/// Garbage from addresses that never trip a budget (issue 16): connections sending bytes that are
/// neither the protocol nor large (random bytes, bad length fields, bad headers and records,
/// PROXY headers where none belongs, junk trickled a byte at a time before and after
/// authenticating), each from a loopback address of its own. Every one must be closed promptly,
/// with an escaped reason in the log and a metric, and none may keep a slot or memory.
@Suite(.serialized, .enabled(if: CCRBinary.shouldRun, "needs the ccr executable (swift test builds it; or set CCR_BINARY) and the shared fixtures"))
struct JunkConnectionTests {
    enum Junk: CaseIterable {
        case randomBytes, badLength, badHeader, badRecord, proxyHeader, trickleBeforeAuthentication, trickleAfterAuthentication, controlCharacters,
             silent
    }

    /// What connection `seed` sends: its bytes and the pause between them (0: all at once).
    static func junk(seed: Int) -> (kind: Junk, bytes: [UInt8], pauseMs: Int) {
        var rng = SplitMix64(state: UInt64(seed))   // each seed is one connection, reproducible from its number
        let kind = Junk.allCases[seed % Junk.allCases.count]
        func random(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        let hello = BlockCommand.ping.block()
        switch kind {
        case .randomBytes:
            return (kind, random(Int.random(in: 1...3000, using: &rng)), 0)
        case .badLength:
            let command = [2, 4, 5, 6, 7, 55].randomElement(using: &rng)! as UInt8
            let field = (0..<10).map { _ in Array("0123456789\0 x-\u{1B}".utf8).randomElement(using: &rng)! }
            return (kind, [command] + field + random(Int.random(in: 0...40, using: &rng)), 0)
        case .badHeader:
            var header = RCWTHeader.bytes
            // A byte that decides (the magic or the format version; the others are informative).
            header[[0, 1, 2, 6, 7].randomElement(using: &rng)!] ^= UInt8.random(in: 1...255, using: &rng)
            return (kind, hello + Array(repeating: BlockCommand.binHeader.block(header), count: 50).flatMap { $0 }, 0)
        case .badRecord:
            // A record header claiming more triplets than any record has, then noise.
            let count = UInt16.random(in: 1025...UInt16.max, using: &rng)
            let header = random(8) + [UInt8(count & 0xFF), UInt8(count >> 8)]
            return (kind, hello + BlockCommand.binHeader.block(RCWTHeader.bytes) + BlockCommand.binData.block(header) + random(30), 0)
        case .proxyHeader:
            let v2 = Bool.random(using: &rng)
            let proxy = v2 ? ProxyHeader.v2(address: "10.9.8.7", port: 1234, to: "127.0.0.1", port: 3030)!
                : ProxyHeader.v1(address: "10.9.8.7", port: 1234, to: "127.0.0.1", port: 3030)
            return (kind, proxy + hello, 0)
        case .trickleBeforeAuthentication:
            return (kind, BlockCommand.password.block(random(40)), 150)
        case .trickleAfterAuthentication:
            // Authenticated (no password on this server), then a block a byte at a time. (Before
            // authenticating the same is closed by whichever deadline comes first.)
            return (kind, hello + BlockCommand.epgData.block(random(200)), 150)
        case .silent:
            return (kind, [], 0)
        case .controlCharacters:
            // A description full of escapes, then a bad command byte: the reason is logged.
            let text = "x\n\u{1B}[31mFORGED\r" + String(decoding: random(20).map { $0 & 0x1F }, as: UTF8.self)
            return (kind, hello + BlockCommand.ccDescription.block(Array(text.utf8)) + [0x99], 0)
        }
    }

    @Test("180 junk connections from 180 addresses: each closed within the deadlines with a logged, escaped reason; no slot, memory or unauthenticated count kept")
    func junkConnections() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig(server: "block_timeout = 1"), metrics: true)
        defer { serve.remove() }
        try await serve.start()
        let port = serve.port
        let baselineKB = serve.rssKilobytes
        let slowest = Mutex<(Double, Int)>((0, -1))
        let failures = Mutex<[String]>([])
        let seeds = 180
        await HostileTunerTests.onThreads(16) { worker in
            for seed in stride(from: worker, to: seeds, by: 16) {
                let (kind, bytes, pause) = Self.junk(seed: seed)
                let start = Date()
                guard let t = try? TestTuner(port: port, from: "127.0.\(1 + seed / 200).\(1 + seed % 200)") else {
                    failures.withLock { $0.append("seed \(seed): connect failed") }
                    continue
                }
                if pause == 0 {
                    try? t.send(bytes)
                } else {
                    for byte in bytes {
                        guard (try? t.send([byte])) != nil else { break }
                        var pfd = pollfd(fd: t.fd, events: Int16(POLLIN), revents: 0)
                        if poll(&pfd, 1, Int32(pause)) > 0 { break }  // closed (or answered): stop trickling
                    }
                }
                // Blocking wait for the close (each thread drives one connection at a time).
                var buffer = [UInt8](repeating: 0, count: 512)
                var closed = false
                while Date().timeIntervalSince(start) < 8 {
                    var pfd = pollfd(fd: t.fd, events: Int16(POLLIN), revents: 0)
                    guard poll(&pfd, 1, 100) > 0 else { continue }
                    if buffer.withUnsafeMutableBytes({ recv(t.fd, $0.baseAddress, 512, 0) }) <= 0 { closed = true; break }
                }
                let took = Date().timeIntervalSince(start)
                if !closed { failures.withLock { $0.append("seed \(seed) (\(kind)): still open after 8 s") } }
                slowest.withLock { if took > $0.0 { $0 = (took, seed) } }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let (took, seed) = slowest.withLock { $0 }
        // handshake_timeout 2, block_timeout 1, checked every flush_interval (0.2 s); trickles stop at the close.
        #expect(took < 4, "seed \(seed) (\(Self.junk(seed: seed).kind)) took \(took) s to be closed")
        #expect(serve.isRunning)
        #expect(await eventually { (try? await serve.metric("ccr_unauthenticated_connections")) == 0 })
        #expect(try await serve.metric("ccr_connected_tuners") == 0)
        // Every connection is counted by reason; the log says why for each one closed by the server.
        let metrics = try await serve.get("/metrics", port: serve.metricsPort).body
        let closedCount = metrics.split(separator: "\n").filter { $0.hasPrefix("ccr_connections_closed_total{") }
            .compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +)
        #expect(closedCount == seeds, "\(metrics)")
        for reason in ["framing", "handshake", "badHeader", "badRecord", "slow-block"] {
            #expect(try await serve.metric("ccr_connections_closed_total{reason=\"\(reason)\"}") > 0, "no close for \(reason): \(metrics)")
        }
        let log = serve.log
        #expect(log.components(separatedBy: "closing tuner connection:").count - 1 >= seeds / 2)
        #expect(log.contains("the start of a PROXY header: only addresses in [server] proxy_protocol_from may send one"))
        #expect(log.contains("[server] block_timeout"))
        // No control character reached the log but its line ends.
        #expect(!log.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" }, "raw control characters in the log")
        let grownKB = serve.rssKilobytes - baselineKB
        #expect(grownKB < 32 * 1024, "RSS grew by \(grownKB) KB for \(seeds) junk connections")
        // An honest tuner still gets in.
        let honest = try TestTuner(port: port)
        try honest.send(HostileTunerTests.hello(description: "after-junk") + BlockCommand.ping.block())
        #expect(await honest.read(count: 1) == [0x37])
    }
}
