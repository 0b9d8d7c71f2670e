import Foundation

/// One SSH session to one host: commands on channels, files over SFTP.
///
/// All libssh2 work for a connection happens on the connection's own serial queue, never on
/// Swift's cooperative pool, and every wait is bounded by a deadline, so a dead host or link ends
/// in a ``TransportError`` instead of a hang. Calls on one connection run one after another.
public final class SSHConnection: @unchecked Sendable {
    public let target: SSHTarget

    init(target: SSHTarget) {
        self.target = target
    }

    /// Connects, verifies the host key against known_hosts (before any authentication), and
    /// authenticates with the agent and/or identity files.
    public static func connect(_ target: SSHTarget) async throws -> SSHConnection {
        throw TransportError.library("not implemented yet")
    }

    /// Runs `script` (through the login shell's `-c`, or `sudo -n sh -c` when the target uses
    /// sudo) on a new channel, feeding `stdin` and collecting stdout, stderr and the exit status.
    public func run(_ script: String, stdin: Data? = nil, timeout: Duration? = nil) async throws -> CommandOutput {
        throw TransportError.closed(host: target.name)
    }

    /// Writes `data` to `path` with permission bits `mode`. With `atomic`, the data goes to a
    /// temporary name in the same directory, which is then renamed over `path`, so readers never
    /// see a partial file.
    public func upload(_ data: Data, to path: String, mode: UInt32, atomic: Bool = true) async throws {
        throw TransportError.closed(host: target.name)
    }

    /// The contents of `path`, or nil when it does not exist.
    public func readFile(_ path: String) async throws -> Data? {
        throw TransportError.closed(host: target.name)
    }

    /// Disconnects. Later calls throw ``TransportError/closed(host:)``.
    public func close() async {}
}
