import Captions
import Foundation
import Synchronization
import Testing
@testable import TunerServer
#if canImport(Glibc)
import Glibc
#endif

/// Honest tuners that share one address (a site's NAT, a load balancer without PROXY headers)
/// beside an abuser from another (issue 16): the per-address limits count what abusers do, not
/// how many honest tuners an address has.
@Suite(.serialized, .enabled(if: CCRBinary.shouldRun, "needs the ccr executable (swift test builds it; or set CCR_BINARY) and the shared fixtures"))
struct SharedAddressTests {
    /// A few records of field 1 text at real rate (one frame apart): a row and its carriage return.
    static func captions(_ frame: Int) -> [UInt8] {
        HostileTunerTests.record(Int64(frame) * 33, [
            CCTriplet(info: 0xFC, data1: 0x14, data2: 0x25), CCTriplet(info: 0xFC, data1: 0x48, data2: 0x49),
            CCTriplet(info: 0xFC, data1: 0x14, data2: 0x2D),
        ])
    }

    @Test("500 honest tuners from one address connecting at once are all admitted while an abuser from another guesses and stalls, and is refused")
    func honestRampBesideAbuser() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig(server: "password = s3cret", limits: "password_failures = 5"), metrics: true)
        defer { serve.remove() }
        try await serve.start()
        let port = serve.port
        // The abuser, from 127.0.0.2: silent connections, then guesses on 16 threads.
        let silent = try (0..<40).map { _ in try TestTuner(port: port, from: "127.0.0.2") }
        let abusing = Atomic<Bool>(true)
        let guesses = Task.detached {
            await HostileTunerTests.onThreads(16) { worker in
                var guess = worker
                while abusing.load(ordering: .relaxed) {
                    guard let t = try? TestTuner(port: port, from: "127.0.0.2") else { continue }
                    try? t.send(BlockCommand.password.block(Array("guess\(guess)".utf8)))
                    _ = try? t.send(BlockCommand.ping.block())
                    guess += 16
                    usleep(2000)
                }
            }
        }
        // 500 honest tuners from 127.0.0.1: every connect first (all unauthenticated at once), then
        // each says hello, answers a PING and sends captions at real rate.
        let honest = try (0..<500).map { _ in try TestTuner(port: port, from: "127.0.0.1") }
        for (i, t) in honest.enumerated() {
            try t.send(HostileTunerTests.hello(password: "s3cret", description: "honest-\(i)") + BlockCommand.ping.block())
        }
        var answered = 0
        for t in honest where await t.read(count: 1, timeout: 20) == [0x37] { answered += 1 }
        for frame in 0..<15 {
            for t in honest { try? t.send(Self.captions(frame)) }
            try await Task.sleep(for: .milliseconds(33))
        }
        abusing.store(false, ordering: .relaxed)
        await guesses.value
        #expect(answered == 500, "\(answered) of 500 honest tuners answered")
        #expect(try await serve.metric("ccr_connected_tuners") == 500)
        #expect(try await serve.metric("ccr_connections_refused_total{reason=\"address-limit\"}") == 0)
        #expect(try await serve.metric("ccr_connections_refused_total{reason=\"unauthenticated-limit\"}") == 0)
        // The abuser was locked out, and its silent connections closed at the handshake deadline.
        #expect(try await serve.metric("ccr_lockouts_total") >= 1)
        #expect(try await serve.metric("ccr_connections_refused_total{reason=\"locked-out\"}") > 0)
        for t in silent { #expect(await t.readUntilClosed(timeout: 5) != nil) }
        // Every honest tuner's captions were read (15 records each, two blocks per record).
        #expect(await eventually { (try? await serve.metric("ccr_records_total")) == 500 * 15 })
        let ping = try TestTuner(port: port, from: "127.0.0.1")
        try ping.send(HostileTunerTests.hello(password: "s3cret", description: "late") + BlockCommand.ping.block())
        #expect(await ping.read(count: 1) == [0x37])
    }

    @Test("an address is held to unauthenticated_per_address only after it misbehaved: silent connections are admitted once, closed at the deadline, then capped")
    func capAfterStrikes() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig(limits: "unauthenticated_per_address = 8"), metrics: true)
        defer { serve.remove() }
        try await serve.start()
        // A clean address: 20 at once are admitted (and closed at the 2 s deadline, which strikes it).
        let first = try (0..<20).map { _ in try TestTuner(port: serve.port, from: "127.0.0.7") }
        for t in first { #expect(await t.readUntilClosed(timeout: 5) == []) }
        #expect(try await serve.metric("ccr_connections_closed_total{reason=\"handshake\"}") == 20)
        // Struck: the ninth and later are refused at once.
        let second = try (0..<20).map { _ in try TestTuner(port: serve.port, from: "127.0.0.7") }
        var refused = 0
        for t in second where await t.readUntilClosed(timeout: 5) == BlockCommand.connectionLimit.block() { refused += 1 }
        #expect(refused == 12)
        #expect(try await serve.metric("ccr_connections_refused_total{reason=\"address-limit\"}") == 12)
        // Another address is still clean.
        let other = try (0..<20).map { _ in try TestTuner(port: serve.port, from: "127.0.0.8") }
        for t in other { try t.send(HostileTunerTests.hello(description: "clean") + BlockCommand.ping.block()) }
        for t in other { #expect(await t.read(count: 1) == [0x37]) }
    }
}
