import Foundation

/// This machine as a target: scripts run with /bin/sh. Used by tests (with paths inside a
/// temporary directory) and for runbooks meant for the controller itself.
public struct LocalHost: RemoteHost {
    public let name: String
    public init(name: String = "localhost") { self.name = name }

    public func run(_ script: String, stdin: Data?, timeout: Duration?) async throws -> ScriptResult {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-local-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: tmp) }
        let inURL = tmp.appendingPathComponent("in"), outURL = tmp.appendingPathComponent("out"), errURL = tmp.appendingPathComponent("err")
        FileManager.default.createFile(atPath: inURL.path, contents: stdin ?? Data(), attributes: [.posixPermissions: 0o600])
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let start = ContinuousClock.now
        let status = try await LocalHost.spawn(script: script, stdin: inURL.path, stdout: outURL.path, stderr: errURL.path, timeout: timeout)
        // SIGKILL (128 + 9) once its time was up: the timer's kill, reported as the timeout it is.
        if let timeout, status == 137, start.duration(to: .now) >= timeout {
            throw HostError.timedOut(host: name, what: "a script", after: timeout)
        }
        return ScriptResult(stdout: (try? Data(contentsOf: outURL)) ?? Data(), stderr: (try? Data(contentsOf: errURL)) ?? Data(), exitStatus: status)
    }

    /// posix_spawn of /bin/sh -c, waited for off the cooperative pool. (Foundation's Process
    /// crashed here when many tests spawned at once.)
    static func spawn(script: String, stdin: String, stdout: String, stderr: String, timeout: Duration?) async throws -> Int32 {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, stdout, O_WRONLY | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&fa, 2, stderr, O_WRONLY | O_TRUNC, 0o600)
        let args: [UnsafeMutablePointer<CChar>?] = ["/bin/sh", "-c", script].map { (s: String) in strdup(s) } + [nil]
        let env: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { (k: String, v: String) in strdup("\(k)=\(v)") } + [nil]
        defer { args.forEach { free($0) }; env.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &fa, nil, args, env)
        guard rc == 0 else { throw HostError.protocolError(host: "localhost", detail: "cannot start /bin/sh: errno \(rc)") }
        let child = pid
        if let timeout {
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout.seconds) { kill(child, SIGKILL) }
        }
        return await withCheckedContinuation { cont in
            DispatchQueue.global().async {
                var st: Int32 = 0
                while waitpid(child, &st, 0) < 0 && errno == EINTR {}
                let exited = (st & 0x7f) == 0
                cont.resume(returning: exited ? (st >> 8) & 0xff : 128 + (st & 0x7f))
            }
        }
    }

    public func upload(_ data: Data, to path: String, mode: UInt16) async throws {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).upload-\(UUID().uuidString.prefix(8))")
        guard FileManager.default.createFile(atPath: tmp.path, contents: data, attributes: [.posixPermissions: Int(mode)]) else {
            throw HostError.protocolError(host: name, detail: "cannot write \(tmp.path)")
        }
        _ = chmod(tmp.path, mode_t(mode))
        guard rename(tmp.path, path) == 0 else {
            try? FileManager.default.removeItem(at: tmp)
            throw HostError.protocolError(host: name, detail: "cannot rename into \(path): errno \(errno)")
        }
    }

    public func readFile(_ path: String) async throws -> Data {
        guard let d = FileManager.default.contents(atPath: path) else { throw HostError.protocolError(host: name, detail: "cannot read \(path)") }
        return d
    }
}
