import LeanFoundation

/// Numbered Query-protocol list parameters: `prefix.1`, `prefix.2`...
func numbered(_ prefix: String, _ values: [String]) -> [(String, String)] {
    values.enumerated().map { ("\(prefix).\($0.offset + 1)", $0.element) }
}

/// EC2/ELB/AutoScaling tag parameters for a create call.
func tagSpec(_ resourceType: String, _ tags: [String: String]) -> [(String, String)] {
    var p: [(String, String)] = [("TagSpecification.1.ResourceType", resourceType)]
    for (i, (k, v)) in tags.sorted(by: { $0.key < $1.key }).enumerated() {
        p += [("TagSpecification.1.Tag.\(i + 1).Key", k), ("TagSpecification.1.Tag.\(i + 1).Value", v)]
    }
    return p
}

// MARK: - typed values read back from AWS

public struct ObservedRule: Sendable, Hashable {
    public var proto: String
    public var from: Int
    public var to: Int
    public var cidrs: [String]
    public var groupIds: [String]
}

public struct ObservedGroup: Sendable, Hashable {
    public var id: String
    public var name: String
    public var vpcId: String?
    public var ingress: [ObservedRule]
}

public struct ObservedInstance: Sendable, Hashable {
    public var id: String
    public var state: String
    public var privateIp: String?
    public var availabilityZone: String?
    public var groupIds: [String]
    public var imageId: String?
    public var instanceType: String?
}

public struct ObservedVolume: Sendable, Hashable {
    public var id: String
    public var state: String
    public var size: Int
    public var availabilityZone: String
    public var attachments: [(instanceId: String, device: String, state: String)]
    public static func == (a: Self, b: Self) -> Bool { a.id == b.id && a.state == b.state }
    public func hash(into h: inout Hasher) { h.combine(id) }
}

public struct ObservedImage: Sendable, Hashable {
    public var id: String
    public var name: String
    public var state: String
    public var snapshotIds: [String]
}

public struct ObservedDatabase: Sendable, Hashable {
    public var identifier: String
    public var status: String
    public var instanceClass: String
    public var engine: String
    public var engineVersion: String
    public var allocatedStorage: Int
    public var endpointAddress: String?
    public var endpointPort: Int?
    public var securityGroupIds: [String]
    public var masterUser: String
}

/// A classic load balancer's listener (what the previous ccrun made; kept to migrate and roll back).
public struct ObservedListener: Sendable, Hashable, Comparable, Codable {
    public var proto: String
    public var port: Int
    public var instanceProto: String
    public var instancePort: Int
    public var text: String { "\(proto):\(port) -> \(instanceProto):\(instancePort)" }
    public static func < (a: Self, b: Self) -> Bool { a.text < b.text }
}

/// A classic load balancer as read back; Codable because rollback recreates it from this.
public struct ObservedClassicLoadBalancer: Sendable, Hashable, Codable {
    public var name: String
    public var dnsName: String
    public var listeners: [ObservedListener]
    public var securityGroupIds: [String]
    public var healthTarget: String?
    public var availabilityZones: [String]
}

/// Codable because rollback recreates a launch configuration the migration deleted.
public struct ObservedLaunchConfiguration: Sendable, Hashable, Codable {
    public var name: String
    public var imageId: String
    public var instanceType: String
    public var securityGroups: [String]
    public var keyName: String?
}

public struct ObservedAutoScalingGroup: Sendable, Hashable {
    public var name: String
    public var launchConfigurationName: String?
    public var launchTemplateName: String?
    public var launchTemplateVersion: String?
    public var min: Int, max: Int, desired: Int
    public var loadBalancerNames: [String]
    public var targetGroupARNs: [String]
}

/// A scaling policy as read back: simple (adjustment) or target tracking. Codable because
/// rollback puts back the policies a run replaced.
public struct ObservedPolicy: Sendable, Hashable, Codable {
    public var name: String
    public var type: String
    public var adjustmentType: String?
    public var scalingAdjustment: Int?
    public var cooldown: Int?
    public var metric: String?
    public var resourceLabel: String?
    public var targetValue: Double?
    public var warmup: Int?

    /// Same target tracking (what AWS adds around it, such as its alarms, does not count).
    func tracks(like other: ObservedPolicy) -> Bool {
        (type, metric, resourceLabel, targetValue, warmup) == (other.type, other.metric, other.resourceLabel, other.targetValue, other.warmup)
    }
}

/// Typed calls over the Query client: one function per AWS action the guide needs.
/// Each reads the answer into the `Observed*` values above, so resources never touch XML.
public struct CloudAPI: Sendable {
    public let client: AWSQueryClient
    public init(client: AWSQueryClient) { self.client = client }

    // MARK: EC2 security groups

    public func securityGroups(named names: [String]) async throws -> [ObservedGroup] {
        let r = try await client.call(.ec2, "DescribeSecurityGroups",
                                      [("Filter.1.Name", "group-name")] + numbered("Filter.1.Value", names))
        return r.list("securityGroupInfo").map { g in
            ObservedGroup(id: g.string("groupId") ?? "", name: g.string("groupName") ?? "", vpcId: g.string("vpcId"),
                          ingress: g.list("ipPermissions").map(Self.rule))
        }
    }

    static func rule(_ p: XMLNode) -> ObservedRule {
        ObservedRule(proto: p.string("ipProtocol") ?? "", from: p.int("fromPort") ?? -1, to: p.int("toPort") ?? -1,
                     cidrs: p.list("ipRanges").compactMap { $0.string("cidrIp") },
                     groupIds: p.list("groups").compactMap { $0.string("groupId") })
    }

    public func createSecurityGroup(name: String, description: String, tags: [String: String]) async throws -> String {
        let r = try await client.call(.ec2, "CreateSecurityGroup",
                                      [("GroupName", name), ("GroupDescription", description)] + tagSpec("security-group", tags))
        guard let id = r.string("groupId") else { throw CloudError.malformedResponse(service: "EC2", action: "CreateSecurityGroup", detail: "no groupId") }
        return id
    }

    static func permission(_ proto: String, _ from: Int, _ to: Int, cidr: String?, groupId: String?) -> [(String, String)] {
        var p = [("IpPermissions.1.IpProtocol", proto), ("IpPermissions.1.FromPort", String(from)), ("IpPermissions.1.ToPort", String(to))]
        if let cidr { p.append(("IpPermissions.1.IpRanges.1.CidrIp", cidr)) }
        if let groupId { p.append(("IpPermissions.1.Groups.1.GroupId", groupId)) }
        return p
    }

    public func authorizeIngress(groupId: String, proto: String, from: Int, to: Int, cidr: String?, sourceGroupId: String?) async throws {
        _ = try await client.call(.ec2, "AuthorizeSecurityGroupIngress",
                                  [("GroupId", groupId)] + Self.permission(proto, from, to, cidr: cidr, groupId: sourceGroupId))
    }

    public func revokeIngress(groupId: String, proto: String, from: Int, to: Int, cidr: String?, sourceGroupId: String?) async throws {
        _ = try await client.call(.ec2, "RevokeSecurityGroupIngress",
                                  [("GroupId", groupId)] + Self.permission(proto, from, to, cidr: cidr, groupId: sourceGroupId))
    }

    public func deleteSecurityGroup(id: String) async throws {
        _ = try await client.call(.ec2, "DeleteSecurityGroup", [("GroupId", id)])
    }

    // MARK: EC2 instances, volumes, images

    /// Live (not terminated) instances carrying this Name tag.
    public func instances(named name: String) async throws -> [ObservedInstance] {
        let r = try await client.call(.ec2, "DescribeInstances", [
            ("Filter.1.Name", "tag:Name"), ("Filter.1.Value.1", name),
            ("Filter.2.Name", "instance-state-name"),
        ] + numbered("Filter.2.Value", ["pending", "running", "stopping", "stopped"]))
        return r.list("reservationSet").flatMap { $0.list("instancesSet") }.map { i in
            ObservedInstance(id: i.string("instanceId") ?? "", state: i.string("instanceState/name") ?? "",
                             privateIp: i.string("privateIpAddress"), availabilityZone: i.string("placement/availabilityZone"),
                             groupIds: i.list("groupSet").compactMap { $0.string("groupId") },
                             imageId: i.string("imageId"), instanceType: i.string("instanceType"))
        }
    }

    public func runInstance(name: String, imageId: String, instanceType: String, privateIp: String?, groupIds: [String],
                            availabilityZone: String?, keyName: String?, tags: [String: String]) async throws -> String {
        var p: [(String, String)] = [("ImageId", imageId), ("InstanceType", instanceType), ("MinCount", "1"), ("MaxCount", "1")]
        if let privateIp { p.append(("PrivateIpAddress", privateIp)) }
        if let availabilityZone { p.append(("Placement.AvailabilityZone", availabilityZone)) }
        if let keyName { p.append(("KeyName", keyName)) }
        p += numbered("SecurityGroupId", groupIds)
        p += tagSpec("instance", tags.merging(["Name": name]) { a, _ in a })
        let r = try await client.call(.ec2, "RunInstances", p)
        guard let id = r.list("instancesSet").first?.string("instanceId") else {
            throw CloudError.malformedResponse(service: "EC2", action: "RunInstances", detail: "no instanceId")
        }
        return id
    }

    public func setInstanceGroups(instanceId: String, groupIds: [String]) async throws {
        _ = try await client.call(.ec2, "ModifyInstanceAttribute", [("InstanceId", instanceId)] + numbered("GroupId", groupIds))
    }

    public func terminationProtection(instanceId: String) async throws -> Bool {
        let r = try await client.call(.ec2, "DescribeInstanceAttribute", [("InstanceId", instanceId), ("Attribute", "disableApiTermination")])
        return r.string("disableApiTermination/value") == "true"
    }

    public func setTerminationProtection(instanceId: String, _ on: Bool) async throws {
        _ = try await client.call(.ec2, "ModifyInstanceAttribute", [("InstanceId", instanceId), ("DisableApiTermination.Value", on ? "true" : "false")])
    }

    public func terminateInstances(_ ids: [String]) async throws {
        _ = try await client.call(.ec2, "TerminateInstances", numbered("InstanceId", ids))
    }

    public func volumes(named name: String) async throws -> [ObservedVolume] {
        let r = try await client.call(.ec2, "DescribeVolumes", [("Filter.1.Name", "tag:Name"), ("Filter.1.Value.1", name)])
        return r.list("volumeSet").map { v in
            ObservedVolume(id: v.string("volumeId") ?? "", state: v.string("status") ?? "", size: v.int("size") ?? 0,
                           availabilityZone: v.string("availabilityZone") ?? "",
                           attachments: v.list("attachmentSet").map { ($0.string("instanceId") ?? "", $0.string("device") ?? "", $0.string("status") ?? "") })
        }.filter { $0.state != "deleting" && $0.state != "deleted" }
    }

    public func createVolume(name: String, availabilityZone: String, sizeGiB: Int, volumeType: String, tags: [String: String]) async throws -> String {
        let r = try await client.call(.ec2, "CreateVolume", [("AvailabilityZone", availabilityZone), ("Size", String(sizeGiB)), ("VolumeType", volumeType)]
                                      + tagSpec("volume", tags.merging(["Name": name]) { a, _ in a }))
        guard let id = r.string("volumeId") else { throw CloudError.malformedResponse(service: "EC2", action: "CreateVolume", detail: "no volumeId") }
        return id
    }

    public func attachVolume(volumeId: String, instanceId: String, device: String) async throws {
        _ = try await client.call(.ec2, "AttachVolume", [("VolumeId", volumeId), ("InstanceId", instanceId), ("Device", device)])
    }
    public func detachVolume(volumeId: String, instanceId: String, device: String) async throws {
        _ = try await client.call(.ec2, "DetachVolume", [("VolumeId", volumeId), ("InstanceId", instanceId), ("Device", device)])
    }
    public func deleteVolume(volumeId: String) async throws {
        _ = try await client.call(.ec2, "DeleteVolume", [("VolumeId", volumeId)])
    }

    public func images(named name: String) async throws -> [ObservedImage] {
        let r = try await client.call(.ec2, "DescribeImages", [("Owner.1", "self"), ("Filter.1.Name", "name"), ("Filter.1.Value.1", name)])
        return r.list("imagesSet").map { i in
            ObservedImage(id: i.string("imageId") ?? "", name: i.string("name") ?? "", state: i.string("imageState") ?? "",
                          snapshotIds: i.list("blockDeviceMapping").compactMap { $0.string("ebs/snapshotId") })
        }.filter { $0.name == name }
    }

    public func createImage(instanceId: String, name: String, description: String, reboot: Bool) async throws -> String {
        let r = try await client.call(.ec2, "CreateImage", [("InstanceId", instanceId), ("Name", name), ("Description", description),
                                                            ("NoReboot", reboot ? "false" : "true")])
        guard let id = r.string("imageId") else { throw CloudError.malformedResponse(service: "EC2", action: "CreateImage", detail: "no imageId") }
        return id
    }

    public func deregisterImage(_ id: String) async throws {
        _ = try await client.call(.ec2, "DeregisterImage", [("ImageId", id)])
    }
    public func deleteSnapshot(_ id: String) async throws {
        _ = try await client.call(.ec2, "DeleteSnapshot", [("SnapshotId", id)])
    }

    // MARK: RDS

    public func database(_ identifier: String) async throws -> ObservedDatabase? {
        do {
            let r = try await client.call(.rds, "DescribeDBInstances", [("DBInstanceIdentifier", identifier)])
            guard let d = r.first("DBInstances")?.children.first else { return nil }
            return ObservedDatabase(
                identifier: d.string("DBInstanceIdentifier") ?? identifier, status: d.string("DBInstanceStatus") ?? "",
                instanceClass: d.string("DBInstanceClass") ?? "", engine: d.string("Engine") ?? "", engineVersion: d.string("EngineVersion") ?? "",
                allocatedStorage: d.int("AllocatedStorage") ?? 0, endpointAddress: d.string("Endpoint/Address"),
                endpointPort: d.int("Endpoint/Port"),
                securityGroupIds: d.child("VpcSecurityGroups")?.children.compactMap { $0.string("VpcSecurityGroupId") } ?? [],
                masterUser: d.string("MasterUsername") ?? "")
        } catch let e as CloudError where e.code == "DBInstanceNotFound" || e.code == "DBInstanceNotFoundFault" {
            return nil
        }
    }

    public func createDatabase(_ spec: DatabaseSpec, securityGroupId: String) async throws {
        var p: [(String, String)] = [
            ("DBInstanceIdentifier", spec.identifier), ("DBInstanceClass", spec.instanceClass), ("Engine", spec.engine),
            ("AllocatedStorage", String(spec.allocatedStorage)), ("MasterUsername", spec.masterUser),
            ("MasterUserPassword", spec.masterPassword.reveal()), ("DBName", spec.dbName),
            ("VpcSecurityGroupIds.VpcSecurityGroupId.1", securityGroupId),
        ]
        p.append(("EngineVersion", spec.engineVersion))
        _ = try await client.call(.rds, "CreateDBInstance", p)
    }

    /// A change of major version (8.0 -> 8.4) needs AllowMajorVersionUpgrade; RDS never downgrades.
    public func modifyDatabase(_ identifier: String, instanceClass: String?, allocatedStorage: Int?, securityGroupIds: [String]?,
                               engineVersion: String? = nil, majorUpgrade: Bool = false) async throws {
        var p: [(String, String)] = [("DBInstanceIdentifier", identifier), ("ApplyImmediately", "true")]
        if let c = instanceClass { p.append(("DBInstanceClass", c)) }
        if let v = engineVersion { p.append(("EngineVersion", v)) }
        if majorUpgrade { p.append(("AllowMajorVersionUpgrade", "true")) }
        if let s = allocatedStorage { p.append(("AllocatedStorage", String(s))) }
        if let g = securityGroupIds { p += numbered("VpcSecurityGroupIds.VpcSecurityGroupId", g) }
        _ = try await client.call(.rds, "ModifyDBInstance", p)
    }

    public func deleteDatabase(_ identifier: String) async throws {
        _ = try await client.call(.rds, "DeleteDBInstance", [("DBInstanceIdentifier", identifier), ("SkipFinalSnapshot", "true")])
    }

    // MARK: classic ELB

    public func classicLoadBalancer(_ name: String) async throws -> ObservedClassicLoadBalancer? {
        do {
            let r = try await client.call(.elb, "DescribeLoadBalancers", [("LoadBalancerNames.member.1", name)])
            guard let d = r.first("LoadBalancerDescriptions")?.children.first else { return nil }
            return ObservedClassicLoadBalancer(
                name: d.string("LoadBalancerName") ?? name, dnsName: d.string("DNSName") ?? "",
                listeners: d.list("ListenerDescriptions").compactMap { ld in
                    guard let l = ld.child("Listener") else { return nil }
                    return ObservedListener(proto: (l.string("Protocol") ?? "").uppercased(), port: l.int("LoadBalancerPort") ?? 0,
                                            instanceProto: (l.string("InstanceProtocol") ?? "").uppercased(), instancePort: l.int("InstancePort") ?? 0)
                },
                securityGroupIds: d.list("SecurityGroups").map(\.text),
                healthTarget: d.string("HealthCheck/Target"),
                availabilityZones: d.list("AvailabilityZones").map(\.text))
        } catch let e as CloudError where e.code == "LoadBalancerNotFound" || e.code == "AccessPointNotFound" {
            return nil
        }
    }

    static func listenerParams(_ ls: [ObservedListener]) -> [(String, String)] {
        ls.enumerated().flatMap { (i, l) in [
            ("Listeners.member.\(i + 1).Protocol", l.proto), ("Listeners.member.\(i + 1).LoadBalancerPort", String(l.port)),
            ("Listeners.member.\(i + 1).InstanceProtocol", l.instanceProto), ("Listeners.member.\(i + 1).InstancePort", String(l.instancePort)),
        ] }
    }

    public func createClassicLoadBalancer(name: String, listeners: [ObservedListener], availabilityZones: [String], securityGroupIds: [String]) async throws {
        _ = try await client.call(.elb, "CreateLoadBalancer", [("LoadBalancerName", name)] + Self.listenerParams(listeners)
                                  + numbered("AvailabilityZones.member", availabilityZones) + numbered("SecurityGroups.member", securityGroupIds))
    }
    public func configureHealthCheck(name: String, target: String) async throws {
        _ = try await client.call(.elb, "ConfigureHealthCheck", [
            ("LoadBalancerName", name), ("HealthCheck.Target", target), ("HealthCheck.Interval", "30"),
            ("HealthCheck.Timeout", "5"), ("HealthCheck.UnhealthyThreshold", "2"), ("HealthCheck.HealthyThreshold", "3"),
        ])
    }
    public func deleteClassicLoadBalancer(_ name: String) async throws {
        _ = try await client.call(.elb, "DeleteLoadBalancer", [("LoadBalancerName", name)])
    }

    // MARK: AutoScaling

    public func launchConfigurations() async throws -> [ObservedLaunchConfiguration] {
        let pages = try await client.callAll(.autoscaling, "DescribeLaunchConfigurations") { $0.first("NextToken")?.text }
        return pages.flatMap { $0.first("LaunchConfigurations")?.children ?? [] }.map { c in
            ObservedLaunchConfiguration(name: c.string("LaunchConfigurationName") ?? "", imageId: c.string("ImageId") ?? "",
                                        instanceType: c.string("InstanceType") ?? "", securityGroups: c.list("SecurityGroups").map(\.text),
                                        keyName: c.string("KeyName").flatMap { $0.isEmpty ? nil : $0 })
        }
    }

    public func createLaunchConfiguration(name: String, imageId: String, instanceType: String, securityGroupIds: [String], keyName: String?) async throws {
        var p = [("LaunchConfigurationName", name), ("ImageId", imageId), ("InstanceType", instanceType)]
        if let keyName { p.append(("KeyName", keyName)) }
        _ = try await client.call(.autoscaling, "CreateLaunchConfiguration", p + numbered("SecurityGroups.member", securityGroupIds))
    }
    public func deleteLaunchConfiguration(_ name: String) async throws {
        _ = try await client.call(.autoscaling, "DeleteLaunchConfiguration", [("LaunchConfigurationName", name)])
    }

    public func autoScalingGroup(_ name: String) async throws -> ObservedAutoScalingGroup? {
        let r = try await client.call(.autoscaling, "DescribeAutoScalingGroups", [("AutoScalingGroupNames.member.1", name)])
        guard let g = r.first("AutoScalingGroups")?.children.first else { return nil }
        return ObservedAutoScalingGroup(name: g.string("AutoScalingGroupName") ?? name,
                                        launchConfigurationName: g.string("LaunchConfigurationName").flatMap { $0.isEmpty ? nil : $0 },
                                        launchTemplateName: g.string("LaunchTemplate/LaunchTemplateName"), launchTemplateVersion: g.string("LaunchTemplate/Version"),
                                        min: g.int("MinSize") ?? 0, max: g.int("MaxSize") ?? 0, desired: g.int("DesiredCapacity") ?? 0,
                                        loadBalancerNames: g.list("LoadBalancerNames").map(\.text), targetGroupARNs: g.list("TargetGroupARNs").map(\.text))
    }

    /// What an autoscaling group launches from: the version of a launch template ccrun uses, or
    /// a launch configuration (only when rollback puts back a group the migration switched).
    public enum LaunchSource: Sendable, Hashable {
        case template(name: String, version: String)
        case configuration(String)
        var params: [(String, String)] {
            switch self {
            case let .template(name, version): [("LaunchTemplate.LaunchTemplateName", name), ("LaunchTemplate.Version", version)]
            case let .configuration(name): [("LaunchConfigurationName", name)]
            }
        }
    }

    public func createAutoScalingGroup(name: String, launch: LaunchSource, min: Int, max: Int, desired: Int,
                                       availabilityZones: [String], targetGroupARNs: [String], gracePeriod: Int, tags: [String: String]) async throws {
        var p: [(String, String)] = [("AutoScalingGroupName", name)] + launch.params + [
            ("MinSize", String(min)), ("MaxSize", String(max)), ("DesiredCapacity", String(desired)),
            ("HealthCheckType", "ELB"), ("HealthCheckGracePeriod", String(gracePeriod)),
        ] + numbered("AvailabilityZones.member", availabilityZones) + numbered("TargetGroupARNs.member", targetGroupARNs)
        for (i, (k, v)) in tags.sorted(by: { $0.key < $1.key }).enumerated() {
            p += [("Tags.member.\(i + 1).Key", k), ("Tags.member.\(i + 1).Value", v), ("Tags.member.\(i + 1).PropagateAtLaunch", "true")]
        }
        _ = try await client.call(.autoscaling, "CreateAutoScalingGroup", p)
    }

    public func updateAutoScalingGroup(name: String, launch: LaunchSource, min: Int, max: Int, desired: Int) async throws {
        _ = try await client.call(.autoscaling, "UpdateAutoScalingGroup", [("AutoScalingGroupName", name)] + launch.params + [
            ("MinSize", String(min)), ("MaxSize", String(max)), ("DesiredCapacity", String(desired)),
        ])
    }
    public func attachLoadBalancers(group: String, names: [String]) async throws {
        _ = try await client.call(.autoscaling, "AttachLoadBalancers", [("AutoScalingGroupName", group)] + numbered("LoadBalancerNames.member", names))
    }
    public func detachLoadBalancers(group: String, names: [String]) async throws {
        _ = try await client.call(.autoscaling, "DetachLoadBalancers", [("AutoScalingGroupName", group)] + numbered("LoadBalancerNames.member", names))
    }
    public func attachTargetGroups(group: String, arns: [String]) async throws {
        _ = try await client.call(.autoscaling, "AttachLoadBalancerTargetGroups", [("AutoScalingGroupName", group)] + numbered("TargetGroupARNs.member", arns))
    }
    public func detachTargetGroups(group: String, arns: [String]) async throws {
        _ = try await client.call(.autoscaling, "DetachLoadBalancerTargetGroups", [("AutoScalingGroupName", group)] + numbered("TargetGroupARNs.member", arns))
    }
    public func deleteAutoScalingGroup(_ name: String) async throws {
        _ = try await client.call(.autoscaling, "DeleteAutoScalingGroup", [("AutoScalingGroupName", name), ("ForceDelete", "true")])
    }

    public func policies(group: String) async throws -> [ObservedPolicy] {
        let r = try await client.call(.autoscaling, "DescribePolicies", [("AutoScalingGroupName", group)])
        return (r.first("ScalingPolicies")?.children ?? []).map { p in
            ObservedPolicy(name: p.string("PolicyName") ?? "", type: p.string("PolicyType") ?? "SimpleScaling",
                           adjustmentType: p.string("AdjustmentType"), scalingAdjustment: p.int("ScalingAdjustment"), cooldown: p.int("Cooldown"),
                           metric: p.string("TargetTrackingConfiguration/PredefinedMetricSpecification/PredefinedMetricType"),
                           resourceLabel: p.string("TargetTrackingConfiguration/PredefinedMetricSpecification/ResourceLabel"),
                           targetValue: p.string("TargetTrackingConfiguration/TargetValue").flatMap(Double.init),
                           warmup: p.int("EstimatedInstanceWarmup"))
        }
    }

    /// Creates or replaces a policy as it was read back: target tracking, or (to put back what
    /// a migration removed) a simple policy.
    public func putScalingPolicy(group: String, _ p: ObservedPolicy) async throws {
        var params: [(String, String)] = [("AutoScalingGroupName", group), ("PolicyName", p.name), ("PolicyType", p.type)]
        if let m = p.metric {
            params.append(("TargetTrackingConfiguration.PredefinedMetricSpecification.PredefinedMetricType", m))
            if let l = p.resourceLabel { params.append(("TargetTrackingConfiguration.PredefinedMetricSpecification.ResourceLabel", l)) }
        }
        if let t = p.targetValue { params.append(("TargetTrackingConfiguration.TargetValue", String(t))) }
        if let w = p.warmup { params.append(("EstimatedInstanceWarmup", String(w))) }
        if let a = p.adjustmentType { params.append(("AdjustmentType", a)) }
        if let a = p.scalingAdjustment { params.append(("ScalingAdjustment", String(a))) }
        if let c = p.cooldown { params.append(("Cooldown", String(c))) }
        _ = try await client.call(.autoscaling, "PutScalingPolicy", params)
    }
    public func deletePolicy(group: String, name: String) async throws {
        _ = try await client.call(.autoscaling, "DeletePolicy", [("AutoScalingGroupName", group), ("PolicyName", name)])
    }
}
