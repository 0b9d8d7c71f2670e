import Foundation

/// The previous ccrun's objects (classic load balancers, launch configurations) are removed
/// only once their replacement serves: the group's target group has a healthy target. This
/// call waits for that (up to `aws.servingWaitSeconds`), so it comes first in their plans.
func servingWait(_ spec: AutoScalingSpec) -> PlannedCall {
    PlannedCall(.elbv2, "DescribeTargetHealth", "wait until \(spec.targetGroup) has a healthy target (then the old objects of \(spec.name) go)") { ctx in
        let api = ctx.api, tg = spec.targetGroup
        let arn = try await ctx.requireTargetGroupArn(tg)
        try await ctx.wait(for: "a healthy target in \(tg)", seconds: ctx.blueprint.servingWaitSeconds) {
            let states = try await api.targetStates(arn: arn)
            return (states.contains("healthy"), states.isEmpty ? "no targets" : states.joined(separator: ","))
        }
        return "\(tg) serves"
    }
}

/// The classic load balancer an earlier ccrun put in front of this group: detached and deleted
/// once the new load balancer's target group serves. Rollback recreates it as it was.
struct RetiredClassicLoadBalancerResource: CloudResource {
    let spec: AutoScalingSpec
    var name: String { spec.legacyLoadBalancer }
    var id: String { "retired-classic-load-balancer \(name)" }
    var phase: Phase { .images }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        guard try await ctx.api.classicLoadBalancer(name) != nil else { return .satisfied }
        let name = name, group = spec.name
        var calls = [servingWait(spec)]
        if try await ctx.api.autoScalingGroup(group)?.loadBalancerNames.contains(name) == true {
            calls.append(PlannedCall(.autoscaling, "DetachLoadBalancers", "\(group) \(name) (classic, replaced by \(spec.loadBalancer))") { ctx in
                try await ctx.api.detachLoadBalancers(group: group, names: [name])
                return "detached classic load balancer \(name) from \(group)"
            })
        }
        calls.append(PlannedCall(.elb, "DeleteLoadBalancer", "\(name) (classic, replaced by \(spec.loadBalancer))") { ctx in
            try await ctx.api.deleteClassicLoadBalancer(name)
            return "deleted classic load balancer \(name)"
        })
        return .calls(calls)
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        guard let lb = try await ctx.api.classicLoadBalancer(name) else { return .delete }
        let attached = try await ctx.api.autoScalingGroup(spec.name)?.loadBalancerNames.contains(name) == true
        return .recreateClassicLoadBalancer(lb, attachedTo: attached ? [spec.name] : [])
    }

    /// Nothing was created, so a `.delete` undo has nothing to delete.
    func deleteCreated(_ ctx: CloudContext) async throws -> [String] { [] }

    func restore(_ undo: CloudUndo, _ ctx: CloudContext) async throws -> [String]? {
        guard case let .recreateClassicLoadBalancer(lb, groups) = undo else { return nil }
        var done: [String] = []
        if try await ctx.api.classicLoadBalancer(lb.name) == nil {
            try await ctx.api.createClassicLoadBalancer(name: lb.name, listeners: lb.listeners, availabilityZones: lb.availabilityZones,
                                                        securityGroupIds: lb.securityGroupIds)
            if let target = lb.healthTarget { try await ctx.api.configureHealthCheck(name: lb.name, target: target) }
            done.append("recreated classic load balancer \(lb.name)")
        }
        for g in groups where try await ctx.api.autoScalingGroup(g).map({ !$0.loadBalancerNames.contains(lb.name) }) == true {
            try await ctx.api.attachLoadBalancers(group: g, names: [lb.name])
            done.append("attached \(lb.name) to \(g) again")
        }
        return done
    }

    func destroy(_ ctx: CloudContext) async throws -> [String] {
        guard try await ctx.api.classicLoadBalancer(name) != nil else { return [] }
        try await ctx.api.deleteClassicLoadBalancer(name)
        return ["deleted classic load balancer \(name)"]
    }
}

/// The launch configurations an earlier ccrun made for this group (`<prefix>-<image id>`):
/// deleted once the group launches from its template and the target group serves. Accounts
/// created since 2024-10-01 cannot create launch configurations at all; older ones can, so
/// rollback recreates them as they were.
struct RetiredLaunchConfigurationsResource: CloudResource {
    let spec: AutoScalingSpec
    var id: String { "retired-launch-configurations \(spec.legacyLaunchConfigurationPrefix)" }
    var phase: Phase { .images }

    func found(_ ctx: CloudContext) async throws -> [ObservedLaunchConfiguration] {
        try await ctx.api.launchConfigurations().filter { $0.name.hasPrefix(spec.legacyLaunchConfigurationPrefix + "-") }
    }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        let old = try await found(ctx)
        guard !old.isEmpty else { return .satisfied }
        let group = spec.name
        return .calls([servingWait(spec)] + old.map { lc in
            PlannedCall(.autoscaling, "DeleteLaunchConfiguration", "\(lc.name) (replaced by launch template \(spec.launchTemplate.name))") { ctx in
                if let g = try await ctx.api.autoScalingGroup(group), g.launchTemplateName == nil, g.launchConfigurationName == lc.name {
                    throw CloudError.unexpected("\(group) still launches from \(lc.name); its switch to the launch template did not happen")
                }
                try await ctx.api.deleteLaunchConfiguration(lc.name)
                return "deleted launch configuration \(lc.name)"
            }
        })
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo { .recreateLaunchConfigurations(try await found(ctx)) }

    func deleteCreated(_ ctx: CloudContext) async throws -> [String] { [] }

    func restore(_ undo: CloudUndo, _ ctx: CloudContext) async throws -> [String]? {
        guard case let .recreateLaunchConfigurations(lcs) = undo else { return nil }
        let have = Set(try await found(ctx).map(\.name))
        var done: [String] = []
        for lc in lcs where !have.contains(lc.name) {
            try await ctx.api.createLaunchConfiguration(name: lc.name, imageId: lc.imageId, instanceType: lc.instanceType,
                                                        securityGroupIds: lc.securityGroups, keyName: lc.keyName)
            done.append("recreated launch configuration \(lc.name)")
        }
        return done
    }

    /// Runs after the autoscaling groups are deleted (`Deployment.destroyOrder`): a launch
    /// configuration in use cannot be deleted.
    func destroy(_ ctx: CloudContext) async throws -> [String] {
        var done: [String] = []
        for lc in try await found(ctx) {
            try await ctx.api.deleteLaunchConfiguration(lc.name)
            done.append("deleted launch configuration \(lc.name)")
        }
        return done
    }
}
