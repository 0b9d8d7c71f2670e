import LeanFoundation

public struct ObservedTargetGroup: Sendable, Hashable {
    public var arn: String
    public var name: String
    public var proto: String
    public var port: Int
    public var vpcId: String?
    public var healthProtocol: String
    public var healthPath: String?
    public var loadBalancerArns: [String]
    /// "HTTP:80/" or "TCP:3030", as `TargetGroupSpec.healthText` writes it.
    public var healthText: String { "\(healthProtocol):\(port)\(healthProtocol == "TCP" ? "" : healthPath ?? "")" }
}

/// An application or network load balancer as read back.
public struct ObservedLoadBalancer: Sendable, Hashable {
    public var arn: String
    public var name: String
    public var type: String
    public var dnsName: String
    public var securityGroupIds: [String]
    public var subnetIds: [String]
}

public struct ObservedListenerV2: Sendable, Hashable {
    public var arn: String
    public var proto: String
    public var port: Int
    /// Target groups of the default forward action.
    public var targetGroupArns: [String]
}

public struct ObservedLaunchTemplate: Sendable, Hashable {
    public var id: String
    public var name: String
    public var defaultVersion: Int
}

public struct ObservedTemplateVersion: Sendable, Hashable {
    public var number: Int
    public var imageId: String?
    public var instanceType: String?
    public var groupIds: [String]
    public var keyName: String?
    public var isDefault: Bool
}

/// Application/network load balancers (ELBv2), launch templates (EC2) and the subnets the
/// load balancers go in: the calls that replace classic load balancers and launch configurations.
extension CloudAPI {
    // MARK: ELBv2 target groups

    public func targetGroup(_ name: String) async throws -> ObservedTargetGroup? {
        do {
            let r = try await client.call(.elbv2, "DescribeTargetGroups", [("Names.member.1", name)])
            guard let t = r.first("TargetGroups")?.children.first else { return nil }
            return ObservedTargetGroup(arn: t.string("TargetGroupArn") ?? "", name: t.string("TargetGroupName") ?? name,
                                       proto: t.string("Protocol") ?? "", port: t.int("Port") ?? 0, vpcId: t.string("VpcId"),
                                       healthProtocol: t.string("HealthCheckProtocol") ?? "", healthPath: t.string("HealthCheckPath"),
                                       loadBalancerArns: t.list("LoadBalancerArns").map(\.text))
        } catch let e as CloudError where e.code == "TargetGroupNotFound" {
            return nil
        }
    }

    public func createTargetGroup(_ spec: TargetGroupSpec, vpcId: String) async throws -> String {
        var p: [(String, String)] = [("Name", spec.name), ("Protocol", spec.proto), ("Port", String(spec.port)), ("VpcId", vpcId),
                                     ("TargetType", "instance"), ("HealthCheckProtocol", spec.healthProtocol)]
        if let path = spec.healthPath { p.append(("HealthCheckPath", path)) }
        let r = try await client.call(.elbv2, "CreateTargetGroup", p + Self.elbv2Tags(Blueprint.managedTag))
        guard let arn = r.first("TargetGroupArn")?.text else { throw CloudError.malformedResponse(service: "ELBv2", action: "CreateTargetGroup", detail: "no TargetGroupArn") }
        return arn
    }

    public func modifyTargetGroupHealth(arn: String, _ spec: TargetGroupSpec) async throws {
        var p: [(String, String)] = [("TargetGroupArn", arn), ("HealthCheckProtocol", spec.healthProtocol)]
        if let path = spec.healthPath { p.append(("HealthCheckPath", path)) }
        _ = try await client.call(.elbv2, "ModifyTargetGroup", p)
    }

    public func deleteTargetGroup(arn: String) async throws {
        _ = try await client.call(.elbv2, "DeleteTargetGroup", [("TargetGroupArn", arn)])
    }

    /// States of the registered targets ("healthy", "initial", "unhealthy"...).
    public func targetStates(arn: String) async throws -> [String] {
        let r = try await client.call(.elbv2, "DescribeTargetHealth", [("TargetGroupArn", arn)])
        return r.list("DescribeTargetHealthResult/TargetHealthDescriptions").compactMap { $0.string("TargetHealth/State") }
    }

    // MARK: ELBv2 load balancers and listeners

    public func loadBalancer(_ name: String) async throws -> ObservedLoadBalancer? {
        do {
            let r = try await client.call(.elbv2, "DescribeLoadBalancers", [("Names.member.1", name)])
            guard let l = r.first("LoadBalancers")?.children.first else { return nil }
            return ObservedLoadBalancer(arn: l.string("LoadBalancerArn") ?? "", name: l.string("LoadBalancerName") ?? name,
                                        type: l.string("Type") ?? "", dnsName: l.string("DNSName") ?? "",
                                        securityGroupIds: l.list("SecurityGroups").map(\.text),
                                        subnetIds: l.list("AvailabilityZones").compactMap { $0.string("SubnetId") })
        } catch let e as CloudError where e.code == "LoadBalancerNotFound" {
            return nil
        }
    }

    public func createLoadBalancer(_ spec: LoadBalancerSpec, subnetIds: [String], securityGroupId: String) async throws -> String {
        let r = try await client.call(.elbv2, "CreateLoadBalancer", [
            ("Name", spec.name), ("Type", spec.type.rawValue), ("Scheme", "internet-facing"),
        ] + numbered("Subnets.member", subnetIds) + numbered("SecurityGroups.member", [securityGroupId]) + Self.elbv2Tags(Blueprint.managedTag))
        guard let arn = r.first("LoadBalancerArn")?.text else { throw CloudError.malformedResponse(service: "ELBv2", action: "CreateLoadBalancer", detail: "no LoadBalancerArn") }
        return arn
    }

    public func setLoadBalancerSecurityGroups(arn: String, groupIds: [String]) async throws {
        _ = try await client.call(.elbv2, "SetSecurityGroups", [("LoadBalancerArn", arn)] + numbered("SecurityGroups.member", groupIds))
    }

    public func deleteLoadBalancer(arn: String) async throws {
        _ = try await client.call(.elbv2, "DeleteLoadBalancer", [("LoadBalancerArn", arn)])
    }

    public func listeners(loadBalancerArn: String) async throws -> [ObservedListenerV2] {
        let r = try await client.call(.elbv2, "DescribeListeners", [("LoadBalancerArn", loadBalancerArn)])
        return (r.first("Listeners")?.children ?? []).map { l in
            ObservedListenerV2(arn: l.string("ListenerArn") ?? "", proto: l.string("Protocol") ?? "", port: l.int("Port") ?? 0,
                               targetGroupArns: l.list("DefaultActions").filter { $0.string("Type") == "forward" }.compactMap { $0.string("TargetGroupArn") })
        }
    }

    public func createListener(loadBalancerArn: String, proto: String, port: Int, targetGroupArn: String) async throws {
        _ = try await client.call(.elbv2, "CreateListener", [
            ("LoadBalancerArn", loadBalancerArn), ("Protocol", proto), ("Port", String(port)),
            ("DefaultActions.member.1.Type", "forward"), ("DefaultActions.member.1.TargetGroupArn", targetGroupArn),
        ])
    }

    public func deleteListener(arn: String) async throws {
        _ = try await client.call(.elbv2, "DeleteListener", [("ListenerArn", arn)])
    }

    static func elbv2Tags(_ tags: [String: String]) -> [(String, String)] {
        tags.sorted { $0.key < $1.key }.enumerated().flatMap { i, t in [("Tags.member.\(i + 1).Key", t.key), ("Tags.member.\(i + 1).Value", t.value)] }
    }

    // MARK: EC2 subnets (where the load balancers go)

    /// The default subnets (one per zone) of a VPC, sorted by zone.
    public func defaultSubnets(vpcId: String) async throws -> [String] {
        let r = try await client.call(.ec2, "DescribeSubnets", [("Filter.1.Name", "vpc-id"), ("Filter.1.Value.1", vpcId),
                                                              ("Filter.2.Name", "default-for-az"), ("Filter.2.Value.1", "true")])
        return r.list("subnetSet").sorted { ($0.string("availabilityZone") ?? "") < ($1.string("availabilityZone") ?? "") }
            .compactMap { $0.string("subnetId") }
    }

    // MARK: EC2 launch templates

    public func launchTemplate(_ name: String) async throws -> ObservedLaunchTemplate? {
        let r = try await client.call(.ec2, "DescribeLaunchTemplates", [("Filter.1.Name", "launch-template-name"), ("Filter.1.Value.1", name)])
        guard let t = r.list("launchTemplates").first(where: { $0.string("launchTemplateName") == name }) else { return nil }
        return ObservedLaunchTemplate(id: t.string("launchTemplateId") ?? "", name: name, defaultVersion: t.int("defaultVersionNumber") ?? 1)
    }

    public func launchTemplateVersions(_ name: String) async throws -> [ObservedTemplateVersion] {
        let pages = try await client.callAll(.ec2, "DescribeLaunchTemplateVersions", [("LaunchTemplateName", name)]) { $0.first("nextToken")?.text }
        return pages.flatMap { $0.list("launchTemplateVersionSet") }.map { v in
            ObservedTemplateVersion(number: v.int("versionNumber") ?? 0, imageId: v.string("launchTemplateData/imageId"),
                                    instanceType: v.string("launchTemplateData/instanceType"),
                                    groupIds: v.list("launchTemplateData/securityGroupIdSet").map(\.text),
                                    keyName: v.string("launchTemplateData/keyName"), isDefault: v.string("defaultVersion") == "true")
        }
    }

    static func templateData(imageId: String, instanceType: String, groupIds: [String], keyName: String?) -> [(String, String)] {
        var p = [("LaunchTemplateData.ImageId", imageId), ("LaunchTemplateData.InstanceType", instanceType)]
        p += numbered("LaunchTemplateData.SecurityGroupId", groupIds)
        if let keyName { p.append(("LaunchTemplateData.KeyName", keyName)) }
        return p
    }

    /// Creates the template with its first version; returns that version's number.
    public func createLaunchTemplate(name: String, imageId: String, instanceType: String, groupIds: [String], keyName: String?) async throws -> Int {
        let r = try await client.call(.ec2, "CreateLaunchTemplate", [("LaunchTemplateName", name), ("VersionDescription", imageId)]
                                      + Self.templateData(imageId: imageId, instanceType: instanceType, groupIds: groupIds, keyName: keyName)
                                      + tagSpec("launch-template", Blueprint.managedTag))
        return r.int("launchTemplate/latestVersionNumber") ?? 1
    }

    public func createLaunchTemplateVersion(name: String, imageId: String, instanceType: String, groupIds: [String], keyName: String?) async throws -> Int {
        let r = try await client.call(.ec2, "CreateLaunchTemplateVersion", [("LaunchTemplateName", name), ("VersionDescription", imageId)]
                                      + Self.templateData(imageId: imageId, instanceType: instanceType, groupIds: groupIds, keyName: keyName))
        guard let n = r.int("launchTemplateVersion/versionNumber") else {
            throw CloudError.malformedResponse(service: "EC2", action: "CreateLaunchTemplateVersion", detail: "no versionNumber")
        }
        return n
    }

    public func deleteLaunchTemplate(_ name: String) async throws {
        _ = try await client.call(.ec2, "DeleteLaunchTemplate", [("LaunchTemplateName", name)])
    }

    public func deleteLaunchTemplateVersions(_ name: String, versions: [Int]) async throws {
        _ = try await client.call(.ec2, "DeleteLaunchTemplateVersions", [("LaunchTemplateName", name)] + numbered("LaunchTemplateVersion", versions.map(String.init)))
    }
}
