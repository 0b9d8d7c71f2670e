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
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        p.standardInput = try FileHandle(forReadingFrom: inURL)
        p.standardOutput = try FileHandle(forWritingTo: outURL)
        p.standardError = try FileHandle(forWritingTo: errURL)
        let status: Int32 = try await withCheckedThrowingContinuation { cont in
            p.terminationHandler = { cont.resume(returning: $0.terminationStatus) }
            do { try p.run() } catch { p.terminationHandler = nil; cont.resume(throwing: error); return }
            if let timeout {
                let pid = p.processIdentifier
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout.seconds) { if p.isRunning { kill(pid, SIGKILL) } }
            }
        }
        return ScriptResult(stdout: (try? Data(contentsOf: outURL)) ?? Data(), stderr: (try? Data(contentsOf: errURL)) ?? Data(), exitStatus: status)
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
