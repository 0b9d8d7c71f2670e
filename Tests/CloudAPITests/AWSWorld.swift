import Foundation
import StepKit
import SupportKit
import Testing

/// One test's private AWS account: a moto server, an inventory pointing at it, a state
/// directory for ccrun's journal, and the independent boto3 client that checks the result.
final class AWSWorld: @unchecked Sendable {
    // @unchecked: all stored properties are set in init and never mutated.
    let directory: URL
    let moto: MotoServer
    let inventoryPath: String
    let rdsPassword = "rds-Pa55-" + UUID().uuidString.prefix(8)

    init(credentialsFile: String? = nil, namespace: String? = nil) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-aws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        moto = try MotoServer(directory: directory, namespace: namespace)
        let pw = directory.appendingPathComponent("rds-master-password")
        _ = FileManager.default.createFile(atPath: pw.path, contents: Data((rdsPassword + "\n").utf8), attributes: [.posixPermissions: 0o600])
        // The sample inventory, pointed at this moto and these secret files.
        let sample = Fixtures.projectDirectory.appendingPathComponent("aws/inventory.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: sample)) as! [String: Any]
        var aws = json["aws"] as! [String: Any]
        aws["endpoint"] = moto.endpoint
        aws["credentialsFile"] = credentialsFile ?? moto.credentialsFile
        var rds = aws["rds"] as! [String: Any]
        rds["masterPasswordFile"] = pw.path
        aws["rds"] = rds
        aws["pollSeconds"] = 0.1
        json["aws"] = aws
        inventoryPath = directory.appendingPathComponent("inventory.json").path
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted]).write(to: URL(fileURLWithPath: inventoryPath))
    }

    func close() {
        moto.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    var stateDirectory: String { directory.appendingPathComponent("state").path }

    /// The ccrun built beside this test bundle (works in .build-aws and CI's .build).
    static func ccrunPath() throws -> String {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("ccrun").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let fallback = Fixtures.packageRoot.appendingPathComponent(".build/debug/ccrun").path
        guard FileManager.default.isExecutableFile(atPath: fallback) else {
            throw TestFailure("ccrun binary not found beside \(CommandLine.arguments[0]); run swift build first")
        }
        return fallback
    }

    /// A clean environment: no AWS_* from the developer's shell, HOME without ~/.aws.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("AWS_") && $0.key != CCRunProcess.stopAtVariable }
        env["HOME"] = directory.path
        env["CCRUN_STATE_DIR"] = stateDirectory
        env["NO_PROXY"] = "*"
        for (k, v) in extra { env[k] = v }
        return env
    }

    /// Runs `ccrun aws ARGS --inventory ...` and checks no secret leaked into its output.
    func ccrun(_ args: [String], env: [String: String] = [:]) throws -> Python.Result {
        let r = try Exec.run(moto.prefix + [try Self.ccrunPath(), "aws"] + args + ["--inventory", inventoryPath], environment: environment(env))
        try assertNoSecret(in: r.stdout + r.stderr, what: "ccrun aws \(args.joined(separator: " "))")
        return r
    }

    /// Starts `ccrun aws ARGS --inventory ...` stopping at `point` (`CCRUN_TEST_STOP_AT`, which
    /// only a test build reads), waits until it stopped there and SIGKILLs it: an operator's
    /// kill -9 at an exact place of the run.
    func killed(_ args: [String], at point: String) async throws -> CCRunProcess {
        let argv = moto.prefix + [try Self.ccrunPath(), "aws"] + args + ["--inventory", inventoryPath]
        let p = try CCRunProcess(Array(argv.dropFirst()), environment: [CCRunProcess.stopAtVariable: point], logDirectory: directory,
                                 base: environment(), executable: argv[0])
        do { try await p.waitUntilStopped() } catch { await p.kill(); throw error }
        await p.kill()
        try assertNoSecret(in: p.output, what: "ccrun aws \(args.joined(separator: " "))")
        return p
    }

    /// The resources of a `ccrun aws --json` document (`ccrun.run/2`): the steps of its one host, the account.
    static func steps(_ document: [String: Any]) -> [[String: Any]] {
        (document["hosts"] as? [[String: Any]])?.first?["steps"] as? [[String: Any]] ?? []
    }

    /// The records of the newest run's journal in the state directory, read as ccrun reads it.
    func lastJournal() throws -> [JournalRecord] {
        let newest = LocalJournal(directory: URL(fileURLWithPath: stateDirectory)).runs(host: "aws-us-east-1").first
        return try #require(newest, "no journal in \(stateDirectory)/aws-us-east-1").records
    }

    func assertNoSecret(in text: String, what: String) throws {
        for s in [try moto.secretKey(), rdsPassword] where text.contains(s) {
            throw TestFailure("a secret appeared in the output of \(what)")
        }
    }

    /// Every file ccrun wrote in its state directory (journal, outputs) is secret-free.
    func assertStateSecretFree() throws {
        let e = FileManager.default.enumerator(atPath: stateDirectory)
        while let f = e?.nextObject() as? String {
            let path = stateDirectory + "/" + f
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue {
                try assertNoSecret(in: (try? String(contentsOfFile: path, encoding: .utf8)) ?? "", what: path)
            }
        }
    }

    /// Runs a boto3 script with `ec2`, `rds`, `elb` (classic), `elb2`, `asg`, `cw` clients bound to this moto.
    func boto(_ body: String) throws -> Any {
        let script = Self.botoPrelude + "\n" + body
        let r = try Python.run(script, [moto.endpoint, moto.credentialsFile], environment: environment(), prefix: moto.prefix)
        guard r.status == 0 else { throw TestFailure("boto3 script failed: \(r.stderr)") }
        return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8), options: [.fragmentsAllowed])
    }

    static let botoPrelude = #"""
    import sys, json, configparser, boto3
    endpoint, credfile = sys.argv[1], sys.argv[2]
    c = configparser.ConfigParser(); c.read(credfile); d = c["default"]
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=d["aws_access_key_id"], aws_secret_access_key=d["aws_secret_access_key"])
    ec2, rds, elb, elb2, asg, cw = (boto3.client(n, **kw) for n in ("ec2", "rds", "elb", "elbv2", "autoscaling", "cloudwatch"))
    MANAGED = ["cc-tuners-lb", "cc-web-lb", "cc-slave", "cc-master", "cc-db", "cc-tuners", "cc-web"]
    def groups():
        gs = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": MANAGED}])["SecurityGroups"]
        names = {g["GroupId"]: g["GroupName"] for g in gs}
        out = {}
        for g in gs:
            rules = []
            for p in g["IpPermissions"]:
                ports = str(p.get("FromPort")) if p.get("FromPort") == p.get("ToPort") else "%s-%s" % (p.get("FromPort"), p.get("ToPort"))
                for r in p.get("IpRanges", []): rules.append("%s %s from %s" % (p["IpProtocol"], ports, r["CidrIp"]))
                for r in p.get("UserIdGroupPairs", []): rules.append("%s %s from group %s" % (p["IpProtocol"], ports, names.get(r["GroupId"], r["GroupId"])))
            out[g["GroupName"]] = sorted(rules)
        return out, {v: k for k, v in names.items()}
    def instances():
        res = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running", "stopped"]}])["Reservations"]
        out = []
        for r in res:
            for i in r["Instances"]:
                tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
                out.append({"id": i["InstanceId"], "name": tags.get("Name"), "ip": i.get("PrivateIpAddress"),
                            "groups": sorted(g["GroupName"] for g in i.get("SecurityGroups", []))})
        return out
    """#

    /// The whole account as the independent client sees it.
    func snapshot() throws -> [String: Any] {
        try boto(#"""
        gs, ids = groups()
        inst = instances()
        named = [i for i in inst if i["name"] in ("cc-nfs-master", "cc-repo-node", "cc-web-node")]
        prot = {}
        for i in named:
            prot[i["name"]] = ec2.describe_instance_attribute(InstanceId=i["id"], Attribute="disableApiTermination")["DisableApiTermination"]["Value"]
        vols = []
        for v in ec2.describe_volumes()["Volumes"]:
            tags = {t["Key"]: t["Value"] for t in v.get("Tags", [])}
            vols.append({"name": tags.get("Name"), "size": v["Size"], "attachments": [
                {"instance": next((i["name"] for i in inst if i["id"] == a["InstanceId"]), a["InstanceId"]), "device": a["Device"]} for a in v.get("Attachments", [])]})
        dbs = [{"id": d["DBInstanceIdentifier"], "status": d["DBInstanceStatus"], "class": d["DBInstanceClass"], "engine": d["Engine"],
                "storage": d["AllocatedStorage"], "user": d["MasterUsername"], "version": d.get("EngineVersion"),
                "groups": [next((n for n, gid in ids.items() if gid == g["VpcSecurityGroupId"]), g["VpcSecurityGroupId"]) for g in d.get("VpcSecurityGroups", [])],
                "endpoint": d.get("Endpoint", {}).get("Address")} for d in rds.describe_db_instances()["DBInstances"]]
        imgs = sorted(i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"])
        lbs = {}
        for l in elb.describe_load_balancers()["LoadBalancerDescriptions"]:
            lbs[l["LoadBalancerName"]] = {
                "listeners": sorted("%s:%d->%s:%d" % (x["Listener"]["Protocol"].upper(), x["Listener"]["LoadBalancerPort"], x["Listener"]["InstanceProtocol"].upper(), x["Listener"]["InstancePort"]) for x in l["ListenerDescriptions"]),
                "groups": sorted(next((n for n, gid in ids.items() if gid == g), g) for g in l.get("SecurityGroups", [])),
                "health": l.get("HealthCheck", {}).get("Target")}
        imgids = {i["ImageId"]: i["Name"] for i in ec2.describe_images(Owners=["self"])["Images"]}
        tgnames = {t["TargetGroupArn"]: t["TargetGroupName"] for t in elb2.describe_target_groups()["TargetGroups"]}
        tgs = {}
        for t in elb2.describe_target_groups()["TargetGroups"]:
            states = [h["TargetHealth"]["State"] for h in elb2.describe_target_health(TargetGroupArn=t["TargetGroupArn"])["TargetHealthDescriptions"]]
            tgs[t["TargetGroupName"]] = {"listener": "%s:%d" % (t["Protocol"], t["Port"]),
                "health": "%s:%s%s" % (t["HealthCheckProtocol"], t["Port"], t.get("HealthCheckPath", "") if t["HealthCheckProtocol"] != "TCP" else ""),
                "healthy": states.count("healthy")}
        lbs2 = {}
        for l in elb2.describe_load_balancers()["LoadBalancers"]:
            ls = elb2.describe_listeners(LoadBalancerArn=l["LoadBalancerArn"])["Listeners"]
            lbs2[l["LoadBalancerName"]] = {"type": l["Type"], "dns": l.get("DNSName"),
                "groups": sorted(next((n for n, gid in ids.items() if gid == g), g) for g in l.get("SecurityGroups", [])),
                "listeners": sorted("%s:%d->%s" % (x["Protocol"], x["Port"], ",".join(tgnames.get(a.get("TargetGroupArn"), "?") for a in x["DefaultActions"])) for x in ls)}
        lts = {}
        for t in ec2.describe_launch_templates()["LaunchTemplates"]:
            vs = ec2.describe_launch_template_versions(LaunchTemplateName=t["LaunchTemplateName"])["LaunchTemplateVersions"]
            lts[t["LaunchTemplateName"]] = {str(v["VersionNumber"]): {"image": imgids.get(v["LaunchTemplateData"].get("ImageId"), v["LaunchTemplateData"].get("ImageId")),
                "groups": sorted(next((n for n, gid in ids.items() if gid == g), g) for g in v["LaunchTemplateData"].get("SecurityGroupIds", []))} for v in vs}
        alarmActions = set(a for al in cw.describe_alarms()["MetricAlarms"] for a in al.get("AlarmActions", []))
        lcs = {c["LaunchConfigurationName"]: {"image": imgids.get(c["ImageId"], c["ImageId"]), "type": c["InstanceType"],
               "groups": sorted(next((n for n, gid in ids.items() if gid == g), g) for g in c.get("SecurityGroups", []))}
               for c in asg.describe_launch_configurations()["LaunchConfigurations"]}
        asgs = {}
        for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]:
            pols = asg.describe_policies(AutoScalingGroupName=g["AutoScalingGroupName"])["ScalingPolicies"]
            lt = g.get("LaunchTemplate") or {}
            asgs[g["AutoScalingGroupName"]] = {"lc": g.get("LaunchConfigurationName"), "min": g["MinSize"], "max": g["MaxSize"], "desired": g["DesiredCapacity"],
                "lt": lt.get("LaunchTemplateName"), "ltVersion": lt.get("Version"),
                # What the group launches from, as AWS reports it (one source): moto keeps a stale
                # launch configuration name beside a template and the reverse, so a name counts
                # only while its object exists.
                "launch": ("lt:%s" % lt["LaunchTemplateName"]) if lt.get("LaunchTemplateName") in lts
                          else ("lc:%s" % g["LaunchConfigurationName"]) if g.get("LaunchConfigurationName") in lcs else None,
                "lbs": sorted(g.get("LoadBalancerNames", [])), "tgs": sorted(tgnames.get(a, a) for a in g.get("TargetGroupARNs", [])),
                "policies": sorted("%s %s %s %s" % (p["PolicyName"], p.get("AdjustmentType"), p.get("ScalingAdjustment"), p.get("Cooldown")) for p in pols if p.get("PolicyType", "SimpleScaling") != "TargetTrackingScaling"),
                "tracking": sorted("%s %s %s" % (p["PolicyName"], p["TargetTrackingConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"], p["TargetTrackingConfiguration"]["TargetValue"]) for p in pols if p.get("PolicyType") == "TargetTrackingScaling"),
                "undriven": sorted(p["PolicyName"] for p in pols if p.get("PolicyType") != "TargetTrackingScaling" and p["PolicyARN"] not in alarmActions)}
        print(json.dumps({"groups": gs, "instances": named, "protection": prot, "volumes": vols, "databases": dbs, "images": imgs,
                          "classicLoadBalancers": lbs, "loadBalancers": lbs2, "targetGroups": tgs, "launchTemplates": lts,
                          "launchConfigurations": lcs, "autoScalingGroups": asgs}))
        """#) as! [String: Any]
    }
}
