import Foundation
import SupportKit
import Testing

/// `--command-timeout` reaches the probes of every guide command that runs on hosts: a host
/// whose probe hangs (here `dpkg-query`, shadowed in /usr/local/bin by one that sleeps) fails
/// with a timeout that names it, after about the given time, instead of waiting the default
/// two minutes.
@Suite(.serialized, .enabled(if: LabEnvironment.shouldRun, Comment(rawValue: LabEnvironment.skipReason)))
struct GuideCommandTimeoutTests {
    static let host = "host6"

    @Test(.timeLimit(.minutes(5)))
    func aHangingProbeFailsTheHostWithATimeoutNamingIt() throws {
        let shell = try LabHostShell.load()
        let ccrun = try LabDeployTests.ccrunBinary()
        let ship = try LabDeployTests.shipBinary()
        let hang = "/usr/local/bin/dpkg-query"
        try shell.check(Self.host, "printf '#!/bin/sh\\nsleep 30\\n' > \(hang) && chmod 755 \(hang)", "shadow dpkg-query")
        defer { _ = try? shell.run(Self.host, "rm -f \(hang); pkill -f 'sleep 30' || true") }

        for command in ["nfs-master", "repo-node", "web-node"] {
            let started = Date()
            let r = try LabDeployTests.run(ccrun, [command, "--inventory", shell.inventoryPath, "--ccr-binary", ship,
                                                   "--dry-run", "--command-timeout", "1", Self.host])
            let seconds = Date().timeIntervalSince(started)
            #expect(r.status == 1, "ccrun \(command) with a hanging probe exited \(r.status):\n\(r.output.suffix(2000))")
            #expect(r.output.contains(Self.host) && r.output.contains("did not finish within 1 s"), "ccrun \(command): no timeout naming \(Self.host):\n\(r.output.suffix(2000))")
            #expect(seconds < 20, "ccrun \(command) took \(seconds) s with --command-timeout 1")
        }
        // What a script reads: the same failure typed, in a document of the published schema.
        let r = try CCRunExecutable.run(["repo-node", "--inventory", shell.inventoryPath, "--ccr-binary", ship,
                                         "--dry-run", "--json", "--command-timeout", "1", Self.host])
        #expect(r.status == 1)
        if JSONSchemaCheck.shouldRun {
            let errors = try JSONSchemaCheck.errors(in: r.stdout, schema: "ccrun.run-2.json")
            #expect(errors.isEmpty, "\(errors)\n\(r.stdout)")
        }
        let doc = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)\n\(r.stderr)")
        let host = try #require((doc["hosts"] as? [[String: Any]])?.first)
        #expect(host["host"] as? String == Self.host && (host["failure"] as? [String: Any])?["kind"] as? String == "timeout", "\(host)")
    }
}
