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
