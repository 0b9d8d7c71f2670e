import Foundation
import Testing
@testable import StepKit
import SupportKit

@Suite struct FileStepTests {
    @Test func absentFileIsWrittenThroughATemporaryNameAndRemovedOnUndo() throws {
        var f = FactFixtures()
        f.file("/etc/ccr.conf", nil)
        let step = File("/etc/ccr.conf", content: "port=3000\n", mode: "0640", owner: "root", group: "adm")
        let plan = try f.plan(step)
        let change = try #require(plan.change)
        #expect(change.commands == [
            "upload 10 bytes sha256=\(SHA256Digest.hex("port=3000\n")) to /etc/.ccr.conf.ccrun-tmp mode 640",
            "chown root:adm /etc/.ccr.conf.ccrun-tmp && chmod 640 /etc/.ccr.conf.ccrun-tmp && mv -f /etc/.ccr.conf.ccrun-tmp /etc/ccr.conf",
        ])
        #expect(change.diff == "--- /dev/null\n+++ /etc/ccr.conf\n@@ -0,0 +1 @@\n+port=3000\n")
        #expect(change.undo == [.restoreFile(path: "/etc/ccr.conf", previous: nil)])
    }

    /// The finishing script itself, run by /bin/sh on files of this machine: a copy the validator
    /// refuses is removed and the old file stays byte for byte, with the validator's words on
    /// stderr; an accepted copy replaces it.
    @Test func aValidatedFileReplacesTheOldOneOnlyWhenTheCheckAccepts() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-validate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/app.cfg"
        try "old = 1\n".write(toFile: path, atomically: true, encoding: .utf8)
        let owner = try FileManager.default.attributesOfItem(atPath: path)
        let user = owner[.ownerAccountName] as? String ?? "root", group = owner[.groupOwnerAccountName] as? String ?? "root"
        func finish(_ content: String) throws -> (status: Int32, stderr: String) {
            let action = UploadAction(path: path, text: SecretText(content), mode: "644", owner: user, group: group,
                                      validate: "grep -q '^valid' %s || { echo 'line 1: not valid' >&2; false; }")
            try content.write(toFile: action.temporaryPath, atomically: true, encoding: .utf8)
            let p = Process(), err = Pipe()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", action.finishScript]
            p.standardError = err
            try p.run()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        }
        let refused = try finish("broken\n")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("line 1: not valid"))
        #expect(refused.stderr.contains("refused the new \(path); nothing was replaced"))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "old = 1\n")
        #expect(!FileManager.default.fileExists(atPath: UploadAction.temporaryPath(for: path)))
        let accepted = try finish("valid = 2\n")
        #expect(accepted.status == 0, "\(accepted.stderr)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "valid = 2\n")
    }

    @Test func identicalFileIsSatisfied() throws {
        var f = FactFixtures()
        f.file("/etc/motd", .file("hello\n", mode: "644"))
        #expect(try f.plan(File("/etc/motd", content: "hello\n")).isSatisfied)
    }

    @Test func changedContentShowsUnifiedDiffAndKeepsOldBytesForUndo() throws {
        var f = FactFixtures()
        f.file("/etc/motd", .file("a\nb\nc\n", mode: "600", owner: "daemon", group: "daemon"))
        let change = try #require(try f.plan(File("/etc/motd", content: "a\nB\nc\n")).change)
        #expect(change.diff?.contains("-b\n+B\n") == true)
        #expect(change.diff?.contains("mode 600 -> 644") == true)
        guard case let .restoreFile(_, snap?) = change.undo.first else { Issue.record("no snapshot"); return }
        #expect(snap.contentBase64 == Data("a\nb\nc\n".utf8).base64EncodedString())
        #expect(snap.mode == "600" && snap.owner == "daemon")
    }

    @Test func modeOnlyChangeIsAChmodNotARewrite() throws {
        var f = FactFixtures()
        f.file("/etc/x", .file("same\n", mode: "666"))
        let change = try #require(try f.plan(File("/etc/x", content: "same\n", mode: "644")).change)
        #expect(change.commands == ["chown root:root /etc/x && chmod 644 /etc/x"])
    }

    @Test func secretsNeverAppearInPlanDiffCommandsOrUndo() throws {
        let secret = Secret(label: "db", value: "hunter2-PLANTED")
        var f = FactFixtures()
        f.file("/etc/ccr/db.conf", .file("password=old-PLANTED\n", mode: "600"))
        let step = File("/etc/ccr/db.conf", content: "user=ccr\npassword=\(secret)\n", mode: "600")
        let change = try #require(try f.plan(step).change)
        let everything = (change.commands + [change.diff ?? ""] + change.undo.map(\.summary) + [String(describing: change.undo), step.description, step.fingerprint]).joined(separator: "\n")
        #expect(!everything.contains("hunter2"))
        #expect(!everything.contains("old-PLANTED"), "old secret-bearing content must not be journalled or shown")
        // The previous version is kept on the host, not in the journal.
        guard case let .restoreFile(_, snap?) = change.undo.first else { Issue.record("no snapshot"); return }
        #expect(snap.contentBase64 == nil && snap.backupPath == "/var/lib/ccrun/backup/R1/%etc%ccr%db.conf")
        // ...while the bytes uploaded are the real ones.
        guard case let .upload(u) = change.actions.last else { Issue.record("no upload"); return }
        #expect(String(decoding: u.payload(), as: UTF8.self) == "user=ccr\npassword=hunter2-PLANTED\n")
    }

    @Test func aDirectoryWhereTheFileShouldBeIsRefused() throws {
        var f = FactFixtures()
        f.file("/etc/x", .directory())
        #expect(throws: StepRefusal.self) { try f.plan(File("/etc/x", content: "")) }
    }
}

@Suite struct SecretTests {
    @Test func descriptionAndJSONAreMasked() throws {
        let s = Secret(label: "admin", value: "s3cr3t-PLANTED")
        #expect("\(s)" == "********(admin)")
        let json = String(decoding: try JSONEncoder().encode(["k": s]), as: UTF8.self)
        #expect(!json.contains("s3cr3t"))
        let text: SecretText = "GRANT ALL TO x IDENTIFIED BY '\(s)'"
        #expect(text.masked == "GRANT ALL TO x IDENTIFIED BY '********(admin)'")
        #expect(text.revealed().contains("s3cr3t-PLANTED"))
        #expect(SecretScrubber([s]).scrub("echo s3cr3t-PLANTED") == "echo ********(admin)")
        let section: SecretText = "password=\(s)\n"
        let joined = "[db]\n" + section
        #expect(joined.masked == "[db]\npassword=********(admin)\n")
        #expect(joined.revealed() == "[db]\npassword=s3cr3t-PLANTED\n")
    }
}

@Suite struct DiffTests {
    @Test func unifiedDiffHasHunksWithContext() {
        let old = (1...10).map { "line \($0)" }.joined(separator: "\n") + "\n"
        let new = old.replacingOccurrences(of: "line 5\n", with: "line five\n")
        let d = UnifiedDiff.make(old: old, new: new, oldName: "a", newName: "b")
        #expect(d == "--- a\n+++ b\n@@ -2,7 +2,7 @@\n line 2\n line 3\n line 4\n-line 5\n+line five\n line 6\n line 7\n line 8\n")
    }
    @Test func identicalTextsHaveNoDiff() {
        #expect(UnifiedDiff.make(old: "x\n", new: "x\n", oldName: "a", newName: "b") == "")
    }
    @Test func distantChangesMakeTwoHunks() {
        let old = (1...20).map { "l\($0)" }.joined(separator: "\n") + "\n"
        let new = old.replacingOccurrences(of: "l2\n", with: "L2\n").replacingOccurrences(of: "l18\n", with: "L18\n")
        let d = UnifiedDiff.make(old: old, new: new, oldName: "a", newName: "b")
        #expect(d.components(separatedBy: "\n@@").count == 3)
        #expect(d.contains("@@ -1,5 +1,5 @@\n l1\n-l2\n+L2\n"))
    }
}
