import LeanFoundation

/// What a remote command produced. A non-zero exit status is not an error at this layer: the
/// caller decides (a probe like `test -e` uses it as an answer).
public struct CommandOutput: Sendable, Equatable {
    public var stdout: Data
    public var stderr: Data
    public var exitStatus: Int32

    public init(stdout: Data, stderr: Data, exitStatus: Int32) {
        self.stdout = stdout
        self.stderr = stderr
        self.exitStatus = exitStatus
    }

    public var succeeded: Bool { exitStatus == 0 }
    /// stdout decoded as UTF-8 (invalid bytes replaced).
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}
