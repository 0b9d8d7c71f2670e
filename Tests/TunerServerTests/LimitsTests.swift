import Foundation
import Logging
import Store
import SupportKit
import Testing
@testable import TunerServer

/// The pieces behind `[limits]` (issue 16), without a network: budgets, admission and lockout,
/// log escaping, the store queue bound, and the config keys.
@Suite struct LimitsTests {
    /// `spend`, usable inside `#expect`.
    func take(_ budget: inout RateBudget, _ amount: Double, at ms: Int64) -> Bool {
        budget.spend(amount, atMilliseconds: ms)
    }

    @Test("a budget starts full, refills at its rate, never above its capacity")
    func rateBudget() {
        var fresh = RateBudget(capacity: 100, perSecond: 10)
        #expect(take(&fresh, 100, at: 0))
        #expect(!take(&fresh, 1, at: 0))
        #expect(take(&fresh, 9, at: 1_000), "1 s refills 10; the 1 overspent stays owed")
        #expect(!take(&fresh, 1, at: 1_000))
        // A day of quiet refills to the capacity only.
        #expect(take(&fresh, 100, at: 86_400_000))
        #expect(!take(&fresh, 1, at: 86_400_000))
    }

    @Test("the caption budget is broadcast's rate: an hour of recording passes at once, a flood does not")
    func pairBudget() {
        var limits = TunerLimits()
        var budget = limits.pairBudget
        // 89.bin: 106,528 pairs in 50 minutes, replayed at full speed.
        #expect(take(&budget, 106_528, at: 0))
        // Then 4x real time is fine for ever...
        for second in 1...600 { #expect(take(&budget, 4 * 59.9, at: Int64(second) * 1000)) }
        // ...and 50x is not for long.
        limits.burstSeconds = 60
        budget = limits.pairBudget
        var refused = false
        for second in 1...60 where !take(&budget, 50 * 59.9, at: Int64(second) * 1000) { refused = true; break }
        #expect(refused)
    }

    @Test("admission: unauthenticated connections capped in all and per address; leaving frees the place")
    func unauthenticatedCaps() {
        var limits = TunerLimits()
        limits.unauthenticated = 5
        limits.unauthenticatedPerAddress = 3
        let admission = TunerAdmission(limits: limits)
        for _ in 0..<3 { #expect(admission.connect("10.0.0.1", nowMs: 0) == nil) }
        #expect(admission.connect("10.0.0.1", nowMs: 0) == .addressLimit)
        for _ in 0..<2 { #expect(admission.connect("10.0.0.2", nowMs: 0) == nil) }
        #expect(admission.connect("10.0.0.3", nowMs: 0) == .unauthenticatedLimit)
        admission.leaveUnauthenticated("10.0.0.1")
        #expect(admission.connect("10.0.0.3", nowMs: 0) == nil)
        #expect(admission.unauthenticatedCount == 5)
    }

    @Test("lockout after N wrong passwords from one address, doubling each time up to an hour; a right password forgets the failures")
    func lockout() {
        var limits = TunerLimits()
        limits.passwordFailures = 3
        limits.lockoutSeconds = 60
        let admission = TunerAdmission(limits: limits)
        #expect(admission.passwordFailed("a", nowMs: 0) == nil)
        #expect(admission.passwordFailed("a", nowMs: 0) == nil)
        #expect(admission.passwordFailed("a", nowMs: 0) == 60)
        #expect(admission.connect("a", nowMs: 59_000) == .lockedOut)
        #expect(admission.isLockedOut("a", nowMs: 59_000))
        #expect(!admission.isLockedOut("b", nowMs: 59_000))
        #expect(admission.connect("a", nowMs: 60_001) == nil)
        var lockouts: [Double] = []
        for round in 0..<8 {
            for _ in 0..<3 { if let s = admission.passwordFailed("a", nowMs: Int64(round) * 10_000_000) { lockouts.append(s) } }
        }
        #expect(lockouts == [120, 240, 480, 960, 1920, 3600, 3600, 3600])
        admission.passwordAccepted("a")
        #expect(admission.passwordFailed("a", nowMs: 100_000_000) == nil)
    }

    @Test("a connection closed over a limit leaves its budgets to the next from its address, until they are full again")
    func budgetsOutliveReconnects() {
        var limits = TunerLimits()
        limits.burstSeconds = 60
        let admission = TunerAdmission(limits: limits)
        #expect(admission.budgets(for: "a", nowMs: 0) == nil)
        var spent = SessionBudgets(limits)
        #expect(!take(&spent.pairs, 10_000, at: 0))
        admission.limitReached("a", budgets: spent, nowMs: 0)
        var next = try! #require(admission.budgets(for: "a", nowMs: 1_000))
        #expect(!take(&next.pairs, 1_000, at: 1_000), "one second refills 240 pairs, not a new burst of 3,600")
        #expect(admission.budgets(for: "b", nowMs: 1_000) == nil)
        // Six minutes at 240 pairs a second refill the 6,400 owed and the 3,600 of burst.
        #expect(admission.budgets(for: "a", nowMs: 3_600_000) == nil)
    }

    @Test("an address whose budgets cannot pay for one more pair, line or program change is refused at accept, until they can")
    func spentAddressRefusedAtAccept() {
        var limits = TunerLimits()
        limits.burstSeconds = 60
        let admission = TunerAdmission(limits: limits)
        var spent = SessionBudgets(limits)
        // 120 lines of burst, 8 a second after: 4 owed.
        #expect(!take(&spent.lines, 124, at: 0))
        admission.limitReached("a", budgets: spent, nowMs: 0)
        #expect(admission.refusalAtAccept("a", nowMs: 0) == .spent)
        #expect(admission.connect("a", nowMs: 500) == .spent, "the handler's own check refuses it too")
        #expect(admission.refusalAtAccept("b", nowMs: 0) == nil)
        #expect(admission.refusalAtAccept("a", nowMs: 600) == .spent, "4.8 lines refilled: 0.8 to spend")
        #expect(admission.refusalAtAccept("a", nowMs: 700) == nil, "5.6 lines refilled: one line can be paid")
        #expect(admission.connect("a", nowMs: 700) == nil)
        #expect(TunerAdmission.Refusal.spent.reply.isEmpty, "an address refused for what it did learns nothing")
    }

    @Test("log escaping: newlines, ANSI escapes, DEL, C1 and line separators become visible escapes")
    func escaping() {
        #expect(LogEscaping.escape("plain tuner") == "plain tuner")
        #expect(LogEscaping.escape("a\nb\r\tc") == "a\\nb\\r\\tc")
        #expect(LogEscaping.escape("\u{1B}[31mred\u{7F}\u{85}\u{2028}") == "\\u{1B}[31mred\\u{7F}\\u{85}\\u{2028}")
        #expect(LogEscaping.escape("café ✓") == "café ✓")
    }

    @Test("the store queue drops lines past its bound and counts them; program and tuner events are always queued")
    func storeQueueBound() async throws {
        let dir = try makeTemporaryDirectory("queue")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try await openStore(.sqlite(path: dir.appendingPathComponent("ccr.sqlite").path))
        let node = try await store.registerNode(hostname: "test")
        let metrics = ServerMetrics()
        let writer = StoreWriter(store: store, nodeID: node, logger: Logger(label: "test"), metrics: metrics, queueLimit: 100)
        writer.enqueue(.connected(connection: 1, TunerConnection(nodeID: 0, address: "127.0.0.1", port: 1, description: "q", connectedAt: 1)))
        writer.enqueue(.programStarted(connection: 1, program: 1, at: 1, name: nil))
        for i in 0..<1_000 {
            writer.enqueue(.line(connection: 1, program: 1, service: 0, startMs: Int64(i), endMs: Int64(i + 1), mode: "pop-on", text: "line \(i)", capturedAt: 1))
        }
        writer.enqueue(.programEnded(program: 1, at: 2))
        #expect(metrics.snapshot.storeDropped == 902)
        #expect(writer.queuedCount == 101)
        let run = Task { await writer.run() }
        writer.finish()
        await run.value
        let tuner = try #require(try await store.tuners(includeDisconnected: true).first)
        let program = try #require(try await store.programs(ProgramQuery(tunerID: tuner.id)).first)
        #expect(try await store.lines(programID: program.id).count == 98)
        #expect(program.endedAt == 2)
        await store.close()
    }

    @Test("[limits] keys are read, and a bad value names the file, line and key")
    func configuration() throws {
        let dir = try makeTemporaryDirectory("limits")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("ccr.conf").path
        try "[limits]\nrealtime_factor = 2\nburst_seconds = 120\nlines_per_second = 0.5\nunauthenticated_per_address = 3\n[database]\nspool_limit = 1048576\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        let c = try ServerConfiguration.load(path: path, environment: [:])
        #expect(c.limits.realTimeFactor == 2 && c.limits.burstSeconds == 120 && c.limits.unauthenticatedPerAddress == 3)
        #expect(c.limits.lineBudget == RateBudget(capacity: 60, perSecond: 1))
        #expect(c.limits.passwordFailures == TunerLimits().passwordFailures)
        #expect(c.spoolLimitBytes == 1_048_576)
        try "[limits]\nburst_seconds = -5\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: (any Error).self) { try ServerConfiguration.load(path: path, environment: [:]) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("limits.burst_seconds"))
    }
}
