import LeanFoundation
import StepKit

/// The inventory's "aws" object (see docs/aws.md). The deployment's inventory type (Runbooks'
/// `DeploymentInventory.AWS`) only knows endpoint/region/credentialsFile, what the lab writes;
/// the full object is decoded here from the same file.
public struct AWSSettings: Codable, Sendable {
    public struct InstanceSettings: Codable, Sendable {
        /// Inventory host this instance is (its address is the default private IP).
        public var host: String?
        public var privateIp: String?
        public var instanceType: String?
    }
    public struct VolumeSettings: Codable, Sendable {
        public var sizeGiB: Int?
        public var volumeType: String?
        public var device: String?
    }
    public struct RDSSettings: Codable, Sendable {
        public var identifier: String?
        public var instanceClass: String?
        public var allocatedStorage: Int?
        public var engine: String?
        public var engineVersion: String?
        public var masterUser: String?
        public var masterPasswordFile: String?
        public var dbName: String?
        public var waitSeconds: Int?
        /// An inventory host that stands in for the RDS endpoint when `ccrun deploy` runs the
        /// database runbook (the lab's MariaDB in tests); nil means the real RDS endpoint.
        public var host: String?
    }
    /// The simple scaling policy of earlier inventories: decoded only so that `Blueprint.make`
    /// can name it in its error (nothing ever triggered it: it had no alarm).
    public struct LegacyPolicySettings: Codable, Sendable {
        public var name: String?
        public var adjustmentType: String?
        public var scalingAdjustment: Int?
        public var cooldown: Int?
    }
    /// A target-tracking policy: AWS creates and owns the CloudWatch alarms that drive it.
    public struct ScalingSettings: Codable, Sendable {
        public var name: String?
        /// ASGAverageCPUUtilization, ASGAverageNetworkIn, ASGAverageNetworkOut or ALBRequestCountPerTarget.
        public var metric: String?
        public var target: Double?
        public var warmupSeconds: Int?
        public init(name: String? = nil, metric: String? = nil, target: Double? = nil, warmupSeconds: Int? = nil) {
            self.name = name; self.metric = metric; self.target = target; self.warmupSeconds = warmupSeconds
        }
    }
    public struct GroupSizes: Codable, Sendable {
        public var min: Int
        public var max: Int
        public var desired: Int
        public var scaling: ScalingSettings?
        public var policy: LegacyPolicySettings?
        public var healthCheckGracePeriod: Int?
    }
    public struct AutoScalingSettings: Codable, Sendable {
        public var web: GroupSizes?
        public var tuners: GroupSizes?
    }

    public var endpoint: String?
    public var region: String?
    public var credentialsFile: String?
    public var profile: String?
    /// Where "My IP" of the guide's tables comes from: never looked up on the network.
    public var adminCidr: String?
    /// The tuner servers allowed into cc-tuners-lb on 3030 (addresses or CIDRs).
    public var tunerServerIPs: [String]?
    public var amiId: String?
    public var instanceType: String?
    public var availabilityZone: String?
    public var keyName: String?
    public var instances: [String: InstanceSettings]?
    public var volume: VolumeSettings?
    public var rds: RDSSettings?
    public var autoscaling: AutoScalingSettings?
    /// Subnets of the application and network load balancers; default: the default subnets
    /// (one per zone) of the VPC the security groups are in.
    public var subnetIds: [String]?
    /// How long `images` waits for a new target group to have a healthy target before it
    /// removes the classic load balancer and launch configurations it replaces.
    public var servingWaitSeconds: Int?
    /// Whether CreateImage may reboot the instance (AWS's default, for a consistent file system).
    public var imageReboot: Bool?
    /// Where `apply` writes its outputs (RDS endpoint, instance ids); default beside the journal.
    public var outputsFile: String?
    public var pollSeconds: Double?

    public init() {}
}

/// The inventory as ccrun aws needs it: the host map (for private IPs) and the aws settings.
public struct CloudInventory: Sendable {
    public var path: String
    public var hosts: [String: Inventory.Host]
    public var aws: AWSSettings

    private struct File: Decodable { var hosts: [String: Inventory.Host]?; var aws: AWSSettings? }

    public init(path: String, hosts: [String: Inventory.Host], aws: AWSSettings) {
        self.path = path; self.hosts = hosts; self.aws = aws
    }

    public static func load(_ path: String) throws -> CloudInventory {
        guard let data = FileManager.default.contents(atPath: path) else { throw CloudError.inventory("cannot read \(path)") }
        do {
            let f = try JSONDecoder().decode(File.self, from: data)
            guard let aws = f.aws else { throw CloudError.inventory("\(path) has no \"aws\" object") }
            return CloudInventory(path: path, hosts: f.hosts ?? [:], aws: aws)
        } catch let e as CloudError { throw e } catch {
            throw CloudError.inventory("\(path) is not valid: \(error)")
        }
    }
}
