import Foundation

/// What a script run on a host returned.
public struct ScriptResult: Sendable {
    public var stdout: Data
    public var stderr: Data
    public var exitStatus: Int32
    public init(stdout: Data, stderr: Data, exitStatus: Int32) {
        self.stdout = stdout; self.stderr = stderr; self.exitStatus = exitStatus
    }
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

/// A target host as the engine sees it. StepKit never knows how the bytes travel (SSH,
/// a local shell, a fake in tests): the ccrun executable adapts the libssh2 transport to this.
public protocol RemoteHost: Sendable {
    /// A name for reports (inventory name or address).
    var name: String { get }
    /// Runs a POSIX sh script (as root, or through `sudo -n` when the adapter is configured so).
    /// `stdin` carries secrets and payloads, never the argument list.
    func run(_ script: String, stdin: Data?, timeout: Duration?) async throws -> ScriptResult
    /// Writes `data` to `path` with `mode`, atomically (temporary name, then rename).
    func upload(_ data: Data, to path: String, mode: UInt16) async throws
    /// Reads a whole file.
    func readFile(_ path: String) async throws -> Data
    /// Ends the connection (the runner calls it when done with the host).
    func disconnect() async
}

public extension RemoteHost {
    func disconnect() async {}
    func run(_ script: String) async throws -> ScriptResult {
        try await run(script, stdin: nil, timeout: nil)
    }
}

public enum HostError: Error, CustomStringConvertible, Sendable {
    case commandFailed(host: String, what: String, status: Int32, stderr: String)
    case protocolError(host: String, detail: String)
    /// Ran past its time limit and was stopped.
    case timedOut(host: String, what: String, after: Duration)
    public var description: String {
        switch self {
        case let .commandFailed(host, what, status, stderr):
            let tail = stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").suffix(5).joined(separator: "\n  ")
            return "\(host): \(what) failed with exit status \(status)" + (tail.isEmpty ? "" : ":\n  \(tail)")
        case let .protocolError(host, detail):
            return "\(host): \(detail)"
        case let .timedOut(host, what, after):
            return "\(host): \(what) did not finish within \(after.components.seconds) s and was stopped (raise --command-timeout if it needs longer)"
        }
    }
}

/// Quoting for POSIX sh: every argument we build goes through this.
public enum Shell {
    public static func quote(_ s: String) -> String {
        if !s.isEmpty, s.allSatisfy({ $0.isLetter && $0.isASCII || $0.isNumber && $0.isASCII || "-_./=:,+@%".contains($0) }) {
            return s
        }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
    public static func join(_ args: [String]) -> String { args.map(quote).joined(separator: " ") }
}
