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

    func upload(_ data: Data, to path: String, mode: UInt16) async throws {
        try await connection.upload(data, to: path, mode: UInt32(mode))
    }

    func readFile(_ path: String) async throws -> Data {
        guard let data = try await connection.readFile(path) else {
            throw HostError.protocolError(host: name, detail: "\(path) does not exist")
        }
        return data
    }

    func disconnect() async { await connection.close() }
}
