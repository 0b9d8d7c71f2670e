import Foundation
import Testing
@testable import Transport

@Suite("SSH connection against a real sshd")
struct ConnectionTests {
    @Test func runReturnsStdoutStderrAndExitStatus() async throws {
        try await withSSHServer { server in
            let connection = try await SSHConnection.connect(server.target())
            defer { Task { await connection.close() } }
            let output = try await connection.run("echo out; echo err >&2; exit 7")
            #expect(output.stdoutText == "out\n")
            #expect(output.stderrText == "err\n")
            #expect(output.exitStatus == 7)
            // curve25519 key exchange and the ed25519 host key were negotiated.
            #expect(connection.keyExchangeMethod.hasPrefix("curve25519-sha256"))
            #expect(connection.hostKeyMethod == "ssh-ed25519")
            let ok = try await connection.run("printf '%s' \"$(id -un)\"")
            #expect(ok.stdoutText == "root")
            #expect(ok.exitStatus == 0)
        }
    }

    @Test func stdinReachesTheCommand() async throws {
        try await withSSHServer { server in
            let connection = try await SSHConnection.connect(server.target())
            defer { Task { await connection.close() } }
            let secret = "s3cr3t-\(UUID().uuidString)\nsecond line\n"
            let output = try await connection.run("sha256sum", stdin: Data(secret.utf8))
            #expect(output.stdoutText.hasPrefix(Digest.sha256Hex(Data(secret.utf8))))
            // A command that ignores its stdin must not block the call.
            let ignoring = try await connection.run("echo done", stdin: Data(count: 1_000_000))
            #expect(ignoring.stdoutText == "done\n")
        }
    }

    @Test func commandsLongerThanAnExecRequestRunWithTheirStdin() async throws {
        try await withSSHServer { server in
            let connection = try await SSHConnection.connect(server.target())
            defer { Task { await connection.close() } }
            // ~100 KB of script (libssh2 sends at most ~32 KB in an exec request), then stdin.
            let padding = (0..<2000).map { "ccrun_v\($0)=\"value number \($0) of a long script\"" }.joined(separator: "\n")
            let script = padding + "\necho \"$ccrun_v1999\"; sha256sum; exit 3"
            #expect(script.utf8.count > 3 * LibSSH2Session.maxInlineCommand)
            let input = Data("stdin after the script\n".utf8)
            let output = try await connection.run(script, stdin: input)
            #expect(output.exitStatus == 3)
            #expect(output.stdoutText.hasPrefix("value number 1999 of a long script\n" + Digest.sha256Hex(input)))
        }
    }

    @Test func bigOutputAndManyCommandsOnOneSession() async throws {
        try await withSSHServer { server in
            let connection = try await SSHConnection.connect(server.target())
            defer { Task { await connection.close() } }
            // 6 MB on stdout and 1 MB on stderr at the same time: both windows must keep draining.
            let output = try await connection.run(
                "head -c 6000000 /dev/zero | tr '\\0' 'a'; head -c 1000000 /dev/zero | tr '\\0' 'b' >&2")
            #expect(output.stdout.count == 6_000_000)
            #expect(output.stdout.allSatisfy { $0 == UInt8(ascii: "a") })
            #expect(output.stderr.count == 1_000_000)
            // Big stdin in, checksum out.
            var input = Data(count: 3_000_000)
            for i in stride(from: 0, to: input.count, by: 997) { input[i] = UInt8(i % 251) }
            let sum = try await connection.run("sha256sum", stdin: input)
            #expect(sum.stdoutText.hasPrefix(Digest.sha256Hex(input)))
            for i in 0..<10 {
                let echo = try await connection.run("echo \(i)")
                #expect(echo.stdoutText == "\(i)\n")
            }
            // Concurrent callers share the session safely (calls are serialised).
            let results = try await withThrowingTaskGroup(of: String.self) { group in
                for i in 0..<6 { group.addTask { try await connection.run("echo c\(i)").stdoutText } }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(results == Set((0..<6).map { "c\($0)\n" }))
        }
    }

    @Test func atomicUploadSetsModeAndReadFileReturnsIt() async throws {
        try await withSSHServer { server in
            let connection = try await SSHConnection.connect(server.target())
            defer { Task { await connection.close() } }
            let dir = server.directory.appendingPathComponent("remote").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let path = dir + "/config file.txt"
            var content = Data("first version\n".utf8)
            try await connection.upload(content, to: path, mode: 0o600)
            #expect(try await connection.readFile(path) == content)
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            #expect(mode == 0o600)

            // Replacing: a new inode is renamed over the old one (atomic), mode changes.
            let inodeBefore = try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? Int
            content = Data((0..<2_000_000).map { UInt8($0 % 253) })
            try await connection.upload(content, to: path, mode: 0o755)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == content)
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect(attributes[.posixPermissions] as? Int == 0o755)
            #expect(attributes[.systemFileNumber] as? Int != inodeBefore)
            #expect(try await connection.readFile(path) == content)
            // No temporary file is left beside it.
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["config file.txt"])

            // Non-atomic write in place.
            try await connection.upload(Data("x".utf8), to: dir + "/plain", mode: 0o640, atomic: false)
            #expect(try String(contentsOfFile: dir + "/plain", encoding: .utf8) == "x")
            #expect(try FileManager.default.attributesOfItem(atPath: dir + "/plain")[.posixPermissions] as? Int == 0o640)

            #expect(try await connection.readFile(dir + "/missing") == nil)
            // An empty file is not a missing file.
            try await connection.upload(Data(), to: dir + "/empty", mode: 0o644)
            #expect(try await connection.readFile(dir + "/empty") == Data())
        }
    }

    @Test func uploadIntoAMissingDirectoryNamesThePath() async throws {
        try await withSSHServer { server in
            let connection = try await SSHConnection.connect(server.target())
            defer { Task { await connection.close() } }
            let path = server.directory.path + "/no/such/dir/file"
            let error = await #expect(throws: TransportError.self) {
                try await connection.upload(Data("x".utf8), to: path, mode: 0o644)
            }
            guard case .sftp(_, _, let failedPath, _) = error else {
                Issue.record("expected an SFTP error, got \(String(describing: error))")
                return
            }
            #expect(failedPath.hasPrefix(server.directory.path + "/no/such/dir/"))
            #expect(error?.description.contains("/no/such/dir/") == true)
        }
    }

    @Test func unreachablePortFailsFastWithAddressAndReason() async throws {
        let port = try TestSSHServer.freePort()  // nothing listens there
        let target = SSHTarget(host: "127.0.0.1", port: port, knownHostsPath: "/nonexistent/known_hosts",
                               connectTimeout: .seconds(20))
        let started = ContinuousClock.now
        let error = await #expect(throws: TransportError.self) { try await SSHConnection.connect(target) }
        let elapsed = ContinuousClock.now - started
        #expect(error == .unreachable(host: "127.0.0.1", port: port, reason: "Connection refused"))
        #expect(error?.description.contains("127.0.0.1:\(port)") == true)
        // Refused at once, not after the connect timeout (loose bound: CI machines are busy).
        #expect(elapsed < .seconds(8))
    }

    @Test func commandTimeoutEndsTheCallAndTheSessionStaysUsable() async throws {
        try await withSSHServer { server in
            let connection = try await SSHConnection.connect(server.target())
            defer { Task { await connection.close() } }
            let started = ContinuousClock.now
            let error = await #expect(throws: TransportError.self) {
                try await connection.run("sleep 30", timeout: .seconds(1))
            }
            let elapsed = ContinuousClock.now - started
            print("command timeout: error after \(elapsed) (limit 1 s)")
            guard case .commandTimeout(_, let command, let after) = error else {
                Issue.record("expected a command timeout, got \(String(describing: error))")
                return
            }
            #expect(command == "sleep 30")
            #expect(after == .seconds(1))
            #expect(elapsed < .seconds(4))
            let next = try await connection.run("echo still here", timeout: .seconds(5))
            #expect(next.stdoutText == "still here\n")
            #expect(next.stderr.isEmpty)

            // The timed-out command is stopped on the host, not left running.
            let marker = server.directory.path + "/late-marker"
            await #expect(throws: TransportError.self) {
                try await connection.run("sleep 2; touch \(marker)", timeout: .milliseconds(700))
            }
            try await Task.sleep(for: .milliseconds(2500))
            #expect(!FileManager.default.fileExists(atPath: marker))
        }
    }

    @Test func serverDyingMidCommandIsALostLink() async throws {
        try await withSSHServer { server in
            let connection = try await SSHConnection.connect(server.target())
            defer { Task { await connection.close() } }
            let killer = Task {
                try await Task.sleep(for: .milliseconds(500))
                for pid in server.sessionProcesses() { kill(pid, SIGKILL) }
            }
            let started = ContinuousClock.now
            let error = await #expect(throws: TransportError.self) {
                try await connection.run("sleep 30", timeout: .seconds(20))
            }
            _ = try? await killer.value
            guard case .linkLost = error else {
                Issue.record("expected a lost link, got \(String(describing: error))")
                return
            }
            #expect(ContinuousClock.now - started < .seconds(5))
            // The broken session fails fast afterwards, with the same clear error.
            await #expect(throws: TransportError.self) { try await connection.run("true") }
        }
    }

    @Test func closedConnectionRefusesCalls() async throws {
        try await withSSHServer { server in
            let connection = try await SSHConnection.connect(server.target())
            await connection.close()
            let error = await #expect(throws: TransportError.self) { try await connection.run("true") }
            #expect(error == .closed(host: "test-sshd"))
            #expect(error?.description == "connection to test-sshd was already closed")
        }
    }

    @Test func authenticationFailureNamesUserAndKeys() async throws {
        try await withSSHServer { server in
            let otherKey = server.directory.appendingPathComponent("other_ed25519").path
            try Shell.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", otherKey])
            var target = server.target()
            target.identityFiles = [otherKey, "/nonexistent/id_ecdsa"]
            let error = await #expect(throws: TransportError.self) { try await SSHConnection.connect(target) }
            guard case .authenticationFailed(let user, _, let tried, _) = error else {
                Issue.record("expected an authentication failure, got \(String(describing: error))")
                return
            }
            #expect(user == "root")
            #expect(tried.count == 2)
            #expect(tried.first?.hasPrefix(otherKey) == true)
            #expect(error?.description.contains(otherKey) == true)
        }
    }

    @Test func ecdsaKeysAuthenticate() async throws {
        try await withSSHServer { server in
            let ecdsa = server.directory.appendingPathComponent("client_ecdsa").path
            try Shell.run("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f", ecdsa])
            let authorized = server.directory.appendingPathComponent("authorized_keys")
            let handle = try FileHandle(forWritingTo: authorized)
            try handle.seekToEnd()
            try handle.write(contentsOf: try Data(contentsOf: URL(fileURLWithPath: ecdsa + ".pub")))
            try handle.close()
            var target = server.target()
            target.identityFiles = [ecdsa]
            let connection = try await SSHConnection.connect(target)
            defer { Task { await connection.close() } }
            #expect(try await connection.run("echo ok").stdoutText == "ok\n")
        }
    }

    @Test func sshAgentKeysAuthenticate() async throws {
        try await withSSHServer { server in
            let socket = server.directory.appendingPathComponent("agent.sock").path
            let agentLog = server.directory.appendingPathComponent("agent.log").path
            let agent = try Shell.spawn("/usr/bin/ssh-agent", ["-D", "-a", socket], outputPath: agentLog)
            defer {
                kill(agent, SIGKILL)
                var status: Int32 = 0
                waitpid(agent, &status, 0)
            }
            for _ in 0..<100 where !FileManager.default.fileExists(atPath: socket) { usleep(20_000) }
            try Shell.run("/usr/bin/env", ["SSH_AUTH_SOCK=\(socket)", "/usr/bin/ssh-add", "-q", server.clientKey])
            var target = server.target()
            target.identityFiles = ["/nonexistent/id_ed25519"]
            target.useAgent = true
            target.agentSocketPath = socket
            let connection = try await SSHConnection.connect(target)
            defer { Task { await connection.close() } }
            #expect(try await connection.run("echo agent").stdoutText == "agent\n")
            // Without the agent the same target has no usable key.
            target.useAgent = false
            await #expect(throws: TransportError.self) { try await SSHConnection.connect(target) }
        }
    }

    /// Not a timed assertion: prints what loopback costs, for the report. Uses the /bin/sh test
    /// user when it exists, since root's bash here spends ~0.5 s in ~/.bashrc per command.
    @Test func measureConnectAndRoundTrip() async throws {
        try await withSSHServer { server in
            let user = TestUser.available ? TestUser.name : "root"
            var connects: [Duration] = []
            for _ in 0..<5 {
                let started = ContinuousClock.now
                let connection = try await SSHConnection.connect(server.target(user: user))
                connects.append(ContinuousClock.now - started)
                print("connect: tcp+kex+hostkey \(connection.connectDuration), auth \(connection.authDuration)")
                await connection.close()
            }
            let connection = try await SSHConnection.connect(server.target(user: user))
            defer { Task { await connection.close() } }
            _ = try await connection.run("true")
            let rounds = 30
            let started = ContinuousClock.now
            for _ in 0..<rounds { _ = try await connection.run("true") }
            let perCommand = (ContinuousClock.now - started) / rounds
            let file = user == "root" ? server.directory.path + "/m" : "/tmp/ccrun-measure-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: file) }
            let sftpStart = ContinuousClock.now
            for i in 0..<10 {
                try await connection.upload(Data("v\(i)".utf8), to: file, mode: 0o644)
            }
            let perUpload = (ContinuousClock.now - sftpStart) / 10
            let readStart = ContinuousClock.now
            for _ in 0..<10 { _ = try await connection.readFile(file) }
            let perRead = (ContinuousClock.now - readStart) / 10
            print("MEASURE loopback (user \(user)): connect+auth median \(connects.sorted()[2]), min \(connects.min()!); "
                + "per command round trip \(perCommand); per small atomic upload \(perUpload); per readFile \(perRead)")
            #expect(try await connection.readFile(file) == Data("v9".utf8))
        }
    }
}
