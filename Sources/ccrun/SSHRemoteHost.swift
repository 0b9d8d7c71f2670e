import Foundation
import StepKit
import Transport

/// The libssh2 transport seen as the engine's `RemoteHost`: StepKit never imports Transport,
/// this adapter is the only place the two meet.
struct SSHRemoteHost: RemoteHost {
    let connection: SSHConnection
    var name: String { connection.target.name }

    func run(_ script: String, stdin: Data?, timeout: Duration?) async throws -> ScriptResult {
        let out = try await connection.run(script, stdin: stdin, timeout: timeout)
        return ScriptResult(stdout: out.stdout, stderr: out.stderr, exitStatus: out.exitStatus)
    }

    /// The engine only uploads to temporary names it renames itself (`UploadAction.temporaryPath`),
    /// so the transport writes that name directly: a second temporary name here would only be
    /// litter after a killed run, which the engine's next upload could not find to overwrite.
    func upload(_ data: Data, to path: String, mode: UInt16) async throws {
        try await connection.upload(data, to: path, mode: UInt32(mode), atomic: false, progress: TestHooks.uploadProgress())
    }

    func readFile(_ path: String) async throws -> Data {
        guard let data = try await connection.readFile(path) else {
            throw HostError.protocolError(host: name, detail: "\(path) does not exist")
        }
        return data
    }

    func disconnect() async { await connection.close() }
}

/// What each transport failure means to the operator (`--json`: `failure.kind`).
extension TransportError: FailureClassifying {
    public var failureKind: FailureKind {
        switch self {
        case .nameResolution, .unreachable, .connectTimeout, .handshakeFailed: .unreachable
        case .hostKeyUnknown, .hostKeyChanged, .knownHostsFile, .authenticationFailed, .sudoFailed: .refused
        case .commandTimeout: .timeout
        case .linkLost, .closed, .channelFailed: .linkLost
        case .sftp: .commandFailed
        case .library: .internal
        }
    }
}

/// True the first time only. Progress callbacks run on the connection's queue while the
/// creating task waits, so the flag is guarded by a lock rather than owned by an actor.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var taken = false
    func take() -> Bool { lock.withLock { defer { taken = true }; return !taken } }
}
