import Foundation

/// An image of a configured instance, found by name: moto (and a retried CreateImage on
/// AWS) accepts a duplicate name, so the lookup is ours, not the API's.
struct ImageResource: CloudResource {
    let spec: ImageSpec
    var id: String { "image \(spec.name)" }
    var phase: Phase { .images }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        let spec = spec
        let wait = { (now: String) in
            PlannedCall(.ec2, "DescribeImages", "wait until image \(spec.name) is available (now \(now))") { ctx in
                let api = ctx.api, name = spec.name
                try await ctx.wait(for: "image \(name) to be available", seconds: 3600) {
                    let s = try await api.images(named: name).first?.state ?? "missing"
                    return (s == "available", s)
                }
                return "image \(spec.name) available"
            }
        }
        if let img = try await ctx.image(spec.name) {
            return img.state == "available" ? .satisfied : .calls([wait(img.state)])
        }
        guard try await ctx.instance(spec.instanceName) != nil else { return .depends("instance \(spec.instanceName) does not exist yet (run ccrun aws apply)") }
        return .calls([
            PlannedCall(.ec2, "CreateImage", "\(spec.name) of \(spec.instanceName)") { ctx in
                guard let inst = try await ctx.instance(spec.instanceName) else { throw CloudError.unexpected("instance \(spec.instanceName) does not exist") }
                let imageId = try await ctx.api.createImage(instanceId: inst.id, name: spec.name, description: "ccrun image of \(spec.instanceName)",
                                                            reboot: ctx.blueprint.imageReboot)
                return "created image \(spec.name) \(imageId)"
            },
            wait("creating"),
        ])
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        Self.createdOrIrreversible(exists: try await ctx.image(spec.name) != nil, "image \(spec.name) existed (the run only waited for it)")
    }

    func destroy(_ ctx: CloudContext) async throws -> [String] {
        var done: [String] = []
        for img in try await ctx.api.images(named: spec.name) {
            try await ctx.api.deregisterImage(img.id)
            for snap in img.snapshotIds { try? await ctx.api.deleteSnapshot(snap) }
            done.append("deregistered image \(spec.name) \(img.id)")
        }
        return done
    }
}

/// The guide's "turn on termination protection" for the NFS server.
struct TerminationProtectionResource: CloudResource {
    let instanceName: String
    var id: String { "termination-protection \(instanceName)" }
    var phase: Phase { .images }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        guard let inst = try await ctx.instance(instanceName) else { return .depends("instance \(instanceName) does not exist yet") }
        if try await ctx.api.terminationProtection(instanceId: inst.id) { return .satisfied }
        let name = instanceName
        return .calls([PlannedCall(.ec2, "ModifyInstanceAttribute", "\(name) \(inst.id) DisableApiTermination=true") { ctx in
            try await ctx.api.setTerminationProtection(instanceId: inst.id, true)
            return "termination protection on \(name) \(inst.id)"
        }])
    }
    func undo(_ ctx: CloudContext) async throws -> CloudUndo { .protectionOff }

    /// Turns protection off again; that is all the undo of "turn it on" is.
    func restore(_ undo: CloudUndo, _ ctx: CloudContext) async throws -> [String]? {
        guard undo == .protectionOff else { return nil }
        return try await destroy(ctx)
    }

    /// Destroy must lift it first, or TerminateInstances refuses.
    func destroy(_ ctx: CloudContext) async throws -> [String] {
        guard let inst = try await ctx.instance(instanceName), try await ctx.api.terminationProtection(instanceId: inst.id) else { return [] }
        try await ctx.api.setTerminationProtection(instanceId: inst.id, false)
        return ["termination protection off on \(instanceName) \(inst.id)"]
    }
}

/// A launch template with one version per image (versions are immutable): a new image, or
/// new groups or instance type, means a new version; the autoscaling group names the version.
struct LaunchTemplateResource: CloudResource {
    let spec: LaunchTemplateSpec
    var id: String { "launch-template \(spec.name)" }
    var phase: Phase { .images }

    /// The version for the current image and settings, if the template has one.
    static func matchingVersion(_ spec: LaunchTemplateSpec, _ ctx: CloudContext) async throws -> Int? {
        guard let img = try await ctx.image(spec.imageName), try await ctx.api.launchTemplate(spec.name) != nil else { return nil }
        let ids = try await ctx.groupIds()
        let groups = Set(spec.groups.compactMap { ids[$0] })
        let keyName = ctx.blueprint.keyName
        return try await ctx.api.launchTemplateVersions(spec.name).filter {
            $0.imageId == img.id && $0.instanceType == spec.instanceType && Set($0.groupIds) == groups && $0.keyName == keyName
        }.map(\.number).max()
    }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        guard let img = try await ctx.image(spec.imageName) else { return .depends("image \(spec.imageName) does not exist yet") }
        if try await Self.matchingVersion(spec, ctx) != nil { return .satisfied }
        let exists = try await ctx.api.launchTemplate(spec.name) != nil
        let summary = "\(spec.name) (\(exists ? "new version: " : "")\(img.id) of \(spec.imageName), \(spec.instanceType), groups \(spec.groups.joined(separator: ",")))"
        let spec = spec
        return .calls([PlannedCall(.ec2, exists ? "CreateLaunchTemplateVersion" : "CreateLaunchTemplate", summary) { ctx in
            let gids = try await ctx.requireGroupIds(spec.groups)
            let version = exists
                ? try await ctx.api.createLaunchTemplateVersion(name: spec.name, imageId: img.id, instanceType: spec.instanceType, groupIds: gids, keyName: ctx.blueprint.keyName)
                : try await ctx.api.createLaunchTemplate(name: spec.name, imageId: img.id, instanceType: spec.instanceType, groupIds: gids, keyName: ctx.blueprint.keyName)
            return "launch template \(spec.name) version \(version) for \(img.id)"
        }])
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        Self.createdOrIrreversible(exists: try await Self.matchingVersion(spec, ctx) != nil, "launch template \(spec.name) already had a version for the image")
    }

    /// The version the run made (the one matching the image and settings now) only; the whole
    /// template when it has no other version (a template's default version cannot be deleted
    /// on its own, and a run that made the template made its default).
    func deleteCreated(_ ctx: CloudContext) async throws -> [String] {
        guard let t = try await ctx.api.launchTemplate(spec.name), let mine = try await Self.matchingVersion(spec, ctx) else { return [] }
        let versions = try await ctx.api.launchTemplateVersions(spec.name)
        if mine == t.defaultVersion || versions.count == 1 { return try await destroy(ctx) }
        try await ctx.api.deleteLaunchTemplateVersions(spec.name, versions: [mine])
        return ["deleted launch template \(spec.name) version \(mine)"]
    }

    func destroy(_ ctx: CloudContext) async throws -> [String] {
        guard try await ctx.api.launchTemplate(spec.name) != nil else { return [] }
        try await ctx.api.deleteLaunchTemplate(spec.name)
        return ["deleted launch template \(spec.name)"]
    }
}

/// An autoscaling group launching from its launch template's version of the current image,
/// with the inventory's sizes, registering its instances in its target group.
struct AutoScalingGroupResource: CloudResource {
    let spec: AutoScalingSpec
    var id: String { "autoscaling-group \(spec.name)" }
    var phase: Phase { .images }

    /// The launch source at the moment a call runs: the launch template resource ran before.
    func launch(_ ctx: CloudContext) async throws -> CloudAPI.LaunchSource {
        guard let v = try await LaunchTemplateResource.matchingVersion(spec.launchTemplate, ctx) else {
            throw CloudError.unexpected("launch template \(spec.launchTemplate.name) has no version for image \(spec.launchTemplate.imageName)")
        }
        return .template(name: spec.launchTemplate.name, version: String(v))
    }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        guard let img = try await ctx.image(spec.launchTemplate.imageName) else { return .depends("image \(spec.launchTemplate.imageName) does not exist yet") }
        let lt = spec.launchTemplate.name
        let version = try await LaunchTemplateResource.matchingVersion(spec.launchTemplate, ctx)
        let launchText = "launch template \(lt) version \(version.map(String.init) ?? "new (\(img.id))")"
        let sizes = "\(spec.min)/\(spec.max)/\(spec.desired)"
        let spec = spec
        guard let g = try await ctx.api.autoScalingGroup(spec.name) else {
            return .calls([PlannedCall(.autoscaling, "CreateAutoScalingGroup", "\(spec.name) (\(launchText), \(sizes), target group \(spec.targetGroup))") { ctx in
                let launch = try await self.launch(ctx)
                try await ctx.api.createAutoScalingGroup(name: spec.name, launch: launch, min: spec.min, max: spec.max, desired: spec.desired,
                                                         availabilityZones: [ctx.blueprint.availabilityZone],
                                                         targetGroupARNs: [try await ctx.requireTargetGroupArn(spec.targetGroup)],
                                                         gracePeriod: spec.gracePeriod, tags: Blueprint.managedTag)
                return "created autoscaling group \(spec.name)"
            }])
        }
        var calls: [PlannedCall] = []
        // AWS keeps one launch source per group (a template replaces a launch configuration);
        // moto keeps reporting the old launch configuration beside the template, so only the
        // template is compared.
        let onTemplate = g.launchTemplateName == lt && version.map(String.init) == g.launchTemplateVersion
        if !onTemplate || (g.min, g.max, g.desired) != (spec.min, spec.max, spec.desired) {
            let from = AutoScalingGroupState(g).launchText
            calls.append(PlannedCall(.autoscaling, "UpdateAutoScalingGroup", "\(spec.name) (\(from) -> \(launchText); \(g.min)/\(g.max)/\(g.desired) -> \(sizes))") { ctx in
                try await ctx.api.updateAutoScalingGroup(name: spec.name, launch: try await self.launch(ctx), min: spec.min, max: spec.max, desired: spec.desired)
                return "updated \(spec.name): \(launchText), \(sizes)"
            })
        }
        let tg = try await ctx.api.targetGroup(spec.targetGroup)
        if tg == nil || !g.targetGroupARNs.contains(tg!.arn) {
            calls.append(PlannedCall(.autoscaling, "AttachLoadBalancerTargetGroups", "\(spec.name) \(spec.targetGroup)") { ctx in
                try await ctx.api.attachTargetGroups(group: spec.name, arns: [try await ctx.requireTargetGroupArn(spec.targetGroup)])
                return "attached \(spec.name) to \(spec.targetGroup)"
            })
        }
        return .calls(calls)
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        guard let g = try await ctx.api.autoScalingGroup(spec.name) else { return .delete }
        return .autoScalingGroup(AutoScalingGroupState(g))
    }

    /// Puts the group back on what it launched from before (a launch configuration the
    /// migration's rollback recreated first, or another template version), its sizes, and
    /// detaches the target groups the run attached.
    func restore(_ undo: CloudUndo, _ ctx: CloudContext) async throws -> [String]? {
        guard case let .autoScalingGroup(before) = undo else { return nil }
        guard let g = try await ctx.api.autoScalingGroup(spec.name) else { return [] }
        var done: [String] = []
        if let launch = before.launch {
            try await ctx.api.updateAutoScalingGroup(name: spec.name, launch: launch, min: before.min, max: before.max, desired: before.desired)
            done.append("\(spec.name) back on \(before.launchText), \(before.min)/\(before.max)/\(before.desired)")
        }
        let added = g.targetGroupARNs.filter { !before.targetGroupARNs.contains($0) }
        if !added.isEmpty {
            try await ctx.api.detachTargetGroups(group: spec.name, arns: added)
            done.append("detached \(spec.name) from \(added.count) target group(s)")
        }
        return done
    }

    func destroy(_ ctx: CloudContext) async throws -> [String] {
        guard try await ctx.api.autoScalingGroup(spec.name) != nil else { return [] }
        try await ctx.api.deleteAutoScalingGroup(spec.name)
        let api = ctx.api, name = spec.name
        try await ctx.wait(for: "autoscaling group \(name) to be deleted", seconds: 1200) {
            (try await api.autoScalingGroup(name) == nil, "deleting")
        }
        return ["deleted autoscaling group \(spec.name) (and its instances and policies)"]
    }
}

/// The group's exact policy set: its target-tracking policy, which AWS drives with alarms it
/// creates; any other policy (the simple policies of earlier deployments, which no alarm ever
/// triggered) is deleted.
struct ScalingPolicyResource: CloudResource {
    let spec: AutoScalingSpec
    var id: String { "scaling-policy \(spec.scaling.name)" }
    var phase: Phase { .images }

    /// The policy as AWS will report it. The ALB request metric is labelled with the load
    /// balancer and target group ("app/<lb>/<id>/targetgroup/<tg>/<id>"), known once they exist.
    func wanted(_ ctx: CloudContext) async throws -> ObservedPolicy {
        var label: String?
        if spec.scaling.metric == .albRequests,
           let lb = try await ctx.api.loadBalancer(spec.loadBalancer), let tg = try await ctx.api.targetGroup(spec.targetGroup),
           let lbPart = lb.arn.range(of: "loadbalancer/").map({ String(lb.arn[$0.upperBound...]) }),
           let tgPart = tg.arn.range(of: "targetgroup/").map({ String(tg.arn[$0.lowerBound...]) }) {
            label = "\(lbPart)/\(tgPart)"
        }
        return ObservedPolicy(name: spec.scaling.name, type: "TargetTrackingScaling", metric: spec.scaling.metric.rawValue,
                              resourceLabel: label, targetValue: spec.scaling.target, warmup: spec.scaling.warmup)
    }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        guard try await ctx.image(spec.launchTemplate.imageName) != nil else { return .depends("image \(spec.launchTemplate.imageName) does not exist yet") }
        let have = try await ctx.api.autoScalingGroup(spec.name) == nil ? [] : try await ctx.api.policies(group: spec.name)
        let want = try await wanted(ctx)
        var calls: [PlannedCall] = []
        let group = spec.name, s = spec.scaling
        if !(have.first { $0.name == want.name }.map { $0.tracks(like: want) } ?? false) {
            calls.append(PlannedCall(.autoscaling, "PutScalingPolicy", "\(group) \(s.name) (target tracking \(s.metric.rawValue) = \(s.target), warm-up \(s.warmup) s)") { ctx in
                try await ctx.api.putScalingPolicy(group: group, try await self.wanted(ctx))
                return "scaling policy \(s.name) on \(group): \(s.metric.rawValue) = \(s.target)"
            })
        }
        for p in have where p.name != want.name {
            calls.append(PlannedCall(.autoscaling, "DeletePolicy", "\(group) \(p.name) (\(p.type) is not the inventory's policy)") { ctx in
                try await ctx.api.deletePolicy(group: group, name: p.name)
                return "deleted policy \(p.name) of \(group)"
            })
        }
        return .calls(calls)
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        .policies(try await ctx.api.autoScalingGroup(spec.name) == nil ? [] : try await ctx.api.policies(group: spec.name))
    }

    /// Deletes the policies the run added and puts back those it deleted or changed.
    func restore(_ undo: CloudUndo, _ ctx: CloudContext) async throws -> [String]? {
        guard case let .policies(before) = undo else { return nil }
        guard try await ctx.api.autoScalingGroup(spec.name) != nil else { return [] }
        let now = try await ctx.api.policies(group: spec.name)
        var done: [String] = []
        for p in now where !before.contains(where: { $0.name == p.name }) {
            try await ctx.api.deletePolicy(group: spec.name, name: p.name)
            done.append("deleted policy \(p.name) of \(spec.name)")
        }
        for p in before where !now.contains(p) {
            try await ctx.api.putScalingPolicy(group: spec.name, p)
            done.append("put back policy \(p.name) of \(spec.name)")
        }
        return done
    }

    func destroy(_ ctx: CloudContext) async throws -> [String] {
        guard try await ctx.api.autoScalingGroup(spec.name) != nil else { return [] }
        var done: [String] = []
        for p in try await ctx.api.policies(group: spec.name) {
            try await ctx.api.deletePolicy(group: spec.name, name: p.name)
            done.append("deleted policy \(p.name) of \(spec.name)")
        }
        return done
    }
}
