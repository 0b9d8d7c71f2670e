import Foundation

/// The `ccr` executable that tests start as a real process, and its ready file.
public enum CCRExecutable {
    /// `$CCR_BINARY`, or the `ccr` that `swift build --build-tests` puts beside the test bundle.
    public static var path: String? {
        if let p = ProcessInfo.processInfo.environment["CCR_BINARY"], !p.isEmpty { return p }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("ccr").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }

    /// The port a service started with `--ready-file PATH` wrote (`port=N`), polled until
    /// `timeout`; nil if it never did.
    public static func readyPort(file: String, timeout: Duration = .seconds(10)) async throws -> Int? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
               let port = text.split(separator: "\n").first(where: { $0.hasPrefix("port=") }).flatMap({ Int($0.dropFirst(5)) }) {
                return port
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        return nil
    }
}

/// The `ccrun` executable tests run as a user does: `$CCRUN_BINARY`, or the one `swift build
/// --build-tests` puts beside the test bundle.
public enum CCRunExecutable {
    public static var path: String? {
        if let p = ProcessInfo.processInfo.environment["CCRUN_BINARY"], !p.isEmpty { return p }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("ccrun").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        return nil
    }
    public static let missing = "the ccrun executable was not found beside the tests (swift test builds it; or set CCRUN_BINARY)"

    /// Runs ccrun to its end; stdout and stderr apart (`--json` documents are on stdout alone).
    public static func run(_ arguments: [String]) throws -> Exec.Result {
        guard let path else { throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: missing]) }
        return try Exec.run([path] + arguments)
    }
}

/// Runs a program to its end, its stdout and stderr captured apart in files (a `--json` document
/// is on stdout alone), stdin empty; a signal's death is reported as 128 + its number, as a shell does.
public enum Exec {
    public struct Result: Sendable { public var status: Int32; public var stdout: String; public var stderr: String }

    public static func run(_ argv: [String], environment: [String: String]? = nil) throws -> Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-exec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out"), err = dir.appendingPathComponent("err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        if let environment { p.environment = environment }
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
        return .init(status: status, stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                     stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }
}
