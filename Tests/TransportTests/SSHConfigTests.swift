import Foundation
import Testing
@testable import Transport

@Suite("ssh_config resolution")
struct SSHConfigTests {
    let sample = """
    # global defaults come first in this file
    Host repo-*  !repo-legacy
        HostName %h.lab.example
        User deploy
        IdentityFile ~/.ssh/id_repo

    Host repo-1
        HostName 198.51.100.12
        Port 2222

    Host db
        Hostname=198.51.100.10
        user admin
        Port 22
        IdentityFile "/keys/with space/id_ed25519"
        StrictHostKeyChecking accept-new
        UserKnownHostsFile /etc/ccrun/known_hosts

    Match host db
        User ignored

    Host *
        User fallback
        IdentityFile /keys/%r@%h
        ConnectTimeout 7
    """

    @Test func firstObtainedValueWinsAndIdentityFilesAccumulate() throws {
        let config = try SSHConfigFile(contents: sample)
        let repo1 = config.resolve("repo-1")
        // repo-* comes first, so its HostName and User win over the repo-1 block.
        #expect(repo1.hostName == "repo-1.lab.example")
        #expect(repo1.user == "deploy")
        #expect(repo1.port == 2222)
        #expect(repo1.identityFiles == [SSHTarget.homeDirectory + "/.ssh/id_repo",
                                        "/keys/deploy@repo-1.lab.example"])
        #expect(repo1.connectTimeout == .seconds(7))

        let legacy = config.resolve("repo-legacy")
        #expect(legacy.hostName == nil)
        #expect(legacy.user == "fallback")

        let db = config.resolve("db")
        #expect(db.hostName == "198.51.100.10")
        #expect(db.user == "admin")
        #expect(db.port == 22)
        #expect(db.identityFiles.first == "/keys/with space/id_ed25519")
        #expect(db.hostKeyPolicy == .acceptNew)
        #expect(db.userKnownHostsFile == "/etc/ccrun/known_hosts")

        let other = config.resolve("198.51.100.99")
        #expect(other.hostName == nil && other.port == nil && other.user == "fallback")
    }

    @Test func targetFromAlias() throws {
        let config = try SSHConfigFile(contents: sample)
        let target = SSHTarget.fromSSHConfig(alias: "db", config: config,
                                             defaults: SSHTarget(host: "x", connectTimeout: .seconds(3), sudo: true))
        #expect(target.name == "db")
        #expect(target.host == "198.51.100.10")
        #expect(target.user == "admin")
        #expect(target.knownHostsPath == "/etc/ccrun/known_hosts")
        #expect(target.hostKeyPolicy == .acceptNew)
        #expect(target.connectTimeout == .seconds(7))
        #expect(target.sudo)
        let plain = SSHTarget.fromSSHConfig(alias: "198.51.100.50", config: try SSHConfigFile(contents: ""))
        #expect(plain.host == "198.51.100.50" && plain.port == 22 && plain.user == "root")
    }

    @Test func malformedLinesAreReportedWithTheirLine() {
        #expect(throws: SSHConfigFile.ParseError(path: "cfg", line: 2, message: "bad port 'ssh'")) {
            try SSHConfigFile(contents: "Host a\n  Port ssh\n", path: "cfg")
        }
        #expect(throws: SSHConfigFile.ParseError.self) { try SSHConfigFile(contents: "Host\n", path: "cfg") }
    }

    @Test func connectionThroughAnAlias() async throws {
        try await withSSHServer { server in
            let configText = """
            Host testbox
                HostName 127.0.0.1
                Port \(server.port)
                User root
                IdentityFile \(server.clientKey)
                UserKnownHostsFile \(server.knownHostsPath)
            """
            let config = try SSHConfigFile(contents: configText)
            let target = SSHTarget.fromSSHConfig(alias: "testbox", config: config)
            let connection = try await SSHConnection.connect(target)
            defer { Task { await connection.close() } }
            #expect(try await connection.run("echo via-alias").stdoutText == "via-alias\n")
        }
    }
}
