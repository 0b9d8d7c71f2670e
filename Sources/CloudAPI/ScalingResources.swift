import Foundation

/// An image of a configured instance, found by name: moto (and a retried CreateImage on
/// AWS) accepts a duplicate name, so the lookup is ours, not the API's.
struct ImageResource: CloudResource {
    let spec: ImageSpec
    var id: String { "image \(spec.name)" }
    var phase: Phase { .images }

    func observe(_ ctx: CloudContext) async throws -> Observation {
        if let img = try await ctx.image(spec.name) {
            return img.state == "available" ? .satisfied : .change(["~ wait for image \(spec.name) (\(img.state))"])
        }
        guard try await ctx.instance(spec.instanceName) != nil else { return .depends("instance \(spec.instanceName) does not exist yet (run ccrun aws apply)") }
        return .change(["+ create image \(spec.name) of \(spec.instanceName)"])
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        Self.createdOrIrreversible(exists: try await ctx.image(spec.name) != nil, "image \(spec.name) existed (the run only waited for it)")
    }

    func apply(_ ctx: CloudContext) async throws -> [String] {
        var done: [String] = []
        if try await ctx.image(spec.name) == nil {
            guard let inst = try await ctx.instance(spec.instanceName) else { throw CloudError.unexpected("instance \(spec.instanceName) does not exist") }
            let imageId = try await ctx.api.createImage(instanceId: inst.id, name: spec.name, description: "ccrun image of \(spec.instanceName)",
                                                        reboot: ctx.blueprint.imageReboot)
            done.append("created image \(spec.name) \(imageId)")
        }
        let api = ctx.api, name = spec.name
        try await ctx.wait(for: "image \(name) to be available", seconds: 3600) {
            let s = try await api.images(named: name).first?.state ?? "missing"
            return (s == "available", s)
        }
        return done
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

    func observe(_ ctx: CloudContext) async throws -> Observation {
        guard let inst = try await ctx.instance(instanceName) else { return .depends("instance \(instanceName) does not exist yet") }
        return try await ctx.api.terminationProtection(instanceId: inst.id) ? .satisfied : .change(["+ termination protection on \(instanceName)"])
    }
    func undo(_ ctx: CloudContext) async throws -> CloudUndo { .protectionOff }

    /// Turns protection off again; that is all the undo of "turn it on" is.
    func restore(_ undo: CloudUndo, _ ctx: CloudContext) async throws -> [String]? {
        guard undo == .protectionOff else { return nil }
        return try await destroy(ctx)
    }

    func apply(_ ctx: CloudContext) async throws -> [String] {
        guard let inst = try await ctx.instance(instanceName) else { throw CloudError.unexpected("instance \(instanceName) does not exist") }
        if try await ctx.api.terminationProtection(instanceId: inst.id) { return [] }
        try await ctx.api.setTerminationProtection(instanceId: inst.id, true)
        return ["termination protection on \(instanceName) \(inst.id)"]
    }
    /// Destroy must lift it first, or TerminateInstances refuses.
    func destroy(_ ctx: CloudContext) async throws -> [String] {
        guard let inst = try await ctx.instance(instanceName), try await ctx.api.terminationProtection(instanceId: inst.id) else { return [] }
        try await ctx.api.setTerminationProtection(instanceId: inst.id, false)
        return ["termination protection off on \(instanceName) \(inst.id)"]
    }
}

/// A classic load balancer with its listener, group and health check.
struct LoadBalancerResource: CloudResource {
    let spec: LoadBalancerSpec
    var id: String { "load-balancer \(spec.name)" }
    var phase: Phase { .images }

    func observe(_ ctx: CloudContext) async throws -> Observation {
        guard let lb = try await ctx.api.loadBalancer(spec.name) else {
            return .change(["+ create load balancer \(spec.name) (\(spec.listeners.map(\.text).joined(separator: ", ")), group \(spec.securityGroup), health \(spec.healthTarget))"])
        }
        var lines: [String] = []
        let have = Set(lb.listeners), want = Set(spec.listeners)
        for l in want.subtracting(have).sorted() { lines.append("+ \(spec.name) listener \(l.text)") }
        for l in have.subtracting(want).sorted() { lines.append("- \(spec.name) listener \(l.text)") }
        let gid = try await ctx.groupId(spec.securityGroup)
        if gid == nil || lb.securityGroupIds != [gid!] { lines.append("~ \(spec.name) security groups -> [\(spec.securityGroup)]") }
        if lb.healthTarget != spec.healthTarget { lines.append("~ \(spec.name) health check \(lb.healthTarget ?? "none") -> \(spec.healthTarget)") }
        return lines.isEmpty ? .satisfied : .change(lines)
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        Self.createdOrIrreversible(exists: try await ctx.api.loadBalancer(spec.name) != nil,
                                   "load balancer \(spec.name) existed; its listeners, group or health check were changed in place")
    }

    func apply(_ ctx: CloudContext) async throws -> [String] {
        let gid = try await ctx.requireGroupId(spec.securityGroup)
        var done: [String] = []
        guard let lb = try await ctx.api.loadBalancer(spec.name) else {
            try await ctx.api.createLoadBalancer(name: spec.name, listeners: spec.listeners, availabilityZones: [ctx.blueprint.availabilityZone], securityGroupIds: [gid])
            try await ctx.api.configureHealthCheck(name: spec.name, target: spec.healthTarget)
            return ["created load balancer \(spec.name)", "health check \(spec.healthTarget)"]
        }
        let have = Set(lb.listeners), want = Set(spec.listeners)
        let extra = have.subtracting(want)
        if !extra.isEmpty { try await ctx.api.deleteListeners(name: spec.name, ports: extra.map(\.port)); done.append("removed listeners \(extra.map(\.text))") }
        let missing = want.subtracting(have)
        if !missing.isEmpty { try await ctx.api.createListeners(name: spec.name, listeners: missing.sorted()); done.append("added listeners \(missing.map(\.text))") }
        if lb.securityGroupIds != [gid] { try await ctx.api.applySecurityGroups(name: spec.name, groupIds: [gid]); done.append("set group \(spec.securityGroup)") }
        if lb.healthTarget != spec.healthTarget { try await ctx.api.configureHealthCheck(name: spec.name, target: spec.healthTarget); done.append("health check \(spec.healthTarget)") }
        return done
    }

    func destroy(_ ctx: CloudContext) async throws -> [String] {
        guard try await ctx.api.loadBalancer(spec.name) != nil else { return [] }
        try await ctx.api.deleteLoadBalancer(spec.name)
        return ["deleted load balancer \(spec.name)"]
    }
}

/// The launch configuration of one autoscaling group: `<prefix>-<image id>`, so a new image
/// means a new configuration (they are immutable) and the old ones go on destroy.
struct LaunchConfigurationResource: CloudResource {
    let spec: AutoScalingSpec
    var id: String { "launch-configuration \(spec.launchConfigurationPrefix)" }
    var phase: Phase { .images }

    func name(imageId: String) -> String { "\(spec.launchConfigurationPrefix)-\(imageId)" }

    func observe(_ ctx: CloudContext) async throws -> Observation {
        guard let img = try await ctx.image(spec.imageName) else { return .depends("image \(spec.imageName) does not exist yet") }
        let n = name(imageId: img.id)
        guard let lc = try await ctx.api.launchConfigurations().first(where: { $0.name == n }) else {
            return .change(["+ create launch configuration \(n) (\(spec.instanceType), groups \(spec.groups.joined(separator: ",")))"])
        }
        let ids = try await ctx.groupIds()
        if Set(lc.securityGroups) != Set(spec.groups.compactMap { ids[$0] }) || lc.instanceType != spec.instanceType {
            return .change(["~ launch configuration \(n) differs (groups/type); delete it to have it recreated"])
        }
        return .satisfied
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        guard let img = try await ctx.image(spec.imageName) else { return .delete }
        let n = name(imageId: img.id)
        return Self.createdOrIrreversible(exists: try await ctx.api.launchConfigurations().contains { $0.name == n },
                                          "launch configuration \(n) existed")
    }

    /// Only the configuration of the current image: older ones were made by earlier runs.
    func deleteCreated(_ ctx: CloudContext) async throws -> [String] {
        guard let img = try await ctx.image(spec.imageName) else { return [] }
        let n = name(imageId: img.id)
        guard try await ctx.api.launchConfigurations().contains(where: { $0.name == n }) else { return [] }
        try await ctx.api.deleteLaunchConfiguration(n)
        return ["deleted launch configuration \(n)"]
    }

    func apply(_ ctx: CloudContext) async throws -> [String] {
        guard let img = try await ctx.image(spec.imageName) else { throw CloudError.unexpected("image \(spec.imageName) does not exist") }
        let n = name(imageId: img.id)
        if try await ctx.api.launchConfigurations().contains(where: { $0.name == n }) { return [] }
        let ids = try await ctx.groupIds()
        let gids = try spec.groups.map { g -> String in
            guard let id = ids[g] else { throw CloudError.unexpected("security group \(g) does not exist") }
            return id
        }
        do {
            try await ctx.api.createLaunchConfiguration(name: n, imageId: img.id, instanceType: spec.instanceType, securityGroupIds: gids, keyName: ctx.blueprint.keyName)
        } catch let e as CloudError where e.code == "AlreadyExists" { return ["launch configuration \(n) already existed"] }
        return ["created launch configuration \(n)"]
    }

    func destroy(_ ctx: CloudContext) async throws -> [String] {
        var done: [String] = []
        for lc in try await ctx.api.launchConfigurations() where lc.name.hasPrefix(spec.launchConfigurationPrefix + "-") {
            try await ctx.api.deleteLaunchConfiguration(lc.name)
            done.append("deleted launch configuration \(lc.name)")
        }
        return done
    }
}

/// An autoscaling group on its launch configuration, attached to its load balancer, with the
/// inventory's sizes and scaling policy.
struct AutoScalingGroupResource: CloudResource {
    let spec: AutoScalingSpec
    var id: String { "autoscaling-group \(spec.name)" }
    var phase: Phase { .images }

    func lcName(_ ctx: CloudContext) async throws -> String? {
        guard let img = try await ctx.image(spec.imageName) else { return nil }
        return LaunchConfigurationResource(spec: spec).name(imageId: img.id)
    }

    func observe(_ ctx: CloudContext) async throws -> Observation {
        guard let lc = try await lcName(ctx) else { return .depends("image \(spec.imageName) does not exist yet") }
        var lines: [String] = []
        if let g = try await ctx.api.autoScalingGroup(spec.name) {
            if g.launchConfigurationName != lc { lines.append("~ \(spec.name) launch configuration \(g.launchConfigurationName ?? "none") -> \(lc)") }
            if (g.min, g.max, g.desired) != (spec.min, spec.max, spec.desired) {
                lines.append("~ \(spec.name) min/max/desired \(g.min)/\(g.max)/\(g.desired) -> \(spec.min)/\(spec.max)/\(spec.desired)")
            }
            if !g.loadBalancerNames.contains(spec.loadBalancer) { lines.append("+ attach \(spec.name) to load balancer \(spec.loadBalancer)") }
        } else {
            lines.append("+ create autoscaling group \(spec.name) (\(lc), \(spec.min)/\(spec.max)/\(spec.desired), load balancer \(spec.loadBalancer))")
        }
        if let p = spec.policy {
            let have = try await ctx.api.autoScalingGroup(spec.name) == nil ? nil : try await ctx.api.policies(group: spec.name).first { $0.name == p.name }
            if have == nil || have!.adjustmentType != p.adjustmentType || have!.scalingAdjustment != p.adjustment || have!.cooldown != p.cooldown {
                lines.append("+ scaling policy \(p.name) (\(p.adjustmentType) \(p.adjustment), cooldown \(p.cooldown) s)")
            }
        }
        return lines.isEmpty ? .satisfied : .change(lines)
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        Self.createdOrIrreversible(exists: try await ctx.api.autoScalingGroup(spec.name) != nil,
                                   "autoscaling group \(spec.name) existed; its sizes, launch configuration, load balancer or policy were changed")
    }

    func apply(_ ctx: CloudContext) async throws -> [String] {
        guard let lc = try await lcName(ctx) else { throw CloudError.unexpected("image \(spec.imageName) does not exist") }
        var done: [String] = []
        if let g = try await ctx.api.autoScalingGroup(spec.name) {
            if g.launchConfigurationName != lc || (g.min, g.max, g.desired) != (spec.min, spec.max, spec.desired) {
                try await ctx.api.updateAutoScalingGroup(name: spec.name, launchConfiguration: lc, min: spec.min, max: spec.max, desired: spec.desired)
                done.append("updated \(spec.name)")
            }
            if !g.loadBalancerNames.contains(spec.loadBalancer) {
                try await ctx.api.attachLoadBalancers(group: spec.name, names: [spec.loadBalancer]); done.append("attached \(spec.loadBalancer)")
            }
        } else {
            do {
                try await ctx.api.createAutoScalingGroup(name: spec.name, launchConfiguration: lc, min: spec.min, max: spec.max, desired: spec.desired,
                                                         availabilityZones: [ctx.blueprint.availabilityZone], loadBalancers: [spec.loadBalancer],
                                                         gracePeriod: spec.gracePeriod)
                done.append("created autoscaling group \(spec.name)")
            } catch let e as CloudError where e.code == "AlreadyExists" { done.append("\(spec.name) already existed") }
        }
        if let p = spec.policy {
            let have = try await ctx.api.policies(group: spec.name).first { $0.name == p.name }
            if have == nil || have!.adjustmentType != p.adjustmentType || have!.scalingAdjustment != p.adjustment || have!.cooldown != p.cooldown {
                try await ctx.api.putScalingPolicy(group: spec.name, name: p.name, adjustmentType: p.adjustmentType, adjustment: p.adjustment, cooldown: p.cooldown)
                done.append("scaling policy \(p.name)")
            }
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
