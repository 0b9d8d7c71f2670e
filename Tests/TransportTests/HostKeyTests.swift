import Foundation
import Testing
@testable import Transport

@Suite("known_hosts parsing (host-free)")
struct KnownHostsParsingTests {
    let keyA = Data((0..<51).map { UInt8($0) })
    let keyB = Data((0..<51).map { UInt8(255 - $0) })

    @Test func plainPortAndPatternEntries() {
        let file = KnownHosts(contents: """
        # comment
        host1.example,198.51.100.11 ssh-ed25519 \(keyA.base64EncodedString()) root@host1
        [198.51.100.12]:2222 ssh-ed25519 \(keyA.base64EncodedString())
        *.lab,!bad.lab ecdsa-sha2-nistp256 \(keyB.base64EncodedString())
        @cert-authority *.example ssh-ed25519 \(keyB.base64EncodedString())
        garbage line
        """)
        #expect(file.verify(host: "198.51.100.11", port: 22, keyType: "ssh-ed25519", key: keyA) == .match)
        #expect(file.verify(host: "HOST1.example", port: 22, keyType: "ssh-ed25519", key: keyA) == .match)
        #expect(file.verify(host: "198.51.100.11", port: 22, keyType: "ssh-ed25519", key: keyB)
            == .mismatch(expectedFingerprint: KnownHosts.fingerprint(keyA)))
        #expect(file.verify(host: "198.51.100.11", port: 22, keyType: "ecdsa-sha2-nistp256", key: keyB) == .unknown)
        // Port 2222 entries do not vouch for port 22 and vice versa.
        #expect(file.verify(host: "198.51.100.12", port: 2222, keyType: "ssh-ed25519", key: keyA) == .match)
        #expect(file.verify(host: "198.51.100.12", port: 22, keyType: "ssh-ed25519", key: keyA) == .unknown)
        #expect(file.verify(host: "198.51.100.11", port: 2200, keyType: "ssh-ed25519", key: keyA) == .unknown)
        #expect(file.verify(host: "db.lab", port: 22, keyType: "ecdsa-sha2-nistp256", key: keyB) == .match)
        #expect(file.verify(host: "bad.lab", port: 22, keyType: "ecdsa-sha2-nistp256", key: keyB) == .unknown)
        // A cert-authority line is not a host key.
        #expect(file.verify(host: "x.example", port: 22, keyType: "ssh-ed25519", key: keyB) == .unknown)
        #expect(file.keyTypes(host: "host1.example", port: 22) == ["ssh-ed25519"])
    }

    @Test func hashedEntriesWrittenByOpenSSHMatch() throws {
        // Written by `ssh-keygen -H` so the format is OpenSSH's, not ours.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kh-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("known_hosts").path
        try """
        198.51.100.20 ssh-ed25519 \(keyA.base64EncodedString())
        [127.0.0.1]:2022 ssh-ed25519 \(keyB.base64EncodedString())

        """.write(toFile: path, atomically: true, encoding: .utf8)
        try Shell.run("/usr/bin/ssh-keygen", ["-H", "-f", path])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains("198.51.100.20"))
        let file = try KnownHosts.load(path: path)
        #expect(file.entries.allSatisfy { $0.hostField.hasPrefix("|1|") })
        #expect(file.verify(host: "198.51.100.20", port: 22, keyType: "ssh-ed25519", key: keyA) == .match)
        #expect(file.verify(host: "127.0.0.1", port: 2022, keyType: "ssh-ed25519", key: keyB) == .match)
        #expect(file.verify(host: "127.0.0.1", port: 2022, keyType: "ssh-ed25519", key: keyA)
            == .mismatch(expectedFingerprint: KnownHosts.fingerprint(keyB)))
        #expect(file.verify(host: "198.51.100.21", port: 22, keyType: "ssh-ed25519", key: keyA) == .unknown)
    }

    @Test func appendedHashedEntriesAreReadableByOpenSSH() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kh-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("sub/known_hosts").path
        try KnownHosts.append(host: "198.51.100.30", port: 22, keyType: "ssh-ed25519", key: keyA, to: path, hashed: true)
        try KnownHosts.append(host: "198.51.100.31", port: 2222, keyType: "ssh-ed25519", key: keyB, to: path)
        let found = try Shell.run("/usr/bin/ssh-keygen", ["-F", "198.51.100.30", "-f", path])
        #expect(found.contains(keyA.base64EncodedString()))
        let foundPort = try Shell.run("/usr/bin/ssh-keygen", ["-F", "[198.51.100.31]:2222", "-f", path])
        #expect(foundPort.contains(keyB.base64EncodedString()))
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func fingerprintMatchesSshKeygen() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let key = dir.appendingPathComponent("k").path
        try Shell.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key])
        let line = try String(contentsOfFile: key + ".pub", encoding: .utf8)
        let blob = try #require(Data(base64Encoded: String(line.split(separator: " ")[1])))
        let expected = try Shell.run("/usr/bin/ssh-keygen", ["-l", "-E", "sha256", "-f", key + ".pub"])
        #expect(expected.split(separator: " ")[1] == KnownHosts.fingerprint(blob))
        #expect(LibSSH2Session.keyType(ofBlob: blob) == "ssh-ed25519")
    }
}

@Suite("Host key verification against a real sshd")
struct HostKeyVerificationTests {
    @Test func hashedKnownHostsEntryIsAccepted() async throws {
        try await withSSHServer { server in
            try Shell.run("/usr/bin/ssh-keygen", ["-H", "-f", server.knownHostsPath])
            #expect(try String(contentsOfFile: server.knownHostsPath, encoding: .utf8).hasPrefix("|1|"))
            let connection = try await SSHConnection.connect(server.target())
            defer { Task { await connection.close() } }
            #expect(try await connection.run("echo hi").stdoutText == "hi\n")
            // The log check used by the changed-key test does see authentications.
            #expect(server.log.contains("Accepted publickey"))
        }
    }

    @Test func unknownHostIsRefusedWhenStrict() async throws {
        try await withSSHServer { server in
            var target = server.target()
            target.knownHostsPath = server.directory.appendingPathComponent("empty_known_hosts").path
            let error = await #expect(throws: TransportError.self) { try await SSHConnection.connect(target) }
            guard case .hostKeyUnknown(_, let port, let type, let fingerprint, _) = error else {
                Issue.record("expected an unknown host key, got \(String(describing: error))")
                return
            }
            #expect(port == server.port)
            #expect(type == "ssh-ed25519")
            #expect(fingerprint == KnownHosts.fingerprint(server.hostKeyBlob))
            #expect(error?.description.contains("--accept-new-host-keys") == true)
            #expect(!server.log.contains("Accepted publickey"))
            #expect(!FileManager.default.fileExists(atPath: target.knownHostsPath))
        }
    }

    @Test func acceptNewAppendsTheKeyAndLaterStrictConnectionsPass() async throws {
        try await withSSHServer { server in
            var target = server.target()
            target.knownHostsPath = server.directory.appendingPathComponent("new/known_hosts").path
            target.hostKeyPolicy = .acceptNew
            let first = try await SSHConnection.connect(target)
            await first.close()
            let written = try KnownHosts.load(path: target.knownHostsPath)
            #expect(written.verify(host: "127.0.0.1", port: server.port, keyType: "ssh-ed25519",
                                   key: server.hostKeyBlob) == .match)
            #expect(written.entries.count == 1)
            target.hostKeyPolicy = .strict
            let second = try await SSHConnection.connect(target)
            await second.close()
            #expect(try KnownHosts.load(path: target.knownHostsPath).entries.count == 1)
        }
    }

    @Test func changedHostKeyIsRefusedBeforeAuthenticationAndNothingRuns() async throws {
        try await withSSHServer { server in
            // known_hosts lists another ed25519 key for this host:port.
            let impostor = server.directory.appendingPathComponent("impostor").path
            try Shell.run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", impostor])
            let impostorLine = try String(contentsOfFile: impostor + ".pub", encoding: .utf8)
            try "[127.0.0.1]:\(server.port) \(impostorLine)".write(toFile: server.knownHostsPath,
                                                                  atomically: true, encoding: .utf8)
            let marker = "/tmp/ccrun-marker-\(UUID().uuidString)"
            for policy in [HostKeyPolicy.strict, .acceptNew] {
                var target = server.target()
                target.hostKeyPolicy = policy
                let error = await #expect(throws: TransportError.self) {
                    let connection = try await SSHConnection.connect(target)
                    _ = try await connection.run("touch \(marker)")
                }
                guard case .hostKeyChanged(_, _, _, let offered, let expected, _) = error else {
                    Issue.record("expected a changed host key, got \(String(describing: error))")
                    return
                }
                #expect(offered == KnownHosts.fingerprint(server.hostKeyBlob))
                #expect(expected != offered)
                #expect(error?.description.contains("HOST KEY CHANGED") == true)
            }
            #expect(!FileManager.default.fileExists(atPath: marker))
            // sshd saw no authentication attempt at all (LogLevel VERBOSE logs each one).
            try await Task.sleep(for: .milliseconds(200))
            let log = server.log
            #expect(!log.contains("Accepted publickey"))
            #expect(!log.contains("Failed publickey"))
            #expect(!log.contains("Postponed publickey"))
            // known_hosts was not touched by acceptNew.
            #expect(try String(contentsOfFile: server.knownHostsPath, encoding: .utf8) == "[127.0.0.1]:\(server.port) \(impostorLine)")
        }
    }
}

@Suite("Command pid line (host-free)")
struct CommandPIDTests {
    @Test func pidLineIsParsedAndRemovedFromStderr() {
        let stderr = Data("noise from rc\n__ccrun_pid=4242\nreal error\n".utf8)
        #expect(CommandPID.parse(stderr) == 4242)
        #expect(CommandPID.strip(stderr) == Data("noise from rc\nreal error\n".utf8))
        #expect(CommandPID.strip(Data("plain\n".utf8)) == Data("plain\n".utf8))
        #expect(CommandPID.parse(Data()) == nil)
    }
}
