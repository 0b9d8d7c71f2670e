import Foundation
@testable import Transport

/// A real OpenSSH sshd for one test: 127.0.0.1 on a free port, a fresh ed25519 host key, a fresh
/// client key in authorized_keys, its own log file. Start it with ``withSSHServer(_:)``, which
/// stops it even when the test fails.
final class TestSSHServer: @unchecked Sendable {
    // @unchecked: all stored properties are set once in init; `process` is only read after.
    let directory: URL
    let port: Int
    let clientKey: String
    let hostPublicKeyLine: String
    let knownHostsPath: String
    let logPath: String
    private let process: Process

    var hostKeyBlob: Data {
        Data(base64Encoded: String(hostPublicKeyLine.split(separator: " ")[1]))!
    }

    /// A target for root with the test key and a known_hosts that lists this server.
    func target(user: String = "root", sudo: Bool = false) -> SSHTarget {
        SSHTarget(name: "test-sshd", host: "127.0.0.1", port: port, user: user, identityFiles: [clientKey],
                  knownHostsPath: knownHostsPath, hostKeyPolicy: .strict, connectTimeout: .seconds(5),
                  commandTimeout: .seconds(60), linkTimeout: .seconds(10), sudo: sudo)
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    init() throws {
        let fm = FileManager.default
        directory = fm.temporaryDirectory.appendingPathComponent("ccrun-sshd-\(UUID().uuidString)")
        // 0755 so sshd can read authorized_keys as a non-root test user too.
        try fm.createDirectory(at: directory, withIntermediateDirectories: true,
                               attributes: [.posixPermissions: 0o755])
        try fm.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true,
                               attributes: [.posixPermissions: 0o755])
        let hostKey = directory.appendingPathComponent("host_ed25519").path
        clientKey = directory.appendingPathComponent("client_ed25519").path
        try Shell.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "test-host", "-f", hostKey])
        try Shell.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "test-client", "-f", clientKey])
        let authorizedKeys = directory.appendingPathComponent("authorized_keys").path
        try fm.copyItem(atPath: clientKey + ".pub", toPath: authorizedKeys)
        try fm.setAttributes([.posixPermissions: 0o644], ofItemAtPath: authorizedKeys)
        hostPublicKeyLine = try String(contentsOfFile: hostKey + ".pub", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)

        logPath = directory.appendingPathComponent("sshd.log").path
        var lastError: Error?
        for _ in 0..<5 {
            let port = try Self.freePort()
            let config = """
            Port \(port)
            ListenAddress 127.0.0.1
            HostKey \(hostKey)
            AuthorizedKeysFile \(authorizedKeys)
            PidFile none
            StrictModes no
            UsePAM no
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            PubkeyAuthentication yes
            LogLevel VERBOSE
            Subsystem sftp /usr/lib/openssh/sftp-server
            """
            let configPath = directory.appendingPathComponent("sshd_config").path
            try config.write(toFile: configPath, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/sshd")
            process.arguments = ["-D", "-f", configPath, "-E", logPath]
            try process.run()
            if Self.waitForPort(port, process: process) {
                self.port = port
                self.process = process
                let known = directory.appendingPathComponent("known_hosts").path
                try "[127.0.0.1]:\(port) \(hostPublicKeyLine)\n".write(toFile: known, atomically: true, encoding: .utf8)
                knownHostsPath = known
                return
            }
            process.terminate()
            process.waitUntilExit()
            lastError = TestFailure("sshd did not start on port \(port): \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
        }
        throw lastError ?? TestFailure("sshd did not start")
    }

    func stop() {
        if process.isRunning {
            // Per-connection sshd children keep running after the listener dies; end them too.
            for child in Self.children(of: process.processIdentifier) { kill(child, SIGKILL) }
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// The per-connection sshd processes (children of the listener).
    func sessionProcesses() -> [pid_t] { Self.children(of: process.processIdentifier) }

    static func children(of parent: pid_t) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry -> pid_t? in
            guard let pid = pid_t(entry),
                  let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return nil }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && pid_t(fields[1]) == parent ? pid : nil
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
                guard bind(fd, pointer, length) == 0 else { return -1 }
                return getsockname(fd, pointer, &length)
            }
        }
        guard bound == 0 else { throw TestFailure("cannot find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func waitForPort(_ port: Int, process: Process) -> Bool {
        for _ in 0..<100 {
            guard process.isRunning else { return false }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            close(fd)
            if rc == 0 { return true }
            usleep(50_000)
        }
        return false
    }
}

/// Starts a test sshd, runs `body`, stops the server whatever happens.
func withSSHServer<T>(_ body: (TestSSHServer) async throws -> T) async throws -> T {
    let server = try TestSSHServer()
    defer { server.stop() }
    return try await body(server)
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

enum Shell {
    /// Runs a program, failing with its output when it exits non-zero.
    @discardableResult
    static func run(_ path: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("\(path) \(arguments.joined(separator: " ")) failed: \(output)")
        }
        return output
    }
}
