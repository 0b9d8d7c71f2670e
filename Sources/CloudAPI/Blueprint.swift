import Foundation
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
    public var engineVersion: String?
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

public struct LoadBalancerSpec: Sendable, Hashable {
    public var name: String
    public var listeners: [ObservedListener]
    public var securityGroup: String
    public var healthTarget: String
}

public struct AutoScalingSpec: Sendable, Hashable {
    public var name: String
    /// Launch configurations are immutable: each image gets its own, `<prefix>-<image id>`.
    public var launchConfigurationPrefix: String
    public var imageName: String
    public var instanceType: String
    public var groups: [String]
    public var loadBalancer: String
    public var min: Int, max: Int, desired: Int
    public var gracePeriod: Int
    public var policy: PolicySpec?
}

public struct PolicySpec: Sendable, Hashable {
    public var name: String
    public var adjustmentType: String
    public var adjustment: Int
    public var cooldown: Int
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
    public var loadBalancers: [LoadBalancerSpec]
    public var autoScaling: [AutoScalingSpec]
    public var availabilityZone: String
    public var imageReboot: Bool
    public var keyName: String?
    public var pollSeconds: Double

    /// The tag every resource ccrun creates carries, so destroy can tell its own from others'.
    public static let managedTag = ["ccrun:managed": "cc-repository"]

    public static let nfsPorts: [(String, Int)] = [("tcp", 111), ("tcp", 2049), ("udp", 111), ("udp", 32806)]

    /// The guide's five tables, plus the two groups it uses but never defines (docs/aws.md):
    /// cc-tuners and cc-web are the instance-side groups admitting only their load balancer's
    /// port from their load balancer's group.
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
                              rules: [IngressRule("tcp", 3306, nil, .group("cc-slave")), IngressRule("tcp", 3306, nil, .cidr(adminCidr))]),
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
        let db = DatabaseSpec(identifier: r.identifier ?? "cc-db", instanceClass: r.instanceClass ?? "db.t3.micro",
                              allocatedStorage: r.allocatedStorage ?? 20, engine: r.engine ?? "mysql", engineVersion: r.engineVersion,
                              masterUser: r.masterUser ?? "root", masterPassword: password, dbName: r.dbName ?? "cc",
                              securityGroup: "cc-db", waitSeconds: r.waitSeconds ?? 1800)

        let v = a.volume ?? AWSSettings.VolumeSettings()
        let volume = VolumeSpec(name: "cc-nfs-data", sizeGiB: v.sizeGiB ?? 20, volumeType: v.volumeType ?? "gp2",
                                device: v.device ?? "/dev/xvdf", instanceName: "cc-nfs-master")

        let images = instances.map { ImageSpec(name: "\($0.name)-image", instanceName: $0.name) }
        let lbs = [
            LoadBalancerSpec(name: "cc-web", listeners: [ObservedListener(proto: "HTTP", port: 80, instanceProto: "HTTP", instancePort: 80)],
                             securityGroup: "cc-web-lb", healthTarget: "HTTP:80/"),
            LoadBalancerSpec(name: "cc-tuners", listeners: [ObservedListener(proto: "TCP", port: 3030, instanceProto: "TCP", instancePort: 3030)],
                             securityGroup: "cc-tuners-lb", healthTarget: "TCP:3030"),
        ]
        func asg(_ kind: String, image: String, groups: [String], lb: String, sizes: AWSSettings.GroupSizes?) -> AutoScalingSpec {
            let s = sizes ?? AWSSettings.GroupSizes(min: 1, max: 2, desired: 1)
            return AutoScalingSpec(name: "cc-\(kind)-asg", launchConfigurationPrefix: "cc-\(kind)-lc", imageName: image, instanceType: type,
                                   groups: groups, loadBalancer: lb, min: s.min, max: s.max, desired: s.desired,
                                   gracePeriod: s.healthCheckGracePeriod ?? 300,
                                   policy: s.policy.map { PolicySpec(name: $0.name ?? "cc-\(kind)-scale-out", adjustmentType: $0.adjustmentType ?? "ChangeInCapacity",
                                                                     adjustment: $0.scalingAdjustment, cooldown: $0.cooldown ?? 300) })
        }
        for (label, s) in [("web", a.autoscaling?.web), ("tuners", a.autoscaling?.tuners)] {
            if let s, !(s.min <= s.desired && s.desired <= s.max) {
                throw CloudError.inventory("aws.autoscaling.\(label): need min <= desired <= max (got \(s.min)/\(s.desired)/\(s.max))")
            }
        }
        let asgs = [
            asg("web", image: "cc-web-node-image", groups: ["cc-slave", "cc-web"], lb: "cc-web", sizes: a.autoscaling?.web),
            asg("tuners", image: "cc-repo-node-image", groups: ["cc-slave", "cc-tuners"], lb: "cc-tuners", sizes: a.autoscaling?.tuners),
        ]
        return Blueprint(securityGroups: securityGroups(adminCidr: admin, tunerServers: tuners), database: db, instances: instances,
                         volume: volume, images: images, protectedInstance: "cc-nfs-master", loadBalancers: lbs, autoScaling: asgs,
                         availabilityZone: zone, imageReboot: a.imageReboot ?? true, keyName: a.keyName, pollSeconds: a.pollSeconds ?? 5)
    }

    public var secrets: [Secret] { [database.masterPassword] }
}
