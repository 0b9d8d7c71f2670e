import Foundation
import Testing
@testable import Transport

@Suite("sudo -n through a non-root login")
struct SudoTests {
    @Test(.enabled(if: TestUser.available, "\(TestUser.unavailableReason ?? "")"))
    func commandsRunAsRootThroughSudo() async throws {
        try await withSSHServer { server in
            let plain = try await SSHConnection.connect(server.target(user: TestUser.name))
            defer { Task { await plain.close() } }
            #expect(try await plain.run("id -u").stdoutText != "0\n")

            let connection = try await SSHConnection.connect(server.target(user: TestUser.name, sudo: true))
            defer { Task { await connection.close() } }
            #expect(try await connection.run("id -u").stdoutText == "0\n")
            // Quoting survives the sudo wrapper; stdin still reaches the command.
            let quoted = try await connection.run("printf '%s|' \"it's\" \"$(whoami)\"; cat", stdin: Data("in".utf8))
            #expect(quoted.stdoutText == "it's|root|in")

            // Upload into a root-only directory; the file is root's, with the asked mode.
            let dir = "/root/ccrun-sudo-test-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o700])
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let path = dir + "/secret.conf"
            try await connection.upload(Data("password=x\n".utf8), to: path, mode: 0o640)
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect(attributes[.posixPermissions] as? Int == 0o640)
            #expect(attributes[.ownerAccountName] as? String == "root")
            #expect(try await connection.readFile(path) == Data("password=x\n".utf8))
            #expect(try await connection.readFile(dir + "/missing") == nil)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["secret.conf"])
            // Without sudo the same file is unreadable: the error names the path.
            let error = await #expect(throws: TransportError.self) { try await plain.readFile(path) }
            #expect(error?.description.contains(path) == true)
            // No staging file left in /tmp.
            let staging = try FileManager.default.contentsOfDirectory(atPath: "/tmp").filter { $0.hasPrefix(".ccrun-upload-") }
            #expect(staging.isEmpty)
        }
    }

    @Test func sudoRefusalsAreToldApartFromCommandFailures() {
        #expect(SSHConnection.sudoRefusal("sudo: a password is required\n") == "sudo: a password is required")
        #expect(SSHConnection.sudoRefusal("deploy is not in the sudoers file.  This incident will be reported.\n") != nil)
        #expect(SSHConnection.sudoRefusal("grep: /etc/x: No such file or directory\n") == nil)
    }
}
