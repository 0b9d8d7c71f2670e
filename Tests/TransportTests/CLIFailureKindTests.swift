import Foundation
import SupportKit
import Testing

/// What `ccrun ... --json` says, as a script reads it, when the SSH transport fails: a host key
/// that is not known is `refused` (nothing ran, a decision is needed), a host whose sshd is
/// gone is `unreachable`. Real sshd, real ccrun process; the document is checked against
/// docs/schemas/ccrun.run-2.json.
@Suite struct CLIFailureKindTests {
    func failure(_ stdout: String) throws -> [String: Any] {
        if JSONSchemaCheck.shouldRun {
            let errors = try JSONSchemaCheck.errors(in: stdout, schema: "ccrun.run-2.json")
            #expect(errors.isEmpty, "\(errors)\n\(stdout)")
        }
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any], "not JSON:\n\(stdout)")
        let host = try #require((doc["hosts"] as? [[String: Any]])?.first)
        return try #require(host["failure"] as? [String: Any], "no failure in \(host)")
    }

    @Test func unknownHostKeyIsRefusedAndAStoppedServerUnreachable() async throws {
        try #require(CCRunExecutable.path != nil, Comment(rawValue: CCRunExecutable.missing))
        let server = try TestSSHServer()
        var running = true
        defer { if running { server.stop() } }
        // Outside the server's folder, which stop() removes: the second run needs them still.
        let mine = FileManager.default.temporaryDirectory.appendingPathComponent("cli-kinds-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: mine, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: mine) }
        let config = mine.appendingPathComponent("ssh_config").path
        try "Host kinds-test\n  HostName \(server.listenAddress)\n  Port \(server.port)\n  User root\n  IdentityFile \(server.clientKey)\n"
            .write(toFile: config, atomically: true, encoding: .utf8)
        let empty = mine.appendingPathComponent("empty_known_hosts").path
        let args = ["sample", "--dry-run", "--json", "--ssh-config", config, "--known-hosts", empty, "--connect-timeout", "5", "kinds-test"]

        let refused = try CCRunExecutable.run(args)
        #expect(refused.status == 1, "\(refused.stdout)\n\(refused.stderr)")
        let f1 = try failure(refused.stdout)
        #expect(f1["kind"] as? String == "refused" && (f1["message"] as? String)?.contains("is not known") == true, "\(f1)")
        #expect(!server.log.contains("Accepted publickey"), "ccrun authenticated to a host whose key it does not know")

        server.stop(); running = false
        let unreachable = try CCRunExecutable.run(args)
        #expect(unreachable.status == 1)
        let f2 = try failure(unreachable.stdout)
        #expect(f2["kind"] as? String == "unreachable" && (f2["message"] as? String)?.contains("\(server.port)") == true, "\(f2)")
    }
}
