import Foundation

/// A target group in the security groups' VPC, with its health check; its autoscaling group
/// registers its instances in it.
struct TargetGroupResource: CloudResource {
    let spec: TargetGroupSpec
    var id: String { "target-group \(spec.name)" }
    var phase: Phase { .images }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        let spec = spec
        guard let tg = try await ctx.api.targetGroup(spec.name) else {
            guard let vpc = try await ctx.vpcId() else { return .depends("the security groups do not exist yet (run ccrun aws apply)") }
            return .calls([PlannedCall(.elbv2, "CreateTargetGroup", "\(spec.name) (\(spec.proto):\(spec.port), health \(spec.healthText), \(vpc))") { ctx in
                "created target group \(spec.name) \(try await ctx.api.createTargetGroup(spec, vpcId: vpc))"
            }])
        }
        guard tg.proto == spec.proto, tg.port == spec.port else {
            throw CloudError.unexpected("target group \(spec.name) is \(tg.proto):\(tg.port), ccrun needs \(spec.proto):\(spec.port); "
                                        + "a target group's protocol and port cannot change: delete it (ccrun aws images makes it again)")
        }
        if tg.healthText == spec.healthText { return .satisfied }
        return .calls([PlannedCall(.elbv2, "ModifyTargetGroup", "\(spec.name) health \(tg.healthText) -> \(spec.healthText)") { ctx in
            try await ctx.api.modifyTargetGroupHealth(arn: tg.arn, spec)
            return "health check of \(spec.name): \(spec.healthText)"
        }])
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        Self.createdOrIrreversible(exists: try await ctx.api.targetGroup(spec.name) != nil, "target group \(spec.name) existed; its health check was changed")
    }

    /// After its load balancer: a target group a listener still uses cannot be deleted, and AWS
    /// takes a moment to let go of it once the load balancer is deleted, so ResourceInUse is
    /// retried. (The group's own LoadBalancerArns is no guide: moto never empties it.)
    func destroy(_ ctx: CloudContext) async throws -> [String] {
        guard let tg = try await ctx.api.targetGroup(spec.name) else { return [] }
        let api = ctx.api
        try await ctx.retrying(on: "ResourceInUse", "target group \(spec.name) still used by a load balancer") {
            try await api.deleteTargetGroup(arn: tg.arn)
        }
        return ["deleted target group \(spec.name)"]
    }
}

/// An application (web, HTTP 80) or network (tuners, TCP 3030) load balancer in its security
/// group, with exactly one listener, forwarding to its target group.
struct LoadBalancerResource: CloudResource {
    let spec: LoadBalancerSpec
    var id: String { "load-balancer \(spec.name)" }
    var phase: Phase { .images }

    /// The inventory's subnets, else the VPC's default ones. An application load balancer
    /// needs two zones at least.
    func subnets(_ ctx: CloudContext) async throws -> [String] {
        if let s = ctx.blueprint.subnetIds { return s }
        guard let vpc = try await ctx.vpcId() else { throw CloudError.unexpected("the security groups do not exist yet (run ccrun aws apply)") }
        let found = try await ctx.api.defaultSubnets(vpcId: vpc)
        guard found.count >= (spec.type == .application ? 2 : 1) else {
            throw CloudError.inventory("\(vpc) has \(found.count) default subnet(s); an \(spec.type.rawValue) load balancer needs "
                                       + "\(spec.type == .application ? "two, in different zones" : "one"): list them in aws.subnetIds")
        }
        return found
    }

    func listenerCall() -> PlannedCall {
        let spec = spec
        return PlannedCall(.elbv2, "CreateListener", "\(spec.name) \(spec.listenerText)") { ctx in
            guard let lb = try await ctx.api.loadBalancer(spec.name) else { throw CloudError.unexpected("load balancer \(spec.name) does not exist") }
            try await ctx.api.createListener(loadBalancerArn: lb.arn, proto: spec.proto, port: spec.port,
                                             targetGroupArn: try await ctx.requireTargetGroupArn(spec.targetGroup))
            return "listener \(spec.name) \(spec.listenerText)"
        }
    }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        let spec = spec
        guard let gid = try await ctx.groupId(spec.securityGroup) else { return .depends("security group \(spec.securityGroup) does not exist yet") }
        guard let lb = try await ctx.api.loadBalancer(spec.name) else {
            let subnets = try await subnets(ctx)
            return .calls([
                PlannedCall(.elbv2, "CreateLoadBalancer", "\(spec.name) (\(spec.type.rawValue), internet-facing, group \(spec.securityGroup), subnets \(subnets.joined(separator: ",")))") { ctx in
                    _ = try await ctx.api.createLoadBalancer(spec, subnetIds: subnets, securityGroupId: gid)
                    return "created \(spec.type.rawValue) load balancer \(spec.name)"
                },
                listenerCall(),
            ])
        }
        guard lb.type == spec.type.rawValue else {
            throw CloudError.unexpected("load balancer \(spec.name) is of type \(lb.type), ccrun needs \(spec.type.rawValue): delete it (ccrun aws images makes it again)")
        }
        var calls: [PlannedCall] = []
        if lb.securityGroupIds != [gid] {
            calls.append(PlannedCall(.elbv2, "SetSecurityGroups", "\(spec.name) [\(spec.securityGroup)]") { ctx in
                try await ctx.api.setLoadBalancerSecurityGroups(arn: lb.arn, groupIds: [gid])
                return "security group of \(spec.name): \(spec.securityGroup)"
            })
        }
        let tgArn = try await ctx.api.targetGroup(spec.targetGroup)?.arn
        let listeners = try await ctx.api.listeners(loadBalancerArn: lb.arn)
        let onPort = listeners.first { $0.port == spec.port }
        let right = onPort.map { $0.proto == spec.proto && tgArn != nil && $0.targetGroupArns == [tgArn!] } ?? false
        // Any other listener goes, and a wrong one on the port is replaced (a listener's port is its identity here).
        for l in listeners where l.port != spec.port || !right {
            calls.append(PlannedCall(.elbv2, "DeleteListener", "\(spec.name) \(l.proto):\(l.port) (not ccrun's listener \(spec.listenerText))") { ctx in
                try await ctx.api.deleteListener(arn: l.arn)
                return "deleted listener \(spec.name) \(l.proto):\(l.port)"
            })
        }
        if !right { calls.append(listenerCall()) }
        return .calls(calls)
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        Self.createdOrIrreversible(exists: try await ctx.api.loadBalancer(spec.name) != nil,
                                   "load balancer \(spec.name) existed; its listener or security group were changed in place")
    }

    func destroy(_ ctx: CloudContext) async throws -> [String] {
        guard let lb = try await ctx.api.loadBalancer(spec.name) else { return [] }
        try await ctx.api.deleteLoadBalancer(arn: lb.arn)
        return ["deleted load balancer \(spec.name) (and its listeners)"]
    }
}
