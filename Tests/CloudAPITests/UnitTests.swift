@testable import CloudAPI
import Foundation
import StepKit
import Testing

@Suite("CloudAPI units")
struct CloudAPIUnitTests {
    @Test("profiles: env first, then the credentials file, then [profile X] in config")
    func credentialResolution() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-cred-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent(".aws"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n[ops]\naws_access_key_id=AKIDOPS\naws_secret_access_key=s2\n"
            .write(to: dir.appendingPathComponent(".aws/credentials"), atomically: true, encoding: .utf8)
        try "[profile cfg]\naws_access_key_id = AKIDCFG\naws_secret_access_key = s3\nregion = eu-west-1\n"
            .write(to: dir.appendingPathComponent(".aws/config"), atomically: true, encoding: .utf8)
        let base = AWSEnvironment(environment: [:], home: dir.path)
        #expect(try base.credentials(inventoryFile: nil, inventoryProfile: nil).accessKeyId == "AKIDDEFAULT")
        #expect(try AWSEnvironment(environment: ["AWS_PROFILE": "ops"], home: dir.path).credentials(inventoryFile: nil, inventoryProfile: nil).accessKeyId == "AKIDOPS")
        #expect(try base.credentials(inventoryFile: nil, inventoryProfile: "cfg").accessKeyId == "AKIDCFG")
        #expect(try base.region(inventoryRegion: nil, inventoryProfile: "cfg", inventoryFile: nil) == "eu-west-1")
        let env = AWSEnvironment(environment: ["AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "topsecret", "AWS_REGION": "ap-south-1"], home: dir.path)
        let c = try env.credentials(inventoryFile: nil, inventoryProfile: nil)
        #expect(c.accessKeyId == "AKIDENV")
        #expect(!"\(c.secretAccessKey)".contains("topsecret"))
        #expect(try env.region(inventoryRegion: "us-east-1", inventoryProfile: nil, inventoryFile: nil) == "ap-south-1")
        #expect(throws: CloudError.self) { try base.credentials(inventoryFile: nil, inventoryProfile: "missing") }
    }

    @Test("endpoint: service variable, then AWS_ENDPOINT_URL, then inventory, then AWS")
    func endpoints() {
        let e = AWSEnvironment(environment: ["AWS_ENDPOINT_URL_EC2": "http://127.0.0.1:1/", "AWS_ENDPOINT_URL": "http://127.0.0.1:2"], home: "/nonexistent")
        #expect(e.endpoint(for: .ec2, region: "us-east-1", inventoryEndpoint: "http://127.0.0.1:3") == "http://127.0.0.1:1")
        #expect(e.endpoint(for: .rds, region: "us-east-1", inventoryEndpoint: "http://127.0.0.1:3") == "http://127.0.0.1:2")
        let none = AWSEnvironment(environment: [:], home: "/nonexistent")
        #expect(none.endpoint(for: .elb, region: "us-west-2", inventoryEndpoint: nil) == "https://elasticloadbalancing.us-west-2.amazonaws.com")
    }

    @Test("form encoding matches the SDKs (space as +, reserved characters escaped)")
    func formEncoding() {
        #expect(FormEncoding.form([("GroupDescription", "CC NFS (server)/a&b=c~")]) == "GroupDescription=CC+NFS+%28server%29%2Fa%26b%3Dc~")
    }

    @Test("XML answers and errors parse into values")
    func xml() throws {
        let doc = "<Response><Errors><Error><Code>InvalidGroup.Duplicate</Code><Message>exists</Message></Error></Errors></Response>"
        let n = try XMLNode.parse(Data(doc.utf8))
        #expect(n.first("Code")?.text == "InvalidGroup.Duplicate")
        let list = try XMLNode.parse(Data("<a><groupSet><item><groupId>sg-1</groupId></item><item><groupId>sg-2</groupId></item></groupSet></a>".utf8))
        #expect(list.list("groupSet").compactMap { $0.string("groupId") } == ["sg-1", "sg-2"])
    }

    @Test("the blueprint is the guide's tables; cc-tuners/cc-web admit only their LB's port")
    func blueprint() {
        let groups = Blueprint.securityGroups(adminCidr: "198.51.100.1/32", tunerServers: ["198.51.100.50", "198.51.100.51/32"])
        let table = Dictionary(uniqueKeysWithValues: groups.map { ($0.name, $0.rules.map(\.description).sorted()) })
        #expect(table == expectedRules)
    }

    /// The smallest valid inventory, with `edit` applied to its aws object.
    static func blueprint(_ edit: (inout AWSSettings) -> Void) throws -> Blueprint {
        var a = AWSSettings()
        a.adminCidr = "198.51.100.1/32"; a.amiId = "ami-1"; a.tunerServerIPs = ["198.51.100.50"]
        edit(&a)
        return try Blueprint.make(CloudInventory(path: "inv.json", hosts: [:], aws: a), environment: ["CCRUN_RDS_MASTER_PASSWORD": "pw"])
    }

    static func inventoryError(_ edit: (inout AWSSettings) -> Void) -> String? {
        do { _ = try blueprint(edit); return nil } catch { return "\(error)" }
    }

    @Test("defaults: MySQL 8.4, target tracking per role (web: ALB requests per target, tuners: CPU), cc-db admits cc-master")
    func blueprintDefaults() throws {
        let b = try Self.blueprint { _ in }
        #expect(b.database.engineVersion == "8.4")
        #expect(b.autoScaling.map(\.scaling.metric) == [.albRequests, .cpu])
        #expect(b.autoScaling.map(\.scaling.target) == [1000, 60])
        #expect(b.autoScaling.map(\.targetGroup) == ["cc-web-tg", "cc-tuners-tg"])
        #expect(b.loadBalancers.map(\.type) == [.application, .network])
        #expect(b.securityGroups.first { $0.name == "cc-db" }?.rules.contains(IngressRule("tcp", 3306, nil, .group("cc-master"))) == true)
        let custom = try Self.blueprint { $0.rds = AWSSettings.RDSSettings(); $0.rds?.engineVersion = "8.0.39"
            $0.autoscaling = AWSSettings.AutoScalingSettings(tuners: AWSSettings.GroupSizes(min: 1, max: 5, desired: 2,
                scaling: AWSSettings.ScalingSettings(metric: "ASGAverageNetworkIn", target: 5_000_000))) }
        #expect(custom.database.engineVersion == "8.0.39")
        #expect(custom.autoScaling[1].scaling.metric == .networkIn && custom.autoScaling[1].scaling.target == 5_000_000)
    }

    @Test("bad inventories are refused with the key and what to write instead")
    func inventoryErrors() {
        for bad in ["5.7", "8", "8.1", "8.4.x", "9.0"] {
            #expect(Self.inventoryError { $0.rds = AWSSettings.RDSSettings(); $0.rds?.engineVersion = bad }?
                .contains("aws.rds.engineVersion \"\(bad)\" is not a MySQL version ccrun deploys: use 8.0 or 8.4") == true, "\(bad)")
        }
        #expect(Self.inventoryError { $0.rds = AWSSettings.RDSSettings(); $0.rds?.engine = "postgres" }?.contains("aws.rds.engine \"postgres\"") == true)
        let legacy = Self.inventoryError {
            $0.autoscaling = AWSSettings.AutoScalingSettings(web: AWSSettings.GroupSizes(min: 1, max: 2, desired: 1,
                policy: AWSSettings.LegacyPolicySettings(name: "cc-web-scale-out", adjustmentType: "ChangeInCapacity", scalingAdjustment: 1, cooldown: 300)))
        }
        #expect(legacy?.contains("aws.autoscaling.web.policy is a simple scaling policy with no alarm") == true, "\(legacy ?? "accepted")")
        #expect(legacy?.contains("aws.autoscaling.web.scaling {\"metric\": \"ALBRequestCountPerTarget\", \"target\": 1000}") == true)
        let nlbMetric = Self.inventoryError {
            $0.autoscaling = AWSSettings.AutoScalingSettings(tuners: AWSSettings.GroupSizes(min: 1, max: 2, desired: 1,
                scaling: AWSSettings.ScalingSettings(metric: "ALBRequestCountPerTarget")))
        }
        #expect(nlbMetric?.contains("tuners is behind a network load balancer") == true, "\(nlbMetric ?? "accepted")")
        #expect(Self.inventoryError {
            $0.autoscaling = AWSSettings.AutoScalingSettings(web: AWSSettings.GroupSizes(min: 1, max: 2, desired: 1, scaling: AWSSettings.ScalingSettings(metric: "CPU")))
        }?.contains("aws.autoscaling.web.scaling.metric \"CPU\" is not one of ASGAverageCPUUtilization") == true)
        #expect(Self.inventoryError { $0.subnetIds = ["sn-1"] }?.contains("aws.subnetIds must list subnet ids") == true)
    }

    @Test("plan lines name the API call: + adds, - removes, ~ changes or waits")
    func plannedCallText() {
        let noop: @Sendable (CloudContext) async throws -> String = { _ in "" }
        #expect(PlannedCall(.elbv2, "CreateLoadBalancer", "cc-web-alb (application)", perform: noop).text == "+ ELBv2 CreateLoadBalancer cc-web-alb (application)")
        #expect(PlannedCall(.autoscaling, "DetachLoadBalancers", "cc-web-asg cc-web", perform: noop).text == "- AutoScaling DetachLoadBalancers cc-web-asg cc-web")
        #expect(PlannedCall(.rds, "ModifyDBInstance", "cc-db", perform: noop).text == "~ RDS ModifyDBInstance cc-db")
    }

    @Test("RDS version: a minor of the pin satisfies it, older ones are upgraded (major needs AllowMajorVersionUpgrade), newer ones are refused")
    func engineVersionChange() throws {
        let pin84 = DatabaseResource(spec: try Self.blueprint { _ in }.database)
        #expect(try pin84.versionChange(running: "8.4") == nil)
        #expect(try pin84.versionChange(running: "8.4.3") == nil)
        #expect(try pin84.versionChange(running: "8.0.39").map { "\($0.to) \($0.major)" } == "8.4 true")
        #expect(throws: CloudError.self) { try pin84.versionChange(running: "9.1.0") }
        let pinMinor = DatabaseResource(spec: try Self.blueprint { $0.rds = AWSSettings.RDSSettings(); $0.rds?.engineVersion = "8.4.5" }.database)
        #expect(try pinMinor.versionChange(running: "8.4.3").map { "\($0.to) \($0.major)" } == "8.4.5 false")
        do {
            _ = try pinMinor.versionChange(running: "8.4.6")
            Issue.record("a downgrade was planned")
        } catch {
            #expect("\(error)".contains("RDS cannot downgrade; pin 8.4 instead"), "\(error)")
        }
    }
}

/// Issue #20, point 5: `ccrun aws` reports are StepKit's `RunReport` (the account its one host);
/// the text people read is the one they knew, line for line.
@Suite("ccrun aws report")
struct AWSReportTests {
    @Test("the text of an apply: resumed line, a line per resource with its changes, the summary, the RDS endpoint, the error")
    func awsTextAsBefore() throws {
        var run = AccountRun(command: "apply", runId: "R1", mode: .apply, resumed: true)
        run.add("security-group cc-web", .base, .ok, seconds: 0.1)
        run.add("rules cc-web", .base, .changed, changes: ["authorized cc-web: tcp 80 from group cc-web-lb"], seconds: 0.2)
        run.add("rds cc-db", .base, .failed, message: "boom", seconds: 0.3, failure: Failure(.commandFailed, "boom"))
        run.notes = ["RDS endpoint db.example:3306"]
        run.failure = Failure(.commandFailed, "stopped at the failed resource; fix the cause and run again (the run resumes)")
        let report = run.report(account: "aws-us-east-1", requests: 41, seconds: 1.5)
        #expect(report.awsText() == """
            aws: resuming run R1 (it stopped before finishing)
            aws: ok           security-group cc-web
            aws: changed      rules cc-web
                authorized cc-web: tcp 80 from group cc-web-lb
            aws: failed       rds cc-db
                boom
            aws apply: 1 ok, 1 changed, 1 failed in 1.50 s (41 API requests, run R1)
            aws: RDS endpoint db.example:3306
            aws: error (commandFailed): stopped at the failed resource; fix the cause and run again (the run resumes)
            """)
        #expect(report.exitCode == 1 && report.schema == "ccrun.run/2" && report.runbook == "aws-apply")
        #expect(report.hosts.map(\.host) == ["aws-us-east-1"] && report.hosts[0].roundTrips == 41)
        #expect(report.hosts[0].steps.map(\.phase) == ["base", "base", "base"])
    }

    @Test("plan is a dry-run: exit 2 while a resource would change or waits, 0 when all are ok")
    func planExitCodes() {
        for (states, code) in [([StepState.ok, .wouldChange], Int32(2)), ([.depends], 2), ([.ok, .ok], 0), ([.ok, .failed], 1)] {
            var run = AccountRun(command: "plan", mode: .dryRun)
            for (i, s) in states.enumerated() { run.add("r\(i)", .images, s, seconds: 0, failure: s == .failed ? Failure(.internal, "x") : nil) }
            #expect(run.report(account: "aws-eu-west-1", requests: 0, seconds: 0).exitCode == code, "\(states)")
        }
    }
}
