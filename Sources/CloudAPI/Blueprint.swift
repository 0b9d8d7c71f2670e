import LeanFoundation
import StepKit

/// One inbound rule of a security group, as the guide's tables state it.
public struct IngressRule: Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum Source: Sendable, Hashable {
        case cidr(String)
        /// Another managed group, by name (its id is only known once it exists).
        case group(String)
    }
    public var proto: String
    public var from: Int
    public var to: Int
    public var source: Source

    public init(_ proto: String, _ from: Int, _ to: Int? = nil, _ source: Source) {
        self.proto = proto; self.from = from; self.to = to ?? from; self.source = source
    }

    public var description: String {
        let ports = from == to ? "\(from)" : "\(from)-\(to)"
        let src: String
        switch source { case let .cidr(c): src = c; case let .group(g): src = "group \(g)" }
        return "\(proto) \(ports) from \(src)"
    }
    public static func < (a: Self, b: Self) -> Bool { a.description < b.description }
}

public struct SecurityGroupSpec: Sendable, Hashable {
    public var name: String
    public var description: String
    public var rules: [IngressRule]
}

public struct InstanceSpec: Sendable, Hashable {
    /// The role in the guide ("nfs-master", "repo-node", "web-node").
    public var role: String
    /// The Name tag that identifies it ("cc-nfs-master").
    public var name: String
    public var imageId: String
    public var instanceType: String
    public var privateIp: String?
    public var groups: [String]
}

public struct VolumeSpec: Sendable, Hashable {
    public var name: String
    public var sizeGiB: Int
    public var volumeType: String
    public var device: String
    public var instanceName: String
}

public struct DatabaseSpec: Sendable, Hashable {
    public var identifier: String
    public var instanceClass: String
    public var allocatedStorage: Int
    public var engine: String
    /// Pinned (8.0 or 8.4, or a minor of them): RDS would otherwise pick its current default.
    public var engineVersion: String
    public var masterUser: String
    public var masterPassword: Secret
    public var dbName: String
    public var securityGroup: String
    public var waitSeconds: Int
}

public struct ImageSpec: Sendable, Hashable {
    public var name: String
    public var instanceName: String
}

/// A target group: where a load balancer sends traffic, filled by its autoscaling group.
public struct TargetGroupSpec: Sendable, Hashable {
    public var name: String
    /// HTTP for the web, TCP for the tuners.
    public var proto: String
    public var port: Int
    public var healthProtocol: String
    /// The HTTP health check path; nil for a TCP check.
    public var healthPath: String?
    public var healthText: String { "\(healthProtocol):\(port)\(healthPath ?? "")" }
}

public enum LoadBalancerType: String, Sendable, Hashable, Codable {
    case application, network
}

/// An application or network load balancer with one listener forwarding to its target group.
public struct LoadBalancerSpec: Sendable, Hashable {
    public var name: String
    public var type: LoadBalancerType
    public var proto: String
    public var port: Int
    public var securityGroup: String
    public var targetGroup: String
    public var listenerText: String { "\(proto):\(port) -> \(targetGroup)" }
}

/// A launch template: one version per image (versions are immutable), the group launching
/// from the version of the current image.
public struct LaunchTemplateSpec: Sendable, Hashable {
    public var name: String
    public var imageName: String
    public var instanceType: String
    public var groups: [String]
}

/// The predefined metrics target tracking offers for an autoscaling group.
public enum ScalingMetric: String, Sendable, Hashable, Codable, CaseIterable {
    case cpu = "ASGAverageCPUUtilization"
    case networkIn = "ASGAverageNetworkIn"
    case networkOut = "ASGAverageNetworkOut"
    /// Needs the application load balancer and target group in its resource label.
    case albRequests = "ALBRequestCountPerTarget"
}

/// A target-tracking policy: AWS keeps the metric near `target` with alarms it creates itself,
/// so the policy is always driven (the guide's simple policies had no alarm and never fired).
public struct ScalingSpec: Sendable, Hashable {
    public var name: String
    public var metric: ScalingMetric
    public var target: Double
    public var warmup: Int
}

public struct AutoScalingSpec: Sendable, Hashable {
    public var name: String
    public var launchTemplate: LaunchTemplateSpec
    public var targetGroup: String
    /// The load balancer in front of the target group (the ALB request metric names both).
    public var loadBalancer: String
    public var min: Int, max: Int, desired: Int
    public var gracePeriod: Int
    public var scaling: ScalingSpec
    /// What ccrun before launch templates made for this group: a classic load balancer and
    /// launch configurations `<prefix>-<image id>`. Removed once the target group serves.
    public var legacyLoadBalancer: String
    public var legacyLaunchConfigurationPrefix: String
}

/// The RDS MySQL versions ccrun deploys: the two majors RDS offers with standard support.
public enum MySQLVersion {
    public static let majors = ["8.0", "8.4"]
    /// 8.0 left RDS standard support in 2026; new deployments get 8.4.
    public static let defaultVersion = "8.4"

    /// "8.4" or "8.4.3"; anything else is an inventory error naming the key.
    public static func validate(_ v: String) throws -> String {
        let parts = v.split(separator: ".", omittingEmptySubsequences: false)
        let major = parts.prefix(2).joined(separator: ".")
        guard majors.contains(major), parts.count == 2 || (parts.count == 3 && Int(parts[2]) != nil) else {
            throw CloudError.inventory("aws.rds.engineVersion \"\(v)\" is not a MySQL version ccrun deploys: use \(majors.joined(separator: " or ")) (or a minor such as 8.4.3)")
        }
        return v
    }

    /// Numeric components, for comparing what RDS runs ("8.0.39") with what is pinned ("8.4").
    static func components(_ v: String) -> [Int] { v.split(separator: ".").map { Int($0) ?? 0 } }
}

/// Everything the guide's AWS half creates, computed from the inventory alone (no AWS call):
/// what `plan` compares the account against.
public struct Blueprint: Sendable {
    public var securityGroups: [SecurityGroupSpec]
    public var database: DatabaseSpec
    public var instances: [InstanceSpec]
    public var volume: VolumeSpec
    public var images: [ImageSpec]
    public var protectedInstance: String
    public var targetGroups: [TargetGroupSpec]
    public var loadBalancers: [LoadBalancerSpec]
    public var autoScaling: [AutoScalingSpec]
    /// Load balancer subnets from the inventory; nil: the VPC's default subnets.
    public var subnetIds: [String]?
    public var servingWaitSeconds: Int
    public var availabilityZone: String
    public var imageReboot: Bool
    public var keyName: String?
    public var pollSeconds: Double

    /// The tag every resource ccrun creates carries, so destroy can tell its own from others'.
    public static let managedTag = ["ccrun:managed": "cc-repository"]

    public static let nfsPorts: [(String, Int)] = [("tcp", 111), ("tcp", 2049), ("udp", 111), ("udp", 32806)]

    /// The guide's five tables, plus the two groups it uses but never defines (docs/aws.md):
    /// cc-tuners and cc-web are the instance-side groups admitting only their load balancer's
    /// port from their load balancer's group. cc-db also admits cc-master, where the watchdog
    /// runs (the guide leaves it out, and the watchdog could not reach the database).
    public static func securityGroups(adminCidr: String, tunerServers: [String]) -> [SecurityGroupSpec] {
        let nfsFrom: (String) -> [IngressRule] = { g in nfsPorts.map { IngressRule($0.0, $0.1, nil, .group(g)) } }
        return [
            SecurityGroupSpec(name: "cc-tuners-lb", description: "CC repository servers load balancer",
                              rules: tunerServers.map { IngressRule("tcp", 3030, nil, .cidr(cidr($0))) }),
            SecurityGroupSpec(name: "cc-web-lb", description: "CC web servers load balancer",
                              rules: [IngressRule("tcp", 80, nil, .cidr("0.0.0.0/0"))]),
            SecurityGroupSpec(name: "cc-slave", description: "CC autoscaled instances (repository and web servers)",
                              rules: [IngressRule("tcp", 0, 65535, .group("cc-tuners-lb")), IngressRule("tcp", 0, 65535, .group("cc-web-lb"))]
                                  + nfsFrom("cc-master") + [IngressRule("tcp", 22, nil, .cidr(adminCidr))]),
            SecurityGroupSpec(name: "cc-master", description: "CC NFS server",
                              rules: nfsFrom("cc-slave") + [IngressRule("tcp", 22, nil, .cidr(adminCidr))]),
            SecurityGroupSpec(name: "cc-db", description: "CC RDS MySQL database",
                              rules: [IngressRule("tcp", 3306, nil, .group("cc-slave")), IngressRule("tcp", 3306, nil, .group("cc-master")),
                                      IngressRule("tcp", 3306, nil, .cidr(adminCidr))]),
            SecurityGroupSpec(name: "cc-tuners", description: "CC repository servers (tuner traffic from cc-tuners-lb)",
                              rules: [IngressRule("tcp", 3030, nil, .group("cc-tuners-lb"))]),
            SecurityGroupSpec(name: "cc-web", description: "CC web servers (HTTP from cc-web-lb)",
                              rules: [IngressRule("tcp", 80, nil, .group("cc-web-lb"))]),
        ]
    }

    /// An address becomes a /32; a CIDR stays as it is.
    static func cidr(_ s: String) -> String { s.contains("/") ? s : s + "/32" }

    public static func make(_ inv: CloudInventory, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Blueprint {
        let a = inv.aws
        guard let admin = a.adminCidr, !admin.isEmpty else { throw CloudError.inventory("aws.adminCidr is required (the guide's \"My IP\"; it is never looked up on the network)") }
        guard let ami = a.amiId, !ami.isEmpty else { throw CloudError.inventory("aws.amiId is required (the Amazon Linux AMI for the instances)") }
        let tuners = a.tunerServerIPs ?? []
        guard !tuners.isEmpty else { throw CloudError.inventory("aws.tunerServerIPs must list the tuner servers allowed into cc-tuners-lb") }
        let type = a.instanceType ?? "t2.micro"
        let zone = a.availabilityZone ?? ((a.region ?? "us-east-1") + "a")

        func instance(_ role: String, _ groups: [String]) -> InstanceSpec {
            let s = a.instances?[role]
            let ip = s?.privateIp ?? inv.hosts[s?.host ?? role]?.address
            return InstanceSpec(role: role, name: "cc-\(role)", imageId: ami, instanceType: s?.instanceType ?? type, privateIp: ip, groups: groups)
        }
        let instances = [instance("nfs-master", ["cc-master"]), instance("repo-node", ["cc-slave", "cc-tuners"]),
                         instance("web-node", ["cc-slave", "cc-web"])]

        let r = a.rds ?? AWSSettings.RDSSettings()
        let password: Secret
        if let f = r.masterPasswordFile {
            password = try Secret(label: "rds-master-password", contentsOfFile: f)
        } else if let v = environment["CCRUN_RDS_MASTER_PASSWORD"], !v.isEmpty {
            password = Secret(label: "rds-master-password", value: v)
        } else {
            throw CloudError.inventory("aws.rds.masterPasswordFile (a 0600 file) or CCRUN_RDS_MASTER_PASSWORD is required")
        }
        let engine = r.engine ?? "mysql"
        guard engine == "mysql" else { throw CloudError.inventory("aws.rds.engine \"\(engine)\" is not supported: the guide's database is RDS mysql") }
        let db = DatabaseSpec(identifier: r.identifier ?? "cc-db", instanceClass: r.instanceClass ?? "db.t3.micro",
                              allocatedStorage: r.allocatedStorage ?? 20, engine: engine,
                              engineVersion: try MySQLVersion.validate(r.engineVersion ?? MySQLVersion.defaultVersion),
                              masterUser: r.masterUser ?? "root", masterPassword: password, dbName: r.dbName ?? "cc",
                              securityGroup: "cc-db", waitSeconds: r.waitSeconds ?? 1800)

        let v = a.volume ?? AWSSettings.VolumeSettings()
        let volume = VolumeSpec(name: "cc-nfs-data", sizeGiB: v.sizeGiB ?? 20, volumeType: v.volumeType ?? "gp2",
                                device: v.device ?? "/dev/xvdf", instanceName: "cc-nfs-master")

        let images = instances.map { ImageSpec(name: "\($0.name)-image", instanceName: $0.name) }
        let tgs = [
            TargetGroupSpec(name: "cc-web-tg", proto: "HTTP", port: 80, healthProtocol: "HTTP", healthPath: "/"),
            TargetGroupSpec(name: "cc-tuners-tg", proto: "TCP", port: 3030, healthProtocol: "TCP", healthPath: nil),
        ]
        let lbs = [
            LoadBalancerSpec(name: "cc-web-alb", type: .application, proto: "HTTP", port: 80, securityGroup: "cc-web-lb", targetGroup: "cc-web-tg"),
            LoadBalancerSpec(name: "cc-tuners-nlb", type: .network, proto: "TCP", port: 3030, securityGroup: "cc-tuners-lb", targetGroup: "cc-tuners-tg"),
        ]
        let asgs = [
            try autoScaling("web", image: "cc-web-node-image", groups: ["cc-slave", "cc-web"], lb: lbs[0], legacyLoadBalancer: "cc-web",
                            settings: a.autoscaling?.web, defaultScaling: ScalingSpec(name: "cc-web-target-tracking", metric: .albRequests, target: 1000, warmup: 300),
                            instanceType: type),
            try autoScaling("tuners", image: "cc-repo-node-image", groups: ["cc-slave", "cc-tuners"], lb: lbs[1], legacyLoadBalancer: "cc-tuners",
                            settings: a.autoscaling?.tuners, defaultScaling: ScalingSpec(name: "cc-tuners-target-tracking", metric: .cpu, target: 60, warmup: 300),
                            instanceType: type),
        ]
        if let subnets = a.subnetIds, subnets.isEmpty || subnets.contains(where: { !$0.hasPrefix("subnet-") }) {
            throw CloudError.inventory("aws.subnetIds must list subnet ids (subnet-...) for the load balancers, or be left out to use the default subnets")
        }
        return Blueprint(securityGroups: securityGroups(adminCidr: admin, tunerServers: tuners), database: db, instances: instances,
                         volume: volume, images: images, protectedInstance: "cc-nfs-master", targetGroups: tgs, loadBalancers: lbs, autoScaling: asgs,
                         subnetIds: a.subnetIds, servingWaitSeconds: a.servingWaitSeconds ?? 900,
                         availabilityZone: zone, imageReboot: a.imageReboot ?? true, keyName: a.keyName, pollSeconds: a.pollSeconds ?? 5)
    }

    /// One role's autoscaling group from `aws.autoscaling.<kind>`, with the role's default
    /// scaling when the inventory names none. An inventory of the previous ccrun (a `policy`
    /// with an adjustment and no alarm) is refused with what to write instead.
    static func autoScaling(_ kind: String, image: String, groups: [String], lb: LoadBalancerSpec, legacyLoadBalancer: String, settings: AWSSettings.GroupSizes?,
                            defaultScaling: ScalingSpec, instanceType: String) throws -> AutoScalingSpec {
        let key = "aws.autoscaling.\(kind)"
        let s = settings ?? AWSSettings.GroupSizes(min: 1, max: 2, desired: 1)
        guard s.min <= s.desired && s.desired <= s.max else {
            throw CloudError.inventory("\(key): need min <= desired <= max (got \(s.min)/\(s.desired)/\(s.max))")
        }
        if s.policy != nil {
            throw CloudError.inventory("\(key).policy is a simple scaling policy with no alarm, so nothing ever triggers it: replace it with "
                                       + "\(key).scaling {\"metric\": \"\(defaultScaling.metric.rawValue)\", \"target\": \(Int(defaultScaling.target))} (target tracking, docs/aws.md); "
                                       + "ccrun images then deletes the old policy from the group")
        }
        var scaling = defaultScaling
        if let c = s.scaling {
            if let n = c.name { scaling.name = n }
            if let m = c.metric {
                guard let metric = ScalingMetric(rawValue: m) else {
                    throw CloudError.inventory("\(key).scaling.metric \"\(m)\" is not one of \(ScalingMetric.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                scaling.metric = metric
            }
            if let t = c.target { scaling.target = t }
            if let w = c.warmupSeconds { scaling.warmup = w }
        }
        guard scaling.target > 0 else { throw CloudError.inventory("\(key).scaling.target must be greater than 0 (got \(scaling.target))") }
        if scaling.metric == .albRequests, lb.type != .application {
            throw CloudError.inventory("\(key).scaling.metric ALBRequestCountPerTarget needs an application load balancer; \(kind) is behind a network load balancer")
        }
        return AutoScalingSpec(name: "cc-\(kind)-asg", launchTemplate: LaunchTemplateSpec(name: "cc-\(kind)-lt", imageName: image, instanceType: instanceType, groups: groups),
                               targetGroup: lb.targetGroup, loadBalancer: lb.name, min: s.min, max: s.max, desired: s.desired, gracePeriod: s.healthCheckGracePeriod ?? 300,
                               scaling: scaling, legacyLoadBalancer: legacyLoadBalancer, legacyLaunchConfigurationPrefix: "cc-\(kind)-lc")
    }

    public var secrets: [Secret] { [database.masterPassword] }
}
