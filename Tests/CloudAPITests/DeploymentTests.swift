import CloudAPI
import Foundation
import SupportKit
import Testing

/// The guide's tables, written out as a reader checks them (group source by name).
let expectedRules: [String: [String]] = [
    "cc-tuners-lb": ["tcp 3030 from 198.51.100.50/32", "tcp 3030 from 198.51.100.51/32"],
    "cc-web-lb": ["tcp 80 from 0.0.0.0/0"],
    "cc-slave": ["tcp 0-65535 from group cc-tuners-lb", "tcp 0-65535 from group cc-web-lb", "tcp 111 from group cc-master",
                 "tcp 2049 from group cc-master", "tcp 22 from 198.51.100.1/32", "udp 111 from group cc-master", "udp 32806 from group cc-master"],
    "cc-master": ["tcp 111 from group cc-slave", "tcp 2049 from group cc-slave", "tcp 22 from 198.51.100.1/32",
                  "udp 111 from group cc-slave", "udp 32806 from group cc-slave"],
    "cc-db": ["tcp 3306 from 198.51.100.1/32", "tcp 3306 from group cc-slave"],
    "cc-tuners": ["tcp 3030 from group cc-tuners-lb"],
    "cc-web": ["tcp 80 from group cc-web-lb"],
]

/// Against moto in server mode with signature checking on; everything verified with boto3.
@Suite("ccrun aws against moto", .serialized)
struct DeploymentTests {
    @Test("apply + images build the whole set; a second run changes nothing; destroy leaves nothing")
    func wholeLifecycle() throws {
        let w = try AWSWorld()
        defer { w.close() }

        let plan0 = try w.ccrun(["plan"])
        #expect(plan0.status == 2, "a fresh account has changes pending: \(plan0.stdout)\(plan0.stderr)")
        let apply = try w.ccrun(["apply"])
        #expect(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
        let images = try w.ccrun(["images"])
        #expect(images.status == 0, "\(images.stdout)\(images.stderr)")

        let s = try w.snapshot()
        let groups = s["groups"] as! [String: [String]]
        #expect(groups == expectedRules)
        let inst = (s["instances"] as! [[String: Any]]).reduce(into: [String: [String: Any]]()) { $0[$1["name"] as! String] = $1 }
        #expect(inst.count == 3)
        #expect(inst["cc-nfs-master"]?["ip"] as? String == "198.51.100.11")
        #expect(inst["cc-repo-node"]?["ip"] as? String == "198.51.100.12")
        #expect(inst["cc-web-node"]?["ip"] as? String == "198.51.100.13")
        #expect(inst["cc-nfs-master"]?["groups"] as? [String] == ["cc-master"])
        #expect(inst["cc-repo-node"]?["groups"] as? [String] == ["cc-slave", "cc-tuners"])
        #expect(inst["cc-web-node"]?["groups"] as? [String] == ["cc-slave", "cc-web"])
        let prot = s["protection"] as! [String: Bool]
        #expect(prot == ["cc-nfs-master": true, "cc-repo-node": false, "cc-web-node": false])
        let vols = (s["volumes"] as! [[String: Any]]).filter { $0["name"] as? String == "cc-nfs-data" }
        #expect(vols.count == 1)
        let att = vols.first?["attachments"] as? [[String: String]]
        #expect(att == [["instance": "cc-nfs-master", "device": "/dev/xvdf"]])
        let dbs = s["databases"] as! [[String: Any]]
        #expect(dbs.count == 1)
        #expect(dbs.first?["id"] as? String == "cc-db")
        #expect(dbs.first?["status"] as? String == "available")
        #expect(dbs.first?["engine"] as? String == "mysql")
        #expect(dbs.first?["groups"] as? [String] == ["cc-db"])
        #expect(s["images"] as? [String] == ["cc-nfs-master-image", "cc-repo-node-image", "cc-web-node-image"])
        let lbs = s["loadBalancers"] as! [String: [String: Any]]
        #expect(lbs["cc-web"]?["listeners"] as? [String] == ["HTTP:80->HTTP:80"])
        #expect(lbs["cc-web"]?["groups"] as? [String] == ["cc-web-lb"])
        #expect(lbs["cc-web"]?["health"] as? String == "HTTP:80/")
        #expect(lbs["cc-tuners"]?["listeners"] as? [String] == ["TCP:3030->TCP:3030"])
        #expect(lbs["cc-tuners"]?["groups"] as? [String] == ["cc-tuners-lb"])
        #expect(lbs["cc-tuners"]?["health"] as? String == "TCP:3030")
        let lcs = s["launchConfigurations"] as! [String: [String: Any]]
        #expect(lcs.count == 2)
        let webLC = lcs.first { $0.key.hasPrefix("cc-web-lc-") }?.value
        let tunersLC = lcs.first { $0.key.hasPrefix("cc-tuners-lc-") }?.value
        #expect(webLC?["image"] as? String == "cc-web-node-image")
        #expect(webLC?["groups"] as? [String] == ["cc-slave", "cc-web"])
        #expect(tunersLC?["image"] as? String == "cc-repo-node-image")
        #expect(tunersLC?["groups"] as? [String] == ["cc-slave", "cc-tuners"])
        let asgs = s["autoScalingGroups"] as! [String: [String: Any]]
        #expect(asgs["cc-web-asg"]?["lbs"] as? [String] == ["cc-web"])
        #expect((asgs["cc-web-asg"]?["min"] as? Int, asgs["cc-web-asg"]?["max"] as? Int, asgs["cc-web-asg"]?["desired"] as? Int) == (1, 3, 1))
        #expect(asgs["cc-web-asg"]?["policies"] as? [String] == ["cc-web-scale-out ChangeInCapacity 1 300"])
        #expect((asgs["cc-web-asg"]?["lc"] as? String)?.hasPrefix("cc-web-lc-") == true)
        #expect(asgs["cc-tuners-asg"]?["lbs"] as? [String] == ["cc-tuners"])
        #expect((asgs["cc-tuners-asg"]?["min"] as? Int, asgs["cc-tuners-asg"]?["max"] as? Int, asgs["cc-tuners-asg"]?["desired"] as? Int) == (1, 4, 2))
        #expect(asgs["cc-tuners-asg"]?["policies"] as? [String] == ["cc-tuners-scale-out ChangeInCapacity 1 600"])

        // RDS endpoint recorded for `ccrun database`.
        let outputs = try DeploymentOutputs.load(w.stateDirectory + "/aws-outputs.json")
        #expect(outputs.databaseEndpoint == "\(dbs.first?["endpoint"] as? String ?? "?"):3306")

        // Second runs: nothing to do, and nothing duplicated.
        let again = try w.ccrun(["apply", "--json"])
        #expect(again.status == 0)
        #expect(!again.stdout.contains("\"changed\""), "second apply changed something: \(again.stdout)")
        let againImages = try w.ccrun(["images", "--json"])
        #expect(againImages.status == 0)
        #expect(!againImages.stdout.contains("\"changed\""), "second images changed something: \(againImages.stdout)")
        let plan = try w.ccrun(["plan"])
        #expect(plan.status == 0, "plan after apply: \(plan.stdout)")
        let s2 = try w.snapshot()
        #expect((s2["instances"] as! [Any]).count == 3)
        #expect((s2["images"] as! [String]).count == 3)
        #expect((s2["launchConfigurations"] as! [String: Any]).count == 2)

        let destroy = try w.ccrun(["destroy"])
        #expect(destroy.status == 0, "\(destroy.stdout)\(destroy.stderr)")
        let s3 = try w.snapshot()
        #expect((s3["groups"] as! [String: Any]).isEmpty)
        #expect((s3["instances"] as! [Any]).isEmpty)
        #expect((s3["volumes"] as! [[String: Any]]).filter { $0["name"] as? String == "cc-nfs-data" }.isEmpty)
        #expect((s3["databases"] as! [Any]).isEmpty)
        #expect((s3["images"] as! [Any]).isEmpty)
        #expect((s3["loadBalancers"] as! [String: Any]).isEmpty)
        #expect((s3["launchConfigurations"] as! [String: Any]).isEmpty)
        #expect((s3["autoScalingGroups"] as! [String: Any]).isEmpty)
        try w.assertStateSecretFree()
    }

    @Test("rollback undoes only what the last run did: what it created is deleted, a group it found gets its own rules back")
    func rollbackUndoesTheLastRun() throws {
        let w = try AWSWorld()
        defer { w.close() }
        // Before ccrun ever ran, an admin made cc-db by hand, with a rule of their own.
        _ = try w.boto(#"""
        g = ec2.create_security_group(GroupName="cc-db", Description="made by hand")
        ec2.authorize_security_group_ingress(GroupId=g["GroupId"], IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "198.51.100.200/32"}]}])
        print("0")
        """#)
        let apply = try w.ccrun(["apply"])
        #expect(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
        #expect((try w.snapshot()["groups"] as! [String: [String]]) == expectedRules, "apply makes cc-db the guide's table")

        let rollback = try w.ccrun(["rollback"])
        #expect(rollback.status == 0, "\(rollback.stdout)\(rollback.stderr)")
        let s = try w.snapshot()
        #expect((s["groups"] as! [String: [String]]) == ["cc-db": ["tcp 5432 from 198.51.100.200/32"]],
                "the hand-made group stays, with its own rule back and the guide's rules gone")
        #expect((s["instances"] as! [Any]).isEmpty)
        #expect((s["volumes"] as! [[String: Any]]).filter { $0["name"] as? String == "cc-nfs-data" }.isEmpty)
        #expect((s["databases"] as! [Any]).isEmpty)
        #expect(rollback.stdout.contains("security-group cc-db") == false, "the group the run did not create is not touched: \(rollback.stdout)")

        // Nothing left to roll back; the account needs the whole apply again.
        let again = try w.ccrun(["rollback", "--json"])
        #expect(again.status == 0 && !again.stdout.contains("\"changed\""), "\(again.stdout)")
        #expect(try w.ccrun(["plan", "--phase", "base"]).status == 2)
        try w.assertStateSecretFree()
    }

    @Test("a rule removed by hand: plan reports exactly it (exit 2), apply restores it")
    func driftedRule() throws {
        let w = try AWSWorld()
        defer { w.close() }
        #expect(try w.ccrun(["apply"]).status == 0)
        _ = try w.boto(#"""
        gs, ids = groups()
        ec2.revoke_security_group_ingress(GroupId=ids["cc-slave"], IpPermissions=[{"IpProtocol": "udp", "FromPort": 32806, "ToPort": 32806, "UserIdGroupPairs": [{"GroupId": ids["cc-master"]}]}])
        print("0")
        """#)
        let plan = try w.ccrun(["plan", "--phase", "base", "--json"])
        #expect(plan.status == 2)
        let report = try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as! [String: Any]
        let pending = (report["steps"] as! [[String: Any]]).filter { $0["state"] as? String != "ok" }
        #expect(pending.count == 1)
        #expect(pending.first?["id"] as? String == "rules cc-slave")
        #expect(pending.first?["changes"] as? [String] == ["+ cc-slave: udp 32806 from group cc-master"])

        #expect(try w.ccrun(["apply"]).status == 0)
        #expect((try w.snapshot()["groups"] as! [String: [String]]) == expectedRules)
        #expect(try w.ccrun(["plan", "--phase", "base"]).status == 0)
    }

    @Test("a run killed (SIGKILL) right after RunInstances resumes without duplicates")
    func killedRunResumes() throws {
        let w = try AWSWorld()
        defer { w.close() }
        let killed = try w.ccrun(["apply"], env: ["CCRUN_AWS_CRASH_AFTER": "instance cc-repo-node"])
        #expect(killed.status == 128 + 9, "expected SIGKILL, got \(killed.status): \(killed.stdout)\(killed.stderr)")
        // The journal shows the intent without its done record.
        let files = try FileManager.default.contentsOfDirectory(atPath: w.stateDirectory + "/aws-us-east-1")
        #expect(files.count == 1)
        let journal = try String(contentsOfFile: w.stateDirectory + "/aws-us-east-1/" + files[0], encoding: .utf8)
        #expect(journal.contains("\"intent\"") && journal.contains("instance cc-repo-node"))
        #expect(!journal.contains("\"finished\""))

        let resumed = try w.ccrun(["apply", "--json"])
        #expect(resumed.status == 0, "\(resumed.stdout)\(resumed.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(resumed.stdout.utf8)) as! [String: Any]
        #expect(report["resumed"] as? Bool == true)
        #expect(report["runId"] as? String == String(files[0].dropLast(".jsonl".count)))
        let names = (try w.snapshot()["instances"] as! [[String: Any]]).compactMap { $0["name"] as? String }.sorted()
        #expect(names == ["cc-nfs-master", "cc-repo-node", "cc-web-node"])
        #expect(try w.ccrun(["plan", "--phase", "base"]).status == 0)
    }

    @Test("wrong credentials fail with a clear message and create nothing")
    func wrongCredentials() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-aws-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("creds").path
        let w = try AWSWorld(credentialsFile: bad)
        defer { w.close() }
        let real = try String(contentsOfFile: w.moto.credentialsFile, encoding: .utf8)
        let wrongSecret = "wrongSecretKey" + UUID().uuidString
        let text = real.split(separator: "\n").map { $0.hasPrefix("aws_secret_access_key") ? "aws_secret_access_key = \(wrongSecret)" : String($0) }.joined(separator: "\n")
        _ = FileManager.default.createFile(atPath: bad, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])

        let r = try w.ccrun(["apply"])
        #expect(r.status == 1)
        let out = r.stdout + r.stderr
        #expect(out.contains("AuthFailure") || out.contains("SignatureDoesNotMatch") || out.contains("InvalidClientTokenId"), "\(out)")
        #expect(out.contains("rejected"), "\(out)")
        #expect(!out.contains(wrongSecret))
        #expect((try w.snapshot()["groups"] as! [String: Any]).isEmpty)
        // Env credentials win over the file, the standard way.
        let fromEnv = try w.ccrun(["plan", "--phase", "base"], env: ["AWS_ACCESS_KEY_ID": "AKIDNOTREAL", "AWS_SECRET_ACCESS_KEY": wrongSecret])
        #expect(fromEnv.status == 1)
        #expect(!(fromEnv.stdout + fromEnv.stderr).contains(wrongSecret))
    }
}
