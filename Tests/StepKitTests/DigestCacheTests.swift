import Foundation
import Testing
@testable import StepKit

/// The digests that spare a no-op run from hashing a 100 MB binary twice (controller and
/// target): used only while the file is the very same, never trusted after any change.
@Suite(.serialized) struct DigestCacheTests {
    @Test func controllerCacheIsUsedForTheSameFileAndDroppedWhenItChanges() throws {
        let sb = try Sandbox()
        let cache = LocalDigestCache(directory: sb.path("/cache"))
        let file = sb.path("/ccr")
        try Data("first build".utf8).write(to: URL(fileURLWithPath: file))
        let first = try Payload.mapping(file: file, cache: cache)
        #expect(first.sha256 == SHA256Digest.hex(Data("first build".utf8)))

        // The recorded digest is what a second run uses (planted here to show it is read)...
        let entry = cache.entryPath(for: file)
        let recorded = try String(contentsOfFile: entry, encoding: .utf8).split(separator: "\n")
        try "\(recorded[0])\n\(String(repeating: "a", count: 64))\n".write(toFile: entry, atomically: true, encoding: .utf8)
        #expect(try Payload.mapping(file: file, cache: cache).sha256 == String(repeating: "a", count: 64))

        // ...but never once the file changed, even to the same size and modification time.
        let mtime = try FileManager.default.attributesOfItem(atPath: file)[.modificationDate] as! Date
        try Data("other build".utf8).write(to: URL(fileURLWithPath: file))
        try FileManager.default.setAttributes([.modificationDate: mtime], ofItemAtPath: file)
        #expect(try Payload.mapping(file: file, cache: cache).sha256 == SHA256Digest.hex(Data("other build".utf8)))
    }

    @Test func uploadRecordsItsDigestOnTheTargetAndTheProbeTrustsItOnlyWhileTheFileIsUnchanged() async throws {
        let sb = try Sandbox()
        let path = sb.path("/usr/local/bin/ccr")
        try FileManager.default.createDirectory(atPath: sb.path("/usr/local/bin"), withIntermediateDirectories: true)
        let bytes = Data((0..<300_000).map { UInt8(($0 * 13) % 256) })
        let book = Runbook("digest", steps: [Upload(bytes, to: path, mode: "755")])
        let options = RunOptions(mode: .apply, runId: RunID.make(), target: sb.target, journal: sb.journal)
        let applied = await Runner(runbook: book, options: options).run(on: LocalHost())
        #expect(applied.error == nil && applied.steps.map(\.state) == [.changed])

        let entry = FileProbe.digestEntry(path)
        defer { try? FileManager.default.removeItem(atPath: entry) }
        let record = try String(contentsOfFile: entry, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(record.count == 2 && record[1] == SHA256Digest.hex(bytes))

        func probedDigest() async throws -> String? {
            // As the engine asks it: inside a batch (whose one `stat` the probe reads).
            let probe = FileProbe.probe(path, content: false)
            let batch = FactBatch([probe.query])
            let out = try await LocalHost().run(batch.script, stdin: nil, timeout: nil)
            return try batch.parse(out.stdoutText)[probe]?.sha256
        }
        #expect(try await probedDigest() == SHA256Digest.hex(bytes))
        // The record is what the probe reads (planted value shows through)...
        try "\(record[0])\n\(String(repeating: "b", count: 64))\n".write(toFile: entry, atomically: false, encoding: .utf8)
        #expect(try await probedDigest() == String(repeating: "b", count: 64))
        // ...and an edit in place (same inode) makes it hash the file again, so drift is seen.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: Data([0xFF]))
        try handle.close()
        #expect(try await probedDigest() == SHA256Digest.hex(try Data(contentsOf: URL(fileURLWithPath: path))))
        let dry = await Runner(runbook: book, options: RunOptions(mode: .dryRun, runId: RunID.make(), target: sb.target, journal: sb.journal)).run(on: LocalHost())
        #expect(dry.steps.map(\.state) == [.wouldChange])
    }

    /// A binary another tool put there: a dry-run records nothing; an apply run that finds it
    /// already right records its digest, so the following runs only stat it.
    @Test func aFilePlacedByAnotherToolIsRecordedByApplyNeverByADryRun() async throws {
        let sb = try Sandbox()
        let path = sb.path("/ccr-by-hand")
        let bytes = Data((0..<200_000).map { UInt8(($0 * 7) % 256) })
        try bytes.write(to: URL(fileURLWithPath: path))
        chmod(path, 0o755)
        let entry = FileProbe.digestEntry(path)
        try? FileManager.default.removeItem(atPath: entry)
        defer { try? FileManager.default.removeItem(atPath: entry) }
        let book = Runbook("by-hand", steps: [Upload(bytes, to: path, mode: "755")])
        func run(_ mode: RunOptions.Mode) async -> [StepState] {
            await Runner(runbook: book, options: RunOptions(mode: mode, runId: RunID.make(), target: sb.target, journal: sb.journal))
                .run(on: LocalHost()).steps.map(\.state)
        }
        #expect(await run(.dryRun) == [.ok])
        #expect(!FileManager.default.fileExists(atPath: entry), "a dry-run must write nothing, not even a digest record")
        #expect(await run(.apply) == [.ok])
        let record = try String(contentsOfFile: entry, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(record.count == 2 && record[1] == SHA256Digest.hex(bytes))
    }

    @Test func aCopyThatArrivedDifferentIsNotInstalled() async throws {
        let sb = try Sandbox()
        let path = sb.path("/ccr")
        try Data("old".utf8).write(to: URL(fileURLWithPath: path))
        let action = UploadAction(path: path, payload: Payload(Data("sent".utf8)), mode: "755", owner: "root", group: "root")
        try Data("garbled".utf8).write(to: URL(fileURLWithPath: action.temporaryPath))
        let out = try await LocalHost().run(action.finishScript, stdin: nil, timeout: nil)
        #expect(out.exitStatus == 1)
        #expect(out.stderrText.contains("different SHA-256"))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "old")
        #expect(!FileManager.default.fileExists(atPath: action.temporaryPath))
    }
}
