import Captions
import Foundation
import SupportKit
import Synchronization
import Testing
@testable import TunerServer
#if canImport(Glibc)
import Glibc
#endif
@testable import ServerFiles

/// `ccr serve` as a real process against tuners that misbehave on purpose (issue 16): each hole
/// is driven the way an attacker would, and what it could make the server do is measured against
/// the limits in docs/ccr.md ("Limits").
@Suite(.serialized, .enabled(if: CCRBinary.shouldRun, "needs the ccr executable (swift test builds it; or set CCR_BINARY) and the shared fixtures"))
struct HostileTunerTests {
    /// PASSWORD, CC_DESC and BIN_HEADER as the client sends them.
    static func hello(password: String = "", description: String) -> [UInt8] {
        BlockCommand.password.block(Array(password.utf8)) + BlockCommand.ccDescription.block(Array(description.utf8))
            + BlockCommand.binHeader.block(RCWTHeader.bytes)
    }

    /// One record as the client sends it: a 10-byte BIN_DATA block, then one with the triplets.
    static func record(_ timestamp: Int64, _ triplets: [CCTriplet]) -> [UInt8] {
        let bytes = RCWTRecord(timestamp: timestamp, triplets: triplets).bytes
        return BlockCommand.binData.block(Array(bytes.prefix(10))) + BlockCommand.binData.block(Array(bytes.dropFirst(10)))
    }

    /// Field 1 pairs of a roll-up flood: each text pair and carriage return makes a caption line.
    static let floodRecord: [CCTriplet] = {
        var t: [CCTriplet] = [CCTriplet(info: 0xFC, data1: 0x14, data2: 0x25)]
        for i in 0..<15 {
            t.append(CCTriplet(info: 0xFC, data1: 0x41 + UInt8(i), data2: 0x42))
            t.append(CCTriplet(info: 0xFC, data1: 0x14, data2: 0x2D))
        }
        return t
    }()

    /// Field 2 pairs of one XDS program-name packet (class 1, type 3) with its checksum.
    static func programNamePacket(_ name: String) -> [CCTriplet] {
        var bytes: [UInt8] = [0x01, 0x03] + Array(name.utf8)
        if bytes.count % 2 == 1 { bytes.append(0x20) }
        bytes += [0x0F]
        let sum = bytes.reduce(0) { $0 + Int($1) }
        bytes.append(UInt8((128 - sum % 128) % 128))
        return stride(from: 0, to: bytes.count, by: 2).map { CCTriplet(info: 0xFD, data1: bytes[$0], data2: bytes[$0 + 1]) }
    }

    /// Field 1 text pairs only (a row typed for ever, never ended).
    static let characterRecord: [CCTriplet] = [CCTriplet(info: 0xFC, data1: 0x14, data2: 0x29)]
        + (0..<30).map { _ in CCTriplet(info: 0xFC, data1: 0x41, data2: 0x42) }

    /// A flood of `record`s, up to 8 MB from `source`, until the server closes it: the bytes it took.
    static func flood(_ triplets: [CCTriplet], port: Int, from source: String) async throws -> Int {
        let flood = try TestTuner(port: port, from: source)
        try flood.send(Self.hello(description: "flood"))
        var ts: Int64 = 0, sent = 0
        var chunk: [UInt8] = []
        while sent < 8 << 20 {
            chunk.removeAll(keepingCapacity: true)
            for _ in 0..<64 {
                chunk += Self.record(ts, triplets)
                ts += 33
            }
            guard (try? flood.send(chunk)) != nil else { break }
            sent += chunk.count
        }
        _ = await flood.readUntilClosed(timeout: 20)
        return sent
    }

    /// A tuner that answers PING every 50 ms while `body` runs: the 95th percentile of its waits
    /// for 0x37, in ms (a PING never answered counts as infinite). A stall of the event loops
    /// (the quadratic file-name search made one of 772 ms) shows in most PINGs; one late PING on
    /// a busy machine does not.
    static func pingWait(port: Int, during body: () async throws -> Void) async throws -> Double {
        let probe = try TestTuner(port: port)
        try probe.send(hello(description: "ping-probe"))
        let waits = Mutex<[Double]>([])
        let running = Atomic<Bool>(true)
        let pinger = Task.detached {
            while running.load(ordering: .relaxed) {
                let start = Date()
                guard (try? probe.send(BlockCommand.ping.block())) != nil, await probe.read(count: 1, timeout: 10) == [0x37] else {
                    waits.withLock { $0.append(.infinity) }
                    return
                }
                waits.withLock { $0.append(Date().timeIntervalSince(start) * 1000) }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        try await body()
        running.store(false, ordering: .relaxed)
        await pinger.value
        let sorted = waits.withLock { $0 }.sorted()
        return sorted.isEmpty ? .infinity : sorted[min(sorted.count - 1, sorted.count * 95 / 100)]
    }

    /// Lines stored from tuners that called themselves "flood".
    static func floodLines(_ serve: CCRProcess) -> Int {
        Int(TimestampProcessTests.sqlite(serve, "SELECT COUNT(*) FROM caption_lines l JOIN tuners t ON t.id = l.tuner_id WHERE t.description = 'flood'")) ?? -1
    }

    static func archiveBytes(_ root: URL) -> Int {
        archivedFiles(root, suffix: "").reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }
    }

    // MARK: 1. floods

    @Test("caption floods are closed at the burst budget (lines, then pairs): what came before kept, stored lines and archive bounded, reconnecting buys nothing, an honest tuner untouched")
    func captionFlood() async throws {
        // 30 s of broadcast at once (1,800 pairs, 60 lines), then 4x real time.
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig(limits: "burst_seconds = 30"), metrics: true)
        defer { serve.remove() }
        try await serve.start()
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        let reference = parseSRT(String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self))
        var sent = 0, characters = 0, linesAfterFirst = 0, linesAfterSecond = 0
        let ping = try await Self.pingWait(port: serve.port) {
            async let honest: Void = ReplayTests.replay(ServeFaultTests.described(capture, as: "honest").flatMap { $0 }, into: serve.port,
                                                        pace: .realTime(speed: 8))
            // Carriage returns: a line per two pairs, stopped by the line budget.
            sent = try await Self.flood(Self.floodRecord, port: serve.port, from: "127.0.0.2")
            _ = await eventually { Self.floodLines(serve) > 0 }
            linesAfterFirst = Self.floodLines(serve)
            // Reconnecting buys no new burst: the address starts from what it left.
            _ = try await Self.flood(Self.floodRecord, port: serve.port, from: "127.0.0.2")
            try await Task.sleep(for: .milliseconds(500))
            linesAfterSecond = Self.floodLines(serve)
            // Characters without a line end: stopped by the pair budget.
            characters = try await Self.flood(Self.characterRecord, port: serve.port, from: "127.0.0.7")
            try await honest
        }
        // (What the client sent includes what the kernels buffered on both sides.)
        #expect(sent < 1 << 20, "the server took \(sent) bytes before closing the line flood")
        #expect(linesAfterSecond - linesAfterFirst <= 10, "after the limit, a new connection from the address stored \(linesAfterSecond - linesAfterFirst) more lines")
        #expect(characters < 1 << 20, "the server took \(characters) bytes before closing the pair flood")
        // The second flood is refused as it is accepted while its address's line budget cannot pay
        // for a line (`AcceptFilter`); if it came after the overdraft was paid back, it is closed
        // over the limit at its first lines.
        #expect(await eventually {
            let closed = (try? await serve.metric("ccr_connections_closed_total{reason=\"limit\"}")) ?? 0
            let refused = (try? await serve.metric("ccr_connections_refused_total{reason=\"spent-budget\"}")) ?? 0
            return closed + refused == 3 && closed >= 2
        })
        #expect(serve.log.contains("caption lines faster than broadcast makes them"))
        #expect(serve.log.contains("caption data faster than broadcast can carry"))
        let lines = Self.floodLines(serve)
        #expect(lines >= 30, "what the flood sent before the limit stays stored")
        #expect(lines <= 80, "\(lines) lines stored from a burst of 60")
        let floodArchive = Self.archiveBytes(serve.archive.appendingPathComponent(Self.dayFolder()).appendingPathComponent("flood"))
        #expect(floodArchive < 1 << 20, "\(floodArchive) archive bytes")
        #expect(await eventually { (try? archivedCues(serve.archive, tuner: "honest")) == reference })
        #expect(ping < 500, "PINGs waited \(ping) ms (95th percentile) during the floods")
    }

    @Test("20,000 alternating XDS program names: closed at the program-change budget, files and program rows bounded, PINGs answered")
    func programNameFlood() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig(limits: "burst_seconds = 600\nprogram_changes_per_minute = 4"), metrics: true)
        defer { serve.remove() }
        try await serve.start()
        let ping = try await Self.pingWait(port: serve.port) {
            let flood = try TestTuner(port: serve.port)
            var stream = Self.hello(description: "names")
            for i in 0..<20_000 {
                stream += Self.record(Int64(i) * 33, Self.programNamePacket(i % 2 == 0 ? "PROGRAM A" : "PROGRAM B"))
            }
            try? flood.send(stream)
            _ = await flood.readUntilClosed(timeout: 20)
        }
        #expect(await eventually { (try? await serve.metric("ccr_connections_closed_total{reason=\"limit\"}")) == 1 })
        #expect(serve.log.contains("program changes faster than 4 a minute"))
        // The address owes a program change, repaid in 15 s: its next connections are closed as
        // they are accepted, unread, and make no tuner row, program or file.
        for _ in 0..<5 {
            let again = try TestTuner(port: serve.port)
            try? again.send(Self.hello(description: "names") + Self.record(0, Self.programNamePacket("PROGRAM C")))
            _ = await again.readUntilClosed(timeout: 5)
        }
        #expect(await eventually { (try? await serve.metric("ccr_connections_refused_total{reason=\"spent-budget\"}")) == 5 })
        #expect(Int(TimestampProcessTests.sqlite(serve, "SELECT COUNT(*) FROM tuners WHERE description = 'names'")) == 1)
        // 600 s of burst allows 10 changes: 11 programs at most, 4 files each.
        let programs = Int(TimestampProcessTests.sqlite(serve, "SELECT COUNT(*) FROM programs p JOIN tuners t ON t.id = p.tuner_id WHERE t.description = 'names'")) ?? -1
        #expect((2...12).contains(programs), "\(programs) program rows")
        let files = archivedFiles(serve.archive, suffix: "", tuner: "names").count
        #expect(files <= 12 * 4, "\(files) archive files")
        #expect(ping < 500, "PINGs waited \(ping) ms (95th percentile) during the flood")
    }

    // MARK: 2. slots before authentication

    @Test("connections trickling a byte now and then are closed at the handshake deadline and hold no tuner slot; their address then gets at most 8 unauthenticated")
    func slotsBeforeAuthentication() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig(server: "max_tuners = 4", limits: "unauthenticated_per_address = 8"), metrics: true)
        defer { serve.remove() }
        try await serve.start()
        let start = Date()
        let tricklers = try (0..<4).map { _ in try TestTuner(port: serve.port, from: "127.0.0.3") }
        // A PASSWORD block one byte every half second: never complete within the deadline.
        let block = BlockCommand.password.block(Array(repeating: 0x78, count: 40))
        let trickle = Task.detached {
            for i in 0..<10 {
                for t in tricklers { try? t.send([block[i]]) }
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
        // A real tuner gets in while the four hold their connections.
        let capture = [UInt8](try Fixtures.sharedData("the.tudors.sendto.bin"))
        try await ReplayTests.replay(ServeFaultTests.described(capture, as: "real").flatMap { $0 }, into: serve.port, pace: .whole)
        let reference = parseSRT(String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self))
        #expect(await eventually { (try? archivedCues(serve.archive, tuner: "real")) == reference })
        for t in tricklers { #expect(await t.readUntilClosed(timeout: 10) != nil) }
        let closedAfter = Date().timeIntervalSince(start)
        #expect(closedAfter < 4, "trickling connections held for \(closedAfter) s (handshake_timeout 2)")
        trickle.cancel()
        #expect(try await serve.metric("ccr_connections_closed_total{reason=\"handshake\"}") == 4)
        #expect(try await serve.metric("ccr_connection_limit_rejections_total") == 0)

        // 20 silent connections from the tricklers' address, which missed the deadline: the ninth
        // and later are refused at once (SharedAddressTests: a clean address is not capped so).
        let silent = try (0..<20).map { _ in try TestTuner(port: serve.port, from: "127.0.0.3") }
        var refused = 0
        // (The admitted eight are closed at the handshake deadline, with nothing.)
        for t in silent where await t.readUntilClosed(timeout: 4) == BlockCommand.connectionLimit.block() { refused += 1 }
        #expect(refused == 12)
        #expect(try await serve.metric("ccr_connections_refused_total{reason=\"address-limit\"}") == 12)
    }

    // MARK: 3. password guessing

    @Test("64 connections guessing the password, closing their sockets at once: the address is locked out after 5 failures; another address gets in")
    func passwordGuessing() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig(server: "password = s3cret", limits: "password_failures = 5\nlockout_seconds = 60"), metrics: true)
        defer { serve.remove() }
        try await serve.start()
        let port = serve.port
        let start = Date()
        let attempts = Mutex(0)
        // 64 guessing connections at a time, each on a thread of its own (blocking sockets).
        await Self.onThreads(64) { worker in
            var guess = worker
            while Date().timeIntervalSince(start) < 3 {
                guard let t = try? TestTuner(port: port, from: "127.0.0.5") else { continue }
                try? t.send(BlockCommand.password.block(Array("guess\(guess)".utf8)))
                attempts.withLock { $0 += 1 }
                guess += 64
                // The socket closes here, without waiting for the answer.
            }
        }
        let evaluated = try await serve.metric("ccr_wrong_passwords_total")
        #expect(attempts.withLock { $0 } > 200)
        #expect(evaluated >= 5 && evaluated <= 7, "\(evaluated) guesses evaluated")
        #expect(try await serve.metric("ccr_lockouts_total") == 1)
        #expect(serve.log.contains("address locked out for 60 s after 5 wrong passwords"))
        // Locked out: even the right password is not evaluated.
        let locked = try TestTuner(port: port, from: "127.0.0.5")
        try? locked.send(Self.hello(password: "s3cret", description: "locked"))
        #expect(await locked.readUntilClosed(timeout: 5) == [])
        // Another address is not affected.
        let other = try TestTuner(port: port, from: "127.0.0.6")
        try other.send(Self.hello(password: "s3cret", description: "other") + BlockCommand.ping.block())
        #expect(await other.read(count: 1) == [0x37])
    }

    // MARK: 7, 8. archive collision, log injection

    @Test("two tuners with one description starting in one second write separate files, each with its own captions")
    func sameDescriptionSameSecond() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig())
        defer { serve.remove() }
        try await serve.start()
        let tudors = ServeFaultTests.described([UInt8](try Fixtures.sharedData("the.tudors.sendto.bin")), as: "twin").flatMap { $0 }
        let eightyNine = ServeFaultTests.described([UInt8](try Fixtures.sharedData("89.sendto.bin")), as: "twin").flatMap { $0 }
        let a = try TestTuner(port: serve.port), b = try TestTuner(port: serve.port)
        // Both headers and first records at once, then the rest.
        try a.send(tudors.prefix(200))
        try b.send(eightyNine.prefix(200))
        try a.send(tudors.dropFirst(200))
        try b.send(eightyNine.dropFirst(200))
        a.finishSending()
        b.finishSending()
        _ = await a.readUntilClosed(timeout: 60)
        _ = await b.readUntilClosed(timeout: 60)
        let expected = [
            String(decoding: try Fixtures.sharedData("the.tudors.sendto.srt"), as: UTF8.self),
            String(decoding: try Fixtures.sharedData("89.sendto.srt"), as: UTF8.self),
        ]
        #expect(await eventually {
            let srts = archivedFiles(serve.archive, suffix: ".srt", tuner: "twin").compactMap { try? String(contentsOf: $0, encoding: .utf8) }
            return Set(srts) == Set(expected)
        })
        for bin in archivedFiles(serve.archive, suffix: ".bin", tuner: "twin") {
            let bytes = [UInt8](try Data(contentsOf: bin))
            #expect(try RCWTRecordsCheck.count(bytes) > 0, "\(bin.lastPathComponent): one header, whole records")
        }
    }

    @Test("a CC_DESC with a newline and ANSI escapes cannot forge a log line")
    func logInjection() async throws {
        let serve = try CCRProcess(config: CCRProcess.sqliteConfig())
        defer { serve.remove() }
        try await serve.start()
        let evil = "tuner\n2026-12-07T00:00:00+0000 critical ccr.serve: FORGED\u{1B}[2J\u{1B}[31m"
        let t = try TestTuner(port: serve.port)
        try t.send(Self.hello(description: evil))
        t.finishSending()
        _ = await t.readUntilClosed(timeout: 10)
        #expect(await eventually { serve.log.contains("tuner disconnected") })
        let log = serve.log
        #expect(!log.contains("\u{1B}"))
        #expect(!log.split(separator: "\n").contains { $0.hasPrefix("2026-12-07T00:00:00+0000 critical") })
        #expect(log.contains("tuner\\n2026-12-07T00:00:00+0000 critical ccr.serve: FORGED\\u{1B}[2J"))
    }

    /// Runs `body(i)` for i in 0..<count, each on its own thread, and waits for all.
    static func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let group = DispatchGroup()
            for i in 0..<count {
                group.enter()
                Thread { body(i); group.leave() }.start()
            }
            group.notify(queue: .global()) { done.resume() }
        }
    }

    static func dayFolder() -> String {
        let now = UTCTime.now()
        return "\(now.year)/\(pad2(now.month))/\(pad2(now.day))"
    }
}
