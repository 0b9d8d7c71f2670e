import CloudAPI
import Foundation
import SupportKit
import Testing

/// `ccrun deploy` as a user runs it: a fresh moto account (signature checking on) for the AWS
/// half, and the lab hosts the instances' private addresses map to for the host half
/// (nfs-master .11, repo-node .12, web-node .13; the lab's MariaDB on db .10 stands in for
/// the RDS endpoint through `aws.rds.host`). Everything is verified with boto3 and by asking
/// the hosts themselves. These hosts are shared with RunbookTests.LabDeployTests; the runbooks
/// are idempotent, so either suite may configure them first.
///
/// The ccr shipped to the hosts: `$CCR_SHIP_BINARY`, else `.build-ship/release/ccr`, else
/// ccrun builds it (slow).
@Suite("ccrun deploy: AWS then the host runbooks", .serialized,
       .enabled(if: LabEnvironment.shouldRun, "needs the lab (`ccrun lab up`): the instances map to its hosts"))
struct DeployAllTests {
    static let hostNames = ["db", "nfs-master", "repo-node", "web-node"]

    /// The world's inventory (aws object pointing at its moto) joined with the lab's four
    /// hosts (SSH user, key, known_hosts) and its database admin; RDS is stood in for by db.
    static func inventory(_ w: AWSWorld) throws -> String {
        let lab = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: LabEnvironment.inventoryPath))) as! [String: Any]
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: w.inventoryPath))) as! [String: Any]
        let labHosts = lab["hosts"] as? [String: Any] ?? [:]
        var hosts: [String: Any] = [:]
        for name in hostNames {
            guard let host = labHosts[name] else { throw TestFailure("lab host \(name) missing from \(LabEnvironment.inventoryPath)") }
            hosts[name] = host
        }
        json["hosts"] = hosts
        guard let database = lab["database"] else { throw TestFailure("the lab inventory has no database object") }
        json["database"] = database
        json["nfsServer"] = "nfs-master"
        var aws = json["aws"] as! [String: Any]
        var rds = aws["rds"] as! [String: Any]
        rds["host"] = "db"
        aws["rds"] = rds
        json["aws"] = aws
        let path = w.directory.appendingPathComponent("deploy-inventory.json").path
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func shipBinary() -> String? {
        if let p = ProcessInfo.processInfo.environment["CCR_SHIP_BINARY"], !p.isEmpty { return p }
        let built = Fixtures.packageRoot.appendingPathComponent(".build-ship/release/ccr").path
        return FileManager.default.isExecutableFile(atPath: built) ? built : nil
    }

    static func argv(_ inventory: String, _ args: [String]) throws -> [String] {
        [try AWSWorld.ccrunPath(), "deploy", "--inventory", inventory] + args + (shipBinary().map { ["--ccr-binary", $0] } ?? ["--build-ccr"])
    }

    /// Runs `ccrun deploy` to completion and checks no secret leaked into its output.
    static func deploy(_ w: AWSWorld, _ inventory: String, _ args: [String] = []) throws -> Python.Result {
        var env = w.environment()
        env.removeValue(forKey: "CCR_BINARY")
        let r = try Exec.run(try argv(inventory, args), environment: env)
        try w.assertNoSecret(in: r.stdout + r.stderr, what: "ccrun deploy \(args.joined(separator: " "))")
        return r
    }

    /// Lines saying a step or resource was changed (runbook lines `host: changed ...`,
    /// aws lines `aws: changed ...`).
    static func changedLines(_ text: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { $0.contains(": changed ") }
    }

    /// Counts of what exists in the account, as boto3 sees it.
    static func counts(_ w: AWSWorld) throws -> [String: Int] {
        let s = try w.snapshot()
        return [
            "instances": (s["instances"] as! [Any]).count,
            "volumes": (s["volumes"] as! [[String: Any]]).filter { $0["name"] as? String == "cc-nfs-data" }.count,
            "databases": (s["databases"] as! [Any]).count,
            "images": (s["images"] as! [Any]).count,
            "loadBalancers": (s["loadBalancers"] as! [String: Any]).count,
            "classicLoadBalancers": (s["classicLoadBalancers"] as! [String: Any]).count,
            "targetGroups": (s["targetGroups"] as! [String: Any]).count,
            "launchTemplates": (s["launchTemplates"] as! [String: Any]).count,
            "launchConfigurations": (s["launchConfigurations"] as! [String: Any]).count,
            "autoScalingGroups": (s["autoScalingGroups"] as! [String: Any]).count,
        ]
    }

    static let oneOfEach = ["instances": 3, "volumes": 1, "databases": 1, "images": 3, "loadBalancers": 2, "classicLoadBalancers": 0,
                            "targetGroups": 2, "launchTemplates": 2, "launchConfigurations": 0, "autoScalingGroups": 2]
    static let nothing = ["instances": 0, "volumes": 0, "databases": 0, "images": 0, "loadBalancers": 0, "classicLoadBalancers": 0,
                          "targetGroups": 0, "launchTemplates": 0, "launchConfigurations": 0, "autoScalingGroups": 0]

    static func destroyLeavesNothing(_ w: AWSWorld, _ inventory: String) throws {
        let r = try Exec.run([try AWSWorld.ccrunPath(), "aws", "destroy", "--inventory", inventory], environment: w.environment())
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        try w.assertNoSecret(in: r.stdout + r.stderr, what: "ccrun aws destroy")
        #expect(try counts(w) == nothing)
        #expect((try w.snapshot()["groups"] as! [String: Any]).isEmpty)
    }

    /// An HTTP GET from this machine (on the lab bridge) to a lab host.
    static func httpStatus(_ url: String) throws -> String {
        try Exec.run(["/usr/bin/curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", url]).stdout
    }

    /// Whether a TCP connection to address:port is accepted.
    static func accepts(_ address: String, _ port: Int) throws -> Bool {
        let probe = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 5).close()"
        return try Python.run(probe, [address, String(port)]).status == 0
    }

    @Test("deploy on a fresh account builds everything, the hosts answer, a second deploy changes nothing, destroy leaves nothing",
          .timeLimit(.minutes(30)))
    func freshAccount() throws {
        let w = try AWSWorld()
        defer { w.close() }
        let inv = try Self.inventory(w)

        // Dry-run on a fresh account: the aws phase has changes, the host phases depend on it.
        let plan0 = try Self.deploy(w, inv, ["--dry-run"])
        #expect(plan0.status == 2, "\(plan0.stdout)\(plan0.stderr)")
        for phase in ["database", "nfs-master", "repo-node", "web-node"] {
            #expect(plan0.stdout.contains("deploy: \(phase.padding(toLength: 11, withPad: " ", startingAt: 0)) depends"), "\(phase) should depend:\n\(plan0.stdout)")
        }
        #expect(plan0.stdout.contains("deploy: aws         would change"), "\(plan0.stdout)")
        #expect(try Self.counts(w) == Self.nothing, "a dry-run created something")

        let first = try Self.deploy(w, inv)
        #expect(first.status == 0, "\(first.stdout.suffix(6000))\(first.stderr)")
        for phase in ["aws", "database", "nfs-master", "repo-node", "web-node", "images"] {
            #expect(first.stdout.contains("deploy: \(phase.padding(toLength: 11, withPad: " ", startingAt: 0)) done"), "phase \(phase) not done")
        }

        let s = try w.snapshot()
        #expect(try Self.counts(w) == Self.oneOfEach)
        #expect((s["groups"] as! [String: [String]]) == expectedRules)
        let inst = (s["instances"] as! [[String: Any]]).reduce(into: [String: String]()) { $0[$1["name"] as! String] = $1["ip"] as? String }
        #expect(inst == ["cc-nfs-master": "198.51.100.11", "cc-repo-node": "198.51.100.12", "cc-web-node": "198.51.100.13"])
        #expect(s["protection"] as? [String: Bool] == ["cc-nfs-master": true, "cc-repo-node": false, "cc-web-node": false])
        #expect(s["images"] as? [String] == ["cc-nfs-master-image", "cc-repo-node-image", "cc-web-node-image"])
        let vol = (s["volumes"] as! [[String: Any]]).first { $0["name"] as? String == "cc-nfs-data" }
        #expect(vol?["attachments"] as? [[String: String]] == [["instance": "cc-nfs-master", "device": "/dev/xvdf"]])
        // Launch templates, ALB/NLB with target groups on the autoscaling groups, driven policies.
        try DeploymentTests.expectServingSet(s)

        // The hosts the runbooks configured answer: ccr on repo-node:3030, the web site on web-node:80.
        #expect(try Self.accepts("198.51.100.12", 3030), "ccr does not accept on repo-node:3030")
        #expect(try Self.httpStatus("http://198.51.100.13/") == "200", "web-node:80 does not answer 200")

        // A second deploy changes nothing, and the dry-run after it has nothing pending.
        let ids = (s["instances"] as! [[String: Any]]).compactMap { $0["id"] as? String }.sorted()
        let second = try Self.deploy(w, inv)
        #expect(second.status == 0, "\(second.stdout.suffix(6000))\(second.stderr)")
        #expect(Self.changedLines(second.stdout).isEmpty, "second deploy changed:\n\(Self.changedLines(second.stdout).joined(separator: "\n"))")
        let after = try Self.deploy(w, inv, ["--dry-run"])
        #expect(after.status == 0, "dry-run after deploy: \(after.stdout.suffix(6000))\(after.stderr)")
        #expect(try Self.counts(w) == Self.oneOfEach)
        #expect((try w.snapshot()["instances"] as! [[String: Any]]).compactMap { $0["id"] as? String }.sorted() == ids)

        try Self.destroyLeavesNothing(w, inv)
        try w.assertStateSecretFree()
    }

    @Test("a deploy killed (SIGKILL) between phases resumes: finished phases are skipped, nothing is created twice",
          .timeLimit(.minutes(30)))
    func killedBetweenPhases() throws {
        let w = try AWSWorld()
        defer { w.close() }
        let inv = try Self.inventory(w)

        // Run it as a separate process and kill it as soon as it reports the nfs-master phase done.
        let log = w.directory.appendingPathComponent("killed-deploy.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let argv = try Self.argv(inv, [])
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        var env = w.environment()
        env.removeValue(forKey: "CCR_BINARY")
        p.environment = env
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        let deadline = Date().addingTimeInterval(20 * 60)
        var text = ""
        while p.isRunning, Date() < deadline {
            text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if text.contains("deploy: phase nfs-master done") { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        try #require(p.isRunning, "deploy ended before the kill point:\n\(text.suffix(6000))")
        try #require(text.contains("deploy: phase nfs-master done"), "no nfs-master phase in time:\n\(text.suffix(6000))")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        try handle.close()
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL)
        text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        try w.assertNoSecret(in: text, what: "the killed ccrun deploy")
        #expect(!text.contains("deploy: done"))

        // The deploy journal has the finished phases and no end.
        let dir = w.stateDirectory + "/deploy"
        let runs = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".jsonl") }
        #expect(runs.count == 1)
        let journal = try String(contentsOfFile: dir + "/" + runs[0], encoding: .utf8)
        #expect(!journal.contains("\"finished\""))
        #expect(try Self.counts(w)["images"] == 0, "the images phase should not have run before the kill")

        let resumed = try Self.deploy(w, inv, ["--resume"])
        #expect(resumed.status == 0, "\(resumed.stdout.suffix(6000))\(resumed.stderr)")
        #expect(resumed.stdout.contains("deploy: resuming run \(runs[0].dropLast(".jsonl".count))"), "\(resumed.stdout.prefix(2000))")
        for (n, phase) in [(1, "aws"), (2, "database"), (3, "nfs-master")] {
            #expect(resumed.stdout.contains("deploy: phase \(n)/6 \(phase) skipped"), "phase \(phase) was not skipped:\n\(resumed.stdout.prefix(3000))")
        }
        #expect(!resumed.stdout.contains("aws apply:"), "the aws phase ran again")
        for phase in ["repo-node", "web-node", "images"] {
            #expect(resumed.stdout.contains("deploy: \(phase.padding(toLength: 11, withPad: " ", startingAt: 0)) done"), "phase \(phase) not done")
        }
        #expect(try Self.counts(w) == Self.oneOfEach)
        #expect(String(data: try Data(contentsOf: URL(fileURLWithPath: dir + "/" + runs[0])), encoding: .utf8)?.contains("\"finished\"") == true)
        #expect(try Self.deploy(w, inv, ["--dry-run"]).status == 0)

        try Self.destroyLeavesNothing(w, inv)
        try w.assertStateSecretFree()
    }
}
