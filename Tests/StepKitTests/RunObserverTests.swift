import Foundation
import Testing
@testable import StepKit

/// The run observer: the test build's stop points are parsed as named (the stopping itself is
/// exercised by ProcessFaultTests, which SIGKILL a real ccrun at these points), and an observer
/// sees every point of an apply without changing what the run journals.
@Suite struct RunObserverTests {
    @Test func parsesACommaSeparatedListAndTheUploadThreshold() {
        let stops = SignalStopObserver(" before-step:3, after-change:6 ,upload-bytes:2000000,")
        #expect(stops.points == ["before-step:3", "after-change:6", "upload-bytes:2000000"])
        #expect(stops.contains(RunPoint.afterChange(6).description) && !stops.contains(RunPoint.afterChange(7).description))
        #expect(stops.uploadBytes == 2_000_000)
        #expect(SignalStopObserver("").isEmpty && SignalStopObserver("").uploadBytes == nil)
    }

    /// Records the points it is told, in order.
    final class Recorder: RunObserver, @unchecked Sendable {
        private let lock = NSLock()
        private var seen: [RunPoint] = []
        var points: [RunPoint] { lock.withLock { seen } }
        func reached(_ point: RunPoint) { lock.withLock { seen.append(point) } }
    }

    /// The same run on two fresh roots, quiet and observed: the same journal records, and the
    /// observer was told before each step and after each change.
    @Test func anObserverSeesEveryPointAndTheJournalIsTheSame() async throws {
        func run(_ observer: any RunObserver) async throws -> (records: [String], root: URL) {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-observer-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            let journal = LocalJournal(directory: root.appendingPathComponent("state"))
            let book = Runbook("observed", steps: [
                File(root.path + "/a.conf", content: "a = 1\n", mode: "644"),
                File(root.path + "/b.conf", content: "b = 2\n", mode: "600"),
            ])
            let target = TargetPaths(stateDirectory: root.appendingPathComponent("target").path)
            let options = RunOptions(runId: "observed-run", target: target, journal: journal, observer: observer)
            let report = await Runner(runbook: book, options: options).run([HostTarget(LocalHost(name: "local"))])
            #expect(report.exitCode == 0)
            let local = journal.history(host: "local", runId: "observed-run").records.map { r in
                "local \(r.kind) \(r.stepId ?? "-") \(r.index.map(String.init) ?? "-") \(r.status ?? "-")"
            }
            // The host's own journal (here the same machine), record by record.
            let remote = try String(contentsOfFile: target.journal("observed-run"), encoding: .utf8).split(separator: "\n").map { line in
                let r = try JSONDecoder().decode(JournalRecord.self, from: Data(line.utf8))
                return "host \(r.kind) \(r.stepId ?? "-") \(r.index.map(String.init) ?? "-") \(r.status ?? "-")"
            }
            return (local + remote, root)
        }
        let recorder = Recorder()
        let observed = try await run(recorder)
        let quiet = try await run(QuietRunObserver())
        defer { for r in [observed.root, quiet.root] { try? FileManager.default.removeItem(at: r) } }
        #expect(recorder.points == [.beforeStep(0), .afterChange(0), .beforeStep(1), .afterChange(1)])
        #expect(!observed.records.isEmpty && observed.records.map { $0.replacingOccurrences(of: observed.root.path, with: "ROOT") }
                == quiet.records.map { $0.replacingOccurrences(of: quiet.root.path, with: "ROOT") })
    }
}
