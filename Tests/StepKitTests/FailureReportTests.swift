import Foundation
import SupportKit
import Testing
@testable import StepKit

/// Each way a run fails ends in a report whose `failure.kind` says which, from a real run on
/// this machine (LocalHost), and every report, failed or not, is valid against its published
/// schema (docs/schemas) as an independent validator reads it.
@Suite(.serialized) struct FailureReportTests {
    func options(_ sb: Sandbox, mode: RunOptions.Mode = .apply, actionTimeout: Duration = .seconds(60)) -> RunOptions {
        RunOptions(mode: mode, target: sb.target, journal: sb.journal, actionTimeout: actionTimeout)
    }

    /// The run's JSON document, checked against ccrun.run-2.json when the validator is here.
    func document(_ report: HostReport, runbook: String) throws -> [String: Any] {
        let json = try RunReport(runbook: runbook, runId: report.runId, mode: report.mode, hosts: [report]).json()
        if JSONSchemaCheck.shouldRun {
            let errors = try JSONSchemaCheck.errors(in: json, schema: "ccrun.run-2.json")
            #expect(errors.isEmpty, "the report does not match docs/schemas/ccrun.run-2.json:\n\(errors)\n\(json)")
        }
        return try #require(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    /// `failure.kind` of the first failed step, read from the JSON as a script would.
    func stepFailureKind(_ doc: [String: Any]) -> String? {
        let host = (doc["hosts"] as? [[String: Any]])?.first
        let failed = (host?["steps"] as? [[String: Any]])?.first { $0["state"] as? String == "failed" }
        return (failed?["failure"] as? [String: Any])?["kind"] as? String
    }

    func hostFailureKind(_ doc: [String: Any]) -> String? {
        let host = (doc["hosts"] as? [[String: Any]])?.first
        return (host?["failure"] as? [String: Any])?["kind"] as? String
    }

    @Test func aCommandThatExitsNonZeroIsCommandFailed() async throws {
        let sb = try Sandbox()
        let book = Runbook("kinds", steps: [
            File(sb.path("/etc/a"), content: "a\n"),
            GuardedCommand(id: "fail", "a command that fails", command: "echo broken-pipe-7 >&2; exit 3", creates: sb.path("/etc/never")),
            File(sb.path("/etc/b"), content: "b\n"),
        ])
        let r = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        #expect(r.steps.map(\.state) == [.changed, .failed, .skipped])
        #expect(r.steps[1].failure?.kind == .commandFailed && r.steps[1].failure?.message.contains("broken-pipe-7") == true,
                "\(String(describing: r.steps[1].failure))")
        #expect(r.failure == nil && r.firstFailure?.kind == .commandFailed)
        #expect(stepFailureKind(try document(r, runbook: book.name)) == "commandFailed")
    }

    @Test func aCommandPastItsTimeIsTimeout() async throws {
        let sb = try Sandbox()
        let book = Runbook("kinds", steps: [
            GuardedCommand(id: "slow", "a command that hangs", command: "sleep 20", creates: sb.path("/etc/never")),
        ])
        let started = ContinuousClock.now
        let r = await Runner(runbook: book, options: options(sb, actionTimeout: .seconds(1))).run(on: LocalHost())
        #expect(started.duration(to: .now) < .seconds(15), "the timeout did not stop the command")
        #expect(r.steps.first?.failure?.kind == .timeout, "\(String(describing: r.steps.first?.failure))")
        #expect(r.steps.first?.message?.contains("did not finish within 1 s") == true)
        #expect(stepFailureKind(try document(r, runbook: book.name)) == "timeout")
    }

    /// Terraform's rule: after apply the plan is empty. A command that "succeeds" without
    /// making its guard true fails the step as verifyFailed, not as a failed command.
    @Test func aChangeThatDoesNotTakeIsVerifyFailed() async throws {
        let sb = try Sandbox()
        let marker = sb.path("/etc/marker")
        let book = Runbook("kinds", steps: [
            GuardedCommand(id: "noop", "a command that does nothing", command: "true", unless: "test -e \(Shell.quote(marker))"),
        ])
        let r = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        #expect(r.steps.first?.state == .failed)
        #expect(r.steps.first?.failure?.kind == .verifyFailed, "\(String(describing: r.steps.first?.failure))")
        #expect(stepFailureKind(try document(r, runbook: book.name)) == "verifyFailed")
    }

    @Test func anotherLiveRunsLockIsLockHeld() async throws {
        let sb = try Sandbox()
        let book = Runbook("kinds", steps: [File(sb.path("/etc/a"), content: "a\n")])
        _ = try await LocalHost().run(TargetLock(paths: sb.target, owner: LockOwner.current(runId: "other-run")).acquireScript)
        let r = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        #expect(r.failure?.kind == .lockHeld && r.error?.contains("other-run") == true, "\(String(describing: r.failure))")
        #expect(r.steps.allSatisfy { $0.state == .skipped && $0.failure == nil })
        #expect(hostFailureKind(try document(r, runbook: book.name)) == "lockHeld")
    }

    @Test func anInvalidRunbookIsRefused() async throws {
        let sb = try Sandbox()
        let book = Runbook("kinds", steps: [File(sb.path("/etc/a"), content: "a\n"), File(sb.path("/etc/a"), content: "b\n")])
        let r = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        #expect(r.failure?.kind == .refused, "\(String(describing: r.failure))")
        #expect(!FileManager.default.fileExists(atPath: sb.path("/etc/a")))
        #expect(hostFailureKind(try document(r, runbook: book.name)) == "refused")
    }

    @Test func aHostThatCannotBeReachedIsItsErrorsKind() async throws {
        struct Unclassified: Error {}
        let sb = try Sandbox()
        let book = Runbook("kinds", steps: [File(sb.path("/etc/a"), content: "a\n")])
        let down = HostTarget(name: "db-host") { throw SQLError.connect("db-host:3306", "Connection refused") }
        let odd = HostTarget(name: "odd-host") { throw Unclassified() }
        let run = await Runner(runbook: book, options: options(sb)).run([down, odd])
        #expect(run.hosts.map { $0.failure?.kind } == [.unreachable, .internal])
        #expect(run.exitCode == 1)
        let json = try run.json()
        if JSONSchemaCheck.shouldRun {
            let errors = try JSONSchemaCheck.errors(in: json, schema: "ccrun.run-2.json")
            #expect(errors.isEmpty, "\(errors)\n\(json)")
        }
    }

    /// Reports that did not fail are documents of the same schema: a dry-run with changes
    /// pending (diffs, actions, undo) and an apply.
    @Test func dryRunAndApplyReportsMatchTheSchema() async throws {
        try #require(JSONSchemaCheck.shouldRun, Comment(rawValue: JSONSchemaCheck.skipReason))
        let sb = try Sandbox()
        let book = sampleSteps(sb, secret: Secret(label: "db", value: "PLANTED-schema-secret"), binary: Data(repeating: 7, count: 4096))
        for mode in [RunOptions.Mode.dryRun, .apply] {
            let r = await Runner(runbook: book, options: options(sb, mode: mode)).run(on: LocalHost())
            let json = try RunReport(runbook: book.name, runId: r.runId, mode: mode, hosts: [r]).json()
            #expect(!json.contains("PLANTED-schema-secret"))
            let errors = try JSONSchemaCheck.errors(in: json, schema: "ccrun.run-2.json")
            #expect(errors.isEmpty, "\(mode): \(errors)")
        }
        // The validator itself rejects what the schema forbids: a failed step without its failure.
        let r = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        var broken = RunReport(runbook: book.name, runId: r.runId, mode: .apply, hosts: [r])
        broken.hosts[0].steps[0].state = .failed
        let errors = try JSONSchemaCheck.errors(in: try broken.json(), schema: "ccrun.run-2.json")
        #expect(errors.contains("hosts/0/steps/0") && errors.contains("failure"), "\(errors)")
    }

    /// `ccrun rollback --json`'s document: an undo that works, then one whose command fails.
    @Test func rollbackReportsCarryTheirFailureAndMatchTheSchema() async throws {
        let sb = try Sandbox()
        let book = Runbook("kinds", steps: [
            File(sb.path("/etc/a"), content: "a\n"),
            GuardedCommand(id: "stamp", "a stamp", command: "touch \(Shell.quote(sb.path("/etc/stamp")))", creates: sb.path("/etc/stamp"),
                           undo: "echo cannot-undo-9 >&2; exit 4"),
        ])
        let applied = await Runner(runbook: book, options: options(sb)).run(on: LocalHost())
        #expect(!applied.failed)
        let history = try #require(await Rollback.latestRun(on: LocalHost(), journal: sb.journal, target: sb.target))
        let report = await Rollback(options: options(sb)) { _ in nil }.run(on: LocalHost(), history: history)
        let failedItem = try #require(report.items.first { $0.state == .failed })
        #expect(failedItem.failure?.kind == .commandFailed && failedItem.message?.contains("cannot-undo-9") == true)
        #expect(report.failure?.kind == .commandFailed && report.error?.contains("rollback stopped at") == true)
        let document = RollbackRunReport(hosts: [report])
        #expect(document.exitCode == 1)
        if JSONSchemaCheck.shouldRun {
            let json = try document.json()
            let errors = try JSONSchemaCheck.errors(in: json, schema: "ccrun.rollback-1.json")
            #expect(errors.isEmpty, "\(errors)\n\(json)")
        }
    }
}
