import Foundation
@testable import Transport

/// A real OpenSSH sshd for one test: 127.0.0.1 on a free port, a fresh ed25519 host key, a fresh
/// client key in authorized_keys, its own log file. Start it with ``withSSHServer(_:)``, which
/// stops it even when the test fails.
final class TestSSHServer: @unchecked Sendable {
    // @unchecked: all stored properties are immutable after init.
    let directory: URL
    let port: Int
    let clientKey: String
    let hostPublicKeyLine: String
    let knownHostsPath: String
    let logPath: String
    private let pid: pid_t

    var hostKeyBlob: Data {
        Data(base64Encoded: String(hostPublicKeyLine.split(separator: " ")[1]))!
    }

    /// A target for root with the test key and a known_hosts that lists this server.
    func target(user: String = "root", sudo: Bool = false) -> SSHTarget {
        SSHTarget(name: "test-sshd", host: listenAddress, port: port, user: user, identityFiles: [clientKey],
                  knownHostsPath: knownHostsPath, hostKeyPolicy: .strict, connectTimeout: .seconds(5),
                  commandTimeout: .seconds(60), linkTimeout: .seconds(10), sudo: sudo)
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Where sshd listens; `namespace` runs it inside that network namespace (`ip netns exec`).
    let listenAddress: String

    init(listenAddress: String = "127.0.0.1", namespace: String? = nil) throws {
        self.listenAddress = listenAddress
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
            ListenAddress \(listenAddress)
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
            let log = logPath
            let sshd = ["/usr/sbin/sshd", "-D", "-f", configPath, "-E", log]
            // `ip netns exec` execs sshd, so the pid stays sshd's.
            let pid = try namespace.map { try Shell.spawn("/usr/sbin/ip", ["netns", "exec", $0] + sshd, outputPath: log) }
                ?? Shell.spawn(sshd[0], Array(sshd.dropFirst()), outputPath: log)
            if Self.waitForPort(port, address: listenAddress, pid: pid) {
                self.port = port
                self.pid = pid
                let known = directory.appendingPathComponent("known_hosts").path
                try "[\(listenAddress)]:\(port) \(hostPublicKeyLine)\n".write(toFile: known, atomically: true, encoding: .utf8)
                knownHostsPath = known
                return
            }
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            lastError = TestFailure("sshd did not start on port \(port): \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
        }
        throw lastError ?? TestFailure("sshd did not start")
    }

    func stop() {
        // Per-connection sshd children keep running after the listener dies; end them too.
        for child in Self.children(of: pid) { kill(child, SIGKILL) }
        kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        try? FileManager.default.removeItem(at: directory)
    }

    /// The per-connection sshd processes (children of the listener).
    func sessionProcesses() -> [pid_t] { Self.children(of: pid) }

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

    static func waitForPort(_ port: Int, address host: String, pid: pid_t) -> Bool {
        for _ in 0..<100 {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return false }
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr(host)
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

/// Child processes through posix_spawn and waitpid on their own pid. Foundation's `Process` is
/// not used: on Linux its exit monitor can block in wait4() on a long-running child (the test sshd)
/// and then never notice another child's exit.
enum Shell {
    /// Runs a program to completion, failing with its output when it exits non-zero.
    @discardableResult
    static func run(_ path: String, _ arguments: [String]) throws -> String {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-shell-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let pid = try spawn(path, arguments, outputPath: outputPath)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw TestFailure("\(path) \(arguments.joined(separator: " ")) failed (status \(status)): \(output)")
        }
        return output
    }

    /// Starts a program with stdin from /dev/null and stdout+stderr appended to `outputPath`.
    static func spawn(_ path: String, _ arguments: [String], outputPath: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard rc == 0 else { throw TestFailure("cannot start \(path): \(String(cString: strerror(rc)))") }
        return pid
    }
}
