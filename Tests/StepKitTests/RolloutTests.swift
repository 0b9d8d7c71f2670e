import Foundation
import SupportKit
import Testing
@testable import StepKit

/// Batches and the failure budget (Ansible's `serial` and `max_fail_percentage`), then the
/// rollout itself with a balancer and hosts that only record what was done to them: random host
/// counts, batch sizes, budgets and failing hosts, checked against a plain model of the rules.
@Suite struct RolloutPlanTests {
    @Test func batchesKeepTheOrderAndTheSize() throws {
        var rng = SplitMix64(state: 0x22_5E71A1)
        for _ in 0..<500 {
            let n = Int.random(in: 1...40, using: &rng), serial = Int.random(in: 1...50, using: &rng)
            let hosts = (0..<n).map { "h\($0)" }
            let plan = try RolloutPlan(hosts: hosts, serial: serial)
            #expect(plan.batches.flatMap { $0 } == hosts, "n \(n) serial \(serial)")
            #expect(plan.batches.count == (n + serial - 1) / serial)
            #expect(plan.batches.dropLast().allSatisfy { $0.count == serial })
            #expect((1...serial).contains(plan.batches.last!.count))
        }
    }

    @Test func badPlansAreRefusedNamingTheProblem() {
        #expect(throws: RolloutError.badSerial(0)) { try RolloutPlan(hosts: ["a"], serial: 0) }
        #expect(throws: RolloutError.noHosts) { try RolloutPlan(hosts: [], serial: 1) }
        #expect(throws: RolloutError.duplicateHost("a")) { try RolloutPlan(hosts: ["a", "b", "a"], serial: 1) }
        #expect("\(RolloutError.duplicateHost("a"))".contains("host a is named twice"))
    }

    @Test func aBatchDrainingEveryServerIsFound() throws {
        var rng = SplitMix64(state: 0xD2A1)
        for _ in 0..<300 {
            let n = Int.random(in: 1...12, using: &rng), serial = Int.random(in: 1...13, using: &rng)
            let hosts = (0..<n).map { "h\($0)" }
            // The backend's servers: some of the rollout's hosts, maybe others the rollout leaves alone.
            var servers = Set(hosts.filter { _ in Bool.random(using: &rng) })
            if Bool.random(using: &rng) { servers.insert("other") }
            let plan = try RolloutPlan(hosts: hosts, serial: serial)
            let expected = servers.isEmpty ? nil : plan.batches.first { servers.isSubset(of: Set($0)) }
            #expect(plan.batchDrainingEverything(of: servers) == expected)
            if servers.contains("other") { #expect(plan.batchDrainingEverything(of: servers) == nil, "a server outside the rollout keeps serving") }
        }
        #expect(try RolloutPlan(hosts: ["a", "b"], serial: 2).batchDrainingEverything(of: ["a", "b"]) == ["a", "b"])
        #expect(try RolloutPlan(hosts: ["a", "b"], serial: 1).batchDrainingEverything(of: ["a", "b"]) == nil)
    }

    @Test func failureBudgetsAsCountsAndPercentages() throws {
        #expect(try FailureBudget(parsing: "0").limit == .count(0))
        #expect(try FailureBudget(parsing: "3").limit == .count(3))
        #expect(try FailureBudget(parsing: "25%").limit == .percent(25))
        #expect(try FailureBudget(parsing: "100%").limit == .percent(100))
        for bad in ["-1", "x", "101%", "%", "", "1.5", "-5%"] {
            #expect(throws: RolloutError.badMaxFail(bad)) { try FailureBudget(parsing: bad) }
        }
        var rng = SplitMix64(state: 0xFA11)
        for _ in 0..<1000 {
            let total = Int.random(in: 1...200, using: &rng), p = Int.random(in: 0...100, using: &rng), n = Int.random(in: 0...10, using: &rng)
            let pct = FailureBudget(.percent(p)), count = FailureBudget(.count(n))
            let a = pct.allowed(of: total)
            // Rounded down: the largest number of hosts that is at most p% of them.
            #expect(a * 100 <= p * total && (a + 1) * 100 > p * total, "\(p)% of \(total): \(a)")
            let failed = Int.random(in: 0...total, using: &rng)
            // More than p% of the hosts failed.
            #expect(pct.exceeded(failed: failed, total: total) == (failed * 100 > p * total), "\(failed) of \(total) against \(p)%")
            #expect(count.exceeded(failed: failed, total: total) == (failed > n))
        }
    }
}

/// A balancer that records what it was told, and checks the order of the calls per server.
final class RecordingBalancer: RolloutBalancer, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var log: [String] = []
    private var drained: Set<String> = []
    /// The most servers out of rotation at once.
    private(set) var mostDrained = 0
    let failDrain: Set<String>
    init(failDrain: Set<String> = []) { self.failDrain = failDrain }
    var summary: String { "fake lb" }
    func drain(_ server: String, dryRun: Bool) async throws -> String {
        try lock.withLock {
            log.append("drain \(server)\(dryRun ? " (dry)" : "")")
            if failDrain.contains(server) { throw RolloutError.noHosts }
            if !dryRun { drained.insert(server); mostDrained = max(mostDrained, drained.count) }
        }
        return "drained"
    }
    func undrain(_ server: String, dryRun: Bool) async throws -> String {
        lock.withLock { log.append("undrain \(server)\(dryRun ? " (dry)" : "")"); drained.remove(server) }
        return "up"
    }
    var stillDrained: Set<String> { lock.withLock { drained } }
    var calls: [String] { lock.withLock { log } }
}

final class RecordingHosts: @unchecked Sendable {
    private let lock = NSLock()
    private var log: [String] = []
    let failing: Set<String>
    let unhealthy: Set<String>
    init(failing: Set<String> = [], unhealthy: Set<String> = []) { self.failing = failing; self.unhealthy = unhealthy }
    var calls: [String] { lock.withLock { log } }
    var work: RolloutWork {
        RolloutWork(apply: { host in
            self.lock.withLock { self.log.append("apply \(host)") }
            let state: StepState = self.failing.contains(host) ? .failed : .changed
            let step = StepReport(index: 0, id: "s", description: "s", state: state, seconds: 0, diff: nil, actions: [], undo: [],
                                  message: state == .failed ? "disk full" : nil, irreversible: false,
                                  failure: state == .failed ? Failure(.commandFailed, "disk full") : nil)
            return HostReport(host: host, runId: "r", mode: .apply, steps: [step], failure: nil, seconds: 0, roundTrips: 1)
        }, gate: { host, _ in
            self.lock.withLock { self.log.append("gate \(host)") }
            if self.unhealthy.contains(host) { throw RolloutError.duplicateHost(host) }
            return "healthy"
        })
    }
}

@Suite struct RolloutRunTests {
    /// The rules, plainly: batch after batch; every host of a started batch is worked on; a
    /// failure beyond the budget stops the rollout after its batch.
    func model(_ plan: RolloutPlan, failing: Set<String>, budget: FailureBudget) -> [String: RolloutNodeState] {
        var states: [String: RolloutNodeState] = [:], failed = 0, stopped = false
        for batch in plan.batches {
            for h in batch { states[h] = stopped ? .notStarted : failing.contains(h) ? .failed : .done }
            if !stopped {
                failed += batch.filter(failing.contains).count
                stopped = failed > budget.allowed(of: plan.hosts.count)
            }
        }
        return states
    }

    @Test func randomRolloutsFollowTheRules() async throws {
        var rng = SplitMix64(state: 0x5E41A1)
        for round in 0..<300 {
            let n = Int.random(in: 1...10, using: &rng), serial = Int.random(in: 1...n, using: &rng)
            let hosts = (0..<n).map { "node\($0)" }
            let budget = Bool.random(using: &rng) ? FailureBudget(.count(Int.random(in: 0...3, using: &rng)))
                                                   : FailureBudget(.percent(Int.random(in: 0...60, using: &rng)))
            // Failing hosts fail in one of three places: the drain, the apply or the health gate.
            var drainFails = Set<String>(), applyFails = Set<String>(), gateFails = Set<String>()
            for h in hosts where Int.random(in: 0..<4, using: &rng) == 0 {
                switch Int.random(in: 0..<3, using: &rng) { case 0: drainFails.insert(h); case 1: applyFails.insert(h); default: gateFails.insert(h) }
            }
            let failing = drainFails.union(applyFails).union(gateFails)
            let plan = try RolloutPlan(hosts: hosts, serial: serial)
            let lb = RecordingBalancer(failDrain: drainFails), fleet = RecordingHosts(failing: applyFails, unhealthy: gateFails)
            let report = await Rollout(runbook: "web-node", runId: "r", plan: plan, budget: budget, dryRun: false, balancer: lb, work: fleet.work).run()
            let context = "round \(round): n \(n) serial \(serial) max-fail \(budget) failing \(failing.sorted())"

            let expected = model(plan, failing: failing, budget: budget)
            for node in report.nodes { #expect(node.state == expected[node.host], "\(node.host): \(context)") }
            // Each failure typed by where it happened: a failed apply keeps its step's kind, a
            // health gate that does not pass after the apply is verifyFailed.
            for node in report.nodes {
                let kind = node.failure?.kind
                if node.state != .failed { #expect(kind == nil, "\(node.host): \(context)") }
                else if drainFails.contains(node.host) { #expect(kind != nil, "\(node.host): \(context)") }
                else if applyFails.contains(node.host) { #expect(kind == .commandFailed, "\(node.host): \(context)") }
                else { #expect(kind == .verifyFailed, "\(node.host): \(context)") }
            }
            #expect(report.nodes.map(\.host) == hosts, "\(context)")
            #expect(report.batches.map { $0.nodes.map(\.host) } == plan.batches, "\(context)")
            #expect(report.exitCode == (failing.isEmpty ? 0 : 1), "\(context)")
            #expect((report.stopped != nil) == expected.values.contains(.notStarted), "\(context)")

            // Nothing at all is done to a host the rollout did not reach.
            let touched = Set((lb.calls + fleet.calls).map { String($0.split(separator: " ")[1]) })
            for (h, s) in expected where s == .notStarted { #expect(!touched.contains(h), "\(h) was touched: \(context)") }
            // Per host: drain, apply, gate, undrain, in that order, each phase only if the one before it passed.
            for h in hosts where expected[h] != .notStarted {
                let own = (lb.calls + fleet.calls).filter { $0.hasSuffix(" \(h)") }.map { String($0.split(separator: " ")[0]) }
                let wanted = drainFails.contains(h) ? ["drain"] : applyFails.contains(h) ? ["drain", "apply"]
                    : gateFails.contains(h) ? ["drain", "apply", "gate"] : ["drain", "apply", "gate", "undrain"]
                #expect(own.sorted() == wanted.sorted(), "\(h): \(own): \(context)")
                #expect(lb.calls.filter { $0.hasSuffix(" \(h)") }.first?.hasPrefix("drain") == true)
            }
            // Never more servers out of rotation than a batch plus the failed hosts left drained.
            #expect(lb.mostDrained <= serial + applyFails.union(gateFails).count, "\(context)")
            // Failed hosts (after their drain) stay drained; the others are back.
            #expect(lb.stillDrained == applyFails.union(gateFails).filter { expected[$0] == .failed }, "\(context)")
        }
    }

    /// The brief's case: the second node fails, the third is untouched; after the fix, the
    /// resumed rollout does not apply the first node again.
    @Test func aFailedRolloutResumesWithoutReapplyingFinishedHosts() async throws {
        let plan = try RolloutPlan(hosts: ["n1", "n2", "n3"], serial: 1)
        let lb = RecordingBalancer(), broken = RecordingHosts(failing: ["n2"])
        let first = await Rollout(runbook: "repo-node", runId: "r1", plan: plan, dryRun: false, balancer: lb, work: broken.work).run()
        #expect(first.nodes.map(\.state) == [.done, .failed, .notStarted])
        #expect(first.nodes[1].message?.contains("left drained at fake lb") == true)
        #expect(first.nodes[1].message?.contains("disk full") == true)
        #expect(!broken.calls.contains { $0.hasSuffix("n3") } && !lb.calls.contains { $0.hasSuffix("n3") })
        #expect(lb.stillDrained == ["n2"])
        #expect(first.nodes[0].phases.map(\.name) == ["drain", "apply", "health", "undrain"])
        #expect(first.nodes.map { $0.failure?.kind } == [nil, .commandFailed, nil])
        if JSONSchemaCheck.shouldRun {
            let json = try first.json()
            let errors = try JSONSchemaCheck.errors(in: json, schema: "ccrun.rollout-1.json")
            #expect(errors.isEmpty, "\(errors)\n\(json)")
        }

        let fixed = RecordingHosts()
        let resumed = await Rollout(runbook: "repo-node", runId: "r1", plan: plan, dryRun: false, balancer: lb, doneEarlier: ["n1"], work: fixed.work).run()
        #expect(resumed.nodes.map(\.state) == [.doneEarlier, .done, .done])
        #expect(fixed.calls == ["apply n2", "gate n2", "apply n3", "gate n3"])
        #expect(lb.stillDrained.isEmpty)
        let lines = RolloutPrinter().summary(resumed)
        #expect(lines == ["batch 1: n1 done earlier", "batch 2: n2 done \(RolloutPrinter.time(resumed.nodes[1].seconds))",
                          "batch 3: n3 done \(RolloutPrinter.time(resumed.nodes[2].seconds))",
                          "rollout of repo-node (--serial 1, --max-fail 0): 2 done, 1 done earlier in \(RolloutPrinter.time(resumed.seconds)) (run r1)"])
    }

    /// A dry-run goes the same way, telling the balancer it is one: the balancer changes nothing.
    @Test func aDryRunWalksTheSamePathChangingNothing() async throws {
        let plan = try RolloutPlan(hosts: ["a", "b", "c"], serial: 2)
        let lb = RecordingBalancer(), fleet = RecordingHosts()
        let report = await Rollout(runbook: "web-node", runId: "r", plan: plan, dryRun: true, balancer: lb, work: RolloutWork(apply: { host in
            _ = await fleet.work.apply(host)
            let step = StepReport(index: 0, id: "s", description: "s", state: host == "b" ? .wouldChange : .ok, seconds: 0, diff: nil,
                                  actions: [], undo: [], message: nil, irreversible: false)
            return HostReport(host: host, runId: "r", mode: .dryRun, steps: [step], failure: nil, seconds: 0, roundTrips: 1)
        }, gate: fleet.work.gate)).run()
        #expect(report.nodes.map(\.state) == [.ok, .wouldChange, .ok])
        #expect(report.exitCode == 2)
        #expect(lb.calls.allSatisfy { $0.hasSuffix("(dry)") } && lb.mostDrained == 0)
        #expect(report.batches.map { $0.nodes.map(\.host) } == [["a", "b"], ["c"]])
    }

    /// Without a load balancer the hosts are still batched; the report says nothing was drained.
    @Test func withoutABalancerNothingIsDrained() async throws {
        let fleet = RecordingHosts()
        let report = await Rollout(runbook: "web-node", runId: "r", plan: try RolloutPlan(hosts: ["a", "b"], serial: 1), dryRun: false,
                                   balancer: nil, work: fleet.work).run()
        #expect(report.nodes.map(\.state) == [.done, .done])
        #expect(report.nodes[0].phases[0].detail.contains("nothing drained"))
        #expect(RolloutPrinter().summary(report).last?.contains("no load balancer: nothing drained") == true)
        let data = Data(try report.json().utf8)
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect(object?["schema"] as? String == "ccrun.rollout/1")
    }

    @Test func theRecordSurvivesARoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rollout-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let journal = LocalJournal(directory: dir)
        #expect(try RolloutRecord.load(runbook: "repo-node", journal: journal) == nil)
        let record = RolloutRecord(runbook: "repo-node", runId: "r", hosts: ["a", "b"], serial: 1, maxFail: "0", done: ["a"])
        try record.save(journal: journal)
        #expect(try RolloutRecord.load(runbook: "repo-node", journal: journal) == record)
    }
}
