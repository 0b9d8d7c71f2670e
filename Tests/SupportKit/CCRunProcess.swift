import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A separate `ccrun` process, run the way a user runs it (the binary `swift test` built beside
/// the tests, or `$CCRUN_BINARY`), with its output captured to files. Tests stop it at a named
/// point (`CCRUN_TEST_STOP_AT`, see `SignalStopObserver`) and SIGKILL it there.
public final class CCRunProcess {
    /// The stop points' variable, which only a debug (test) build of ccrun reads (TestHooks).
    public static let stopAtVariable = "CCRUN_TEST_STOP_AT"
    public enum Failure: Error, CustomStringConvertible {
        case missingBinary
        case timedOut(String, output: String)
        case exitedEarly(String, status: Int32, output: String)
        public var description: String {
            switch self {
            case .missingBinary: "the ccrun executable was not found beside the tests (swift test builds it; or set CCRUN_BINARY)"
            case let .timedOut(what, output): "timed out waiting for ccrun to \(what); its output:\n\(output.suffix(3000))"
            case let .exitedEarly(what, status, output): "ccrun exited (\(status)) before it could \(what); its output:\n\(output.suffix(3000))"
            }
        }
    }

    public static func binary() throws -> String {
        guard let path = CCRunExecutable.path else { throw Failure.missingBinary }
        return path
    }

    public let arguments: [String]
    private let process = Process()
    private let outURL: URL
    private let errURL: URL
    public let started = ContinuousClock.now

    /// `base` is the environment `extra` is added to (default: this process's own).
    public init(_ arguments: [String], environment extra: [String: String], logDirectory: URL,
                base: [String: String] = ProcessInfo.processInfo.environment, executable: String? = nil) throws {
        self.arguments = arguments
        let id = UUID().uuidString.prefix(8)
        outURL = logDirectory.appendingPathComponent("ccrun-\(id).out")
        errURL = logDirectory.appendingPathComponent("ccrun-\(id).err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: try executable ?? Self.binary())
        process.arguments = arguments
        var env = base
        env.removeValue(forKey: "CCRUN_TEST_STOP_AT")
        env["NO_COLOR"] = "1"
        for (k, v) in extra { env[k] = v }
        process.environment = env
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var stdout: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }
    public var output: String { stdout + stderr }
    public var commandLine: String { "ccrun " + arguments.joined(separator: " ") }

    /// The state letter from /proc/PID/stat (T when stopped), nil once it is gone.
    public var state: Character? {
        guard process.isRunning, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(close, offsetBy: 2)...].first
    }

    /// Waits until the process stopped itself (SIGSTOP at its test stop point).
    public func waitUntilStopped(timeout: Duration = .seconds(180)) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if !process.isRunning {
                throw Failure.exitedEarly("reach its stop point", status: process.terminationStatus, output: output)
            }
            if state == "T" { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw Failure.timedOut("reach its stop point", output: output)
    }

    /// SIGKILL, then wait for it to be gone. Safe to call twice.
    public func kill() async {
        guard process.isRunning else { return }
        _ = Glibc.kill(pid, SIGKILL)
        while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }

    public func resume() { _ = Glibc.kill(pid, SIGCONT) }

    /// Waits for the exit status; kills the process when it overruns `timeout`.
    public func exitStatus(timeout: Duration = .seconds(300)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                await kill()
                throw Failure.timedOut("exit", output: output)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// Seconds since start.
    public var elapsed: Duration { ContinuousClock.now - started }

    // MARK: Runs waited for in full (the lab suites, which run one ccrun after another)

    /// What a finished run printed.
    public struct Outcome: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var seconds: Double
        /// The `--json` report's steps (id, state), when stdout held one.
        public var steps: [(id: String, state: String)] {
            guard let start = stdout.firstIndex(of: "{"),
                  let json = try? JSONSerialization.jsonObject(with: Data(stdout[start...].utf8)) as? [String: Any],
                  let hosts = json["hosts"] as? [[String: Any]] else { return [] }
            return hosts.flatMap { ($0["steps"] as? [[String: Any]] ?? []).map { ($0["id"] as? String ?? "?", $0["state"] as? String ?? "?") } }
        }
        public var text: String { "exit \(status)\n--- stdout\n\(stdout.suffix(4000))\n--- stderr\n\(stderr.suffix(3000))" }
    }

    /// Blocks until the process has ended; its output files are removed.
    public func outcome() -> Outcome {
        process.waitUntilExit()
        defer { try? FileManager.default.removeItem(at: outURL); try? FileManager.default.removeItem(at: errURL) }
        return Outcome(status: process.terminationStatus, stdout: stdout, stderr: stderr,
                       seconds: elapsed / .seconds(1))
    }

    /// The environment of the blocking runs: this process's own without `CCR_BINARY`, which
    /// ccrun would take as the ccr to ship; the lab suites name that file with `--ccr-binary`.
    private static var runEnvironment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "CCR_BINARY")
        return env
    }

    /// Runs ccrun to its end.
    public static func run(_ arguments: [String]) throws -> Outcome {
        try CCRunProcess(arguments, environment: [:], logDirectory: FileManager.default.temporaryDirectory,
                         base: runEnvironment).outcome()
    }

    /// Runs ccrun with a test stop point: waits until it has stopped itself there, then SIGKILLs
    /// it, as a crash or a power cut at that moment would. `reached` is false when the run ended
    /// without reaching the point.
    public static func killed(_ arguments: [String], at point: String, seconds limit: Double = 600) throws -> (reached: Bool, outcome: Outcome) {
        let p = try CCRunProcess(arguments, environment: [stopAtVariable: point],
                                 logDirectory: FileManager.default.temporaryDirectory, base: runEnvironment)
        let deadline = ContinuousClock.now + .seconds(limit)
        while p.process.isRunning && p.state != "T" && ContinuousClock.now < deadline { usleep(50_000) }
        let reached = p.state == "T"
        if p.process.isRunning { _ = Glibc.kill(p.pid, SIGKILL) }
        return (reached, p.outcome())
    }
}
