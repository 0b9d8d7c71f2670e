import Foundation
import SupportKit
import Testing

/// `ccr decode` run as a process, as a user runs it.
@Suite("ccr decode (process)")
struct DecodeCommandTests {
    /// The built `ccr` next to the test bundle (`swift test` builds every product), or `$CCR_BINARY`.
    static func ccrBinary() -> URL? {
        let fm = FileManager.default
        if let env = ProcessInfo.processInfo.environment["CCR_BINARY"], fm.isExecutableFile(atPath: env) {
            return URL(fileURLWithPath: env)
        }
        var dirs: [URL] = [Bundle.main.bundleURL.deletingLastPathComponent()]
        let arg0 = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        dirs.append(arg0.deletingLastPathComponent())
        dirs.append(arg0.deletingLastPathComponent().deletingLastPathComponent())
        for bundle in Bundle.allBundles { dirs.append(bundle.bundleURL.deletingLastPathComponent()) }
        for dir in dirs {
            let candidate = dir.appendingPathComponent("ccr")
            if fm.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    /// A new empty folder under the temporary directory (the caller removes it).
    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-decode-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    static func run(_ arguments: [String]) throws -> (status: Int32, stdout: Data, stderr: Data) {
        let binary = try #require(ccrBinary(), "ccr binary not found next to the tests (build it, or set CCR_BINARY)")
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }

    @Test("srt and txt to stdout, ttxt with XDS to a file: identical to CCExtractor's",
          .enabled(if: Fixtures.shouldRunSharedTests, "shared fixtures needed"),
          arguments: ["the.tudors", "89", "89.gaps"])
    func decodeFixture(name: String) throws {
        let bin = try Fixtures.shared("\(name).bin").path
        let srt = try Self.run(["decode", bin])
        #expect(srt.status == 0)
        #expect(srt.stdout == (try Fixtures.sharedData("\(name).srt")))
        let txt = try Self.run(["decode", bin, "--format", "txt"])
        #expect(txt.status == 0)
        #expect(txt.stdout == (try Fixtures.sharedData("\(name).txt")))

        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out.ttxt").path
        let ttxt = try Self.run(["decode", bin, "--format", "ttxt", "--xds", "-o", out])
        #expect(ttxt.status == 0)
        #expect(ttxt.stdout.isEmpty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == (try Fixtures.sharedData("\(name).xds.ttxt")))
    }

    @Test("--service 1 to stdout equals CCExtractor's svc1 srt; --service 1,2 -o writes one file per service",
          .enabled(if: Fixtures.shouldRunSharedTests, "shared fixtures needed"),
          arguments: ["the.tudors", "89"])
    func decodeService(name: String) throws {
        let bin = try Fixtures.shared("\(name).bin").path
        let one = try Self.run(["decode", bin, "--service", "1"])
        #expect(one.status == 0)
        #expect(one.stdout == (try Fixtures.sharedData("\(name).svc1.srt")))

        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let several = try Self.run(["decode", bin, "--service", "1,2", "-o", dir.appendingPathComponent("out.srt").path])
        #expect(several.status == 0)
        #expect(try Data(contentsOf: dir.appendingPathComponent("out.svc01.srt")) == (try Fixtures.sharedData("\(name).svc1.srt")))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out.svc02.srt").path))
        let stdout = try Self.run(["decode", bin, "--service", "1,2"])
        #expect(String(decoding: stdout.stdout, as: UTF8.self).hasPrefix("==> service 1 <==\r\n1\r\n"))
        for bad in ["0", "64", "1,x", ""] {
            #expect(try Self.run(["decode", bin, "--service", bad]).status != 0, "--service \(bad)")
        }
        #expect(try Self.run(["decode", bin, "--service", "1", "--format", "ttxt"]).status != 0)
    }

    @Test("a file that is not RCWT fails with a clear message and a non-zero status")
    func notRCWT() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("notes.bin")
        try Data("hello, this is text not captions".utf8).write(to: file)
        let result = try Self.run(["decode", file.path])
        #expect(result.status != 0)
        #expect(String(decoding: result.stderr, as: UTF8.self).contains("not an RCWT stream"))
        let bad = try Self.run(["decode", file.path, "--format", "vtt"])
        #expect(bad.status != 0)
    }
}
