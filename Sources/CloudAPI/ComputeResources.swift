import Foundation

/// The RDS MySQL instance in cc-db at the pinned engine version, waited for until available.
/// Its endpoint is an output.
struct DatabaseResource: CloudResource {
    let spec: DatabaseSpec
    var id: String { "rds \(spec.identifier)" }
    var phase: Phase { .base }

    /// The version RDS should move to, nil when it already runs the pinned one ("8.4.3" runs
    /// "8.4"). RDS upgrades but never downgrades, so a newer running version is an error.
    func versionChange(running: String) throws -> (to: String, major: Bool)? {
        let want = spec.engineVersion
        if running == want || running.hasPrefix(want + ".") { return nil }
        let have = MySQLVersion.components(running), pinned = MySQLVersion.components(want)
        guard have.lexicographicallyPrecedes(pinned) else {
            throw CloudError.unexpected("RDS \(spec.identifier) runs MySQL \(running), newer than the inventory's aws.rds.engineVersion \(want): "
                                        + "RDS cannot downgrade; pin \(running.split(separator: ".").prefix(2).joined(separator: ".")) instead")
        }
        return (want, Array(have.prefix(2)) != Array(pinned.prefix(2)))
    }

    func waitCall(_ now: String) -> PlannedCall {
        let spec = spec
        return PlannedCall(.rds, "DescribeDBInstances", "wait until \(spec.identifier) is available (now \(now))") { ctx in
            let api = ctx.api, ident = spec.identifier
            try await ctx.wait(for: "RDS \(ident) to be available", seconds: spec.waitSeconds) {
                let s = try await api.database(ident)?.status ?? "missing"
                return (s == "available", s)
            }
            return "RDS \(ident) available"
        }
    }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        let spec = spec
        // Resolved again when the call runs: on a fresh account the group is made earlier in the same apply.
        let gid = try await ctx.groupId(spec.securityGroup)
        guard let db = try await ctx.api.database(spec.identifier) else {
            let summary = "\(spec.identifier) (\(spec.engine) \(spec.engineVersion), \(spec.instanceClass), \(spec.allocatedStorage) GiB, "
                + "user \(spec.masterUser), database \(spec.dbName), group \(spec.securityGroup))"
            return .calls([
                PlannedCall(.rds, "CreateDBInstance", summary) { ctx in
                    do {
                        try await ctx.api.createDatabase(spec, securityGroupId: try await ctx.requireGroupId(spec.securityGroup))
                        return "created RDS \(spec.identifier) (\(spec.engine) \(spec.engineVersion))"
                    } catch let e as CloudError where e.code == "DBInstanceAlreadyExists" || e.code == "DBInstanceAlreadyExistsFault" {
                        return "RDS \(spec.identifier) already existed"
                    }
                },
                waitCall("creating"),
            ])
        }
        let cls = db.instanceClass != spec.instanceClass ? spec.instanceClass : nil
        let storage = db.allocatedStorage < spec.allocatedStorage ? spec.allocatedStorage : nil
        // The group's id is read again when the call runs.
        let moveGroup = gid == nil || db.securityGroupIds != [gid!]
        let version = try versionChange(running: db.engineVersion)
        guard cls != nil || storage != nil || moveGroup || version != nil else {
            return db.status == "available" ? .satisfied : .calls([waitCall(db.status)])
        }
        var what: [String] = []
        if let cls { what.append("class \(db.instanceClass) -> \(cls)") }
        if let storage { what.append("storage \(db.allocatedStorage) -> \(storage) GiB") }
        if moveGroup { what.append("security groups -> [\(spec.securityGroup)]") }
        if let version { what.append("EngineVersion \(db.engineVersion) -> \(version.to)" + (version.major ? " (AllowMajorVersionUpgrade)" : "")) }
        let changes = what.joined(separator: ", ")
        // RDS refuses a modify while the instance is busy (creating, modifying, backing-up).
        return .calls((db.status == "available" ? [] : [waitCall(db.status)]) + [
            PlannedCall(.rds, "ModifyDBInstance", "\(spec.identifier) (\(changes), ApplyImmediately)") { ctx in
                let groupIds = moveGroup ? [try await ctx.requireGroupId(spec.securityGroup)] : nil
                try await ctx.api.modifyDatabase(spec.identifier, instanceClass: cls, allocatedStorage: storage, securityGroupIds: groupIds,
                                                 engineVersion: version?.to, majorUpgrade: version?.major ?? false)
                return "modified RDS \(spec.identifier): \(changes)"
            },
            waitCall("modifying"),
        ])
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        Self.createdOrIrreversible(exists: try await ctx.api.database(spec.identifier) != nil,
                                   "RDS \(spec.identifier) existed; its class, storage, security groups or engine version were changed in place")
    }

    func destroy(_ ctx: CloudContext) async throws -> [String] {
        guard let db = try await ctx.api.database(spec.identifier), db.status != "deleting" else { return [] }
        try await ctx.api.deleteDatabase(spec.identifier)
        let api = ctx.api, ident = spec.identifier
        try await ctx.wait(for: "RDS \(ident) to be deleted", seconds: spec.waitSeconds) {
            let s = try await api.database(ident)?.status
            return (s == nil, s ?? "gone")
        }
        return ["deleted RDS \(spec.identifier)"]
    }
}

/// One EC2 instance, found by its Name tag; created with the tag in the same call, so a run
/// killed right after RunInstances still finds it next time.
struct InstanceResource: CloudResource {
    let spec: InstanceSpec
    var id: String { "instance \(spec.name)" }
    var phase: Phase { .base }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        let spec = spec
        guard let i = try await ctx.instance(spec.name) else {
            let summary = "\(spec.name) (\(spec.imageId), \(spec.instanceType), ip \(spec.privateIp ?? "any"), groups \(spec.groups.joined(separator: ",")))"
            return .calls([PlannedCall(.ec2, "RunInstances", summary) { ctx in
                let groupIds = try await ctx.requireGroupIds(spec.groups)
                let newId = try await ctx.api.runInstance(name: spec.name, imageId: spec.imageId, instanceType: spec.instanceType, privateIp: spec.privateIp,
                                                          groupIds: groupIds, availabilityZone: ctx.blueprint.availabilityZone,
                                                          keyName: ctx.blueprint.keyName, tags: Blueprint.managedTag)
                let api = ctx.api, name = spec.name
                try await ctx.wait(for: "instance \(name) to run", seconds: 900) {
                    let s = try await api.instances(named: name).first?.state ?? "missing"
                    return (s == "running", s)
                }
                return "ran instance \(spec.name) \(newId)"
            }])
        }
        if let ip = spec.privateIp, i.privateIp != ip {
            throw CloudError.unexpected("instance \(spec.name) \(i.id) has private IP \(i.privateIp ?? "none"), the inventory says \(ip): a private IP cannot be changed, terminate it or fix the inventory")
        }
        // No call starts a stopped instance (an operator stopped it): said, not planned.
        if i.state == "stopped" || i.state == "stopping" { ctx.log("instance \(spec.name) \(i.id) is \(i.state): ccrun does not start it; start it by hand") }
        let ids = try await ctx.groupIds()
        let want = Set(spec.groups.compactMap { ids[$0] })
        guard want.count != spec.groups.count || Set(i.groupIds) != want else { return .satisfied }
        return .calls([PlannedCall(.ec2, "ModifyInstanceAttribute", "\(spec.name) \(i.id) security groups -> \(spec.groups.joined(separator: ","))") { ctx in
            try await ctx.api.setInstanceGroups(instanceId: i.id, groupIds: try await ctx.requireGroupIds(spec.groups))
            return "set groups of \(spec.name) \(i.id)"
        }])
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        Self.createdOrIrreversible(exists: try await ctx.instance(spec.name) != nil, "instance \(spec.name) existed; its security groups were changed")
    }

    func destroy(_ ctx: CloudContext) async throws -> [String] {
        let found = try await ctx.api.instances(named: spec.name)
        guard !found.isEmpty else { return [] }
        try await ctx.api.terminateInstances(found.map(\.id))
        return ["terminated \(spec.name) \(found.map(\.id).joined(separator: ","))"]
    }
}

/// The NFS server's data volume, created in the instance's zone and attached as /dev/xvdf.
struct VolumeResource: CloudResource {
    let spec: VolumeSpec
    var id: String { "volume \(spec.name)" }
    var phase: Phase { .base }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        let spec = spec
        let v = try await ctx.api.volumes(named: spec.name).first
        let inst = try await ctx.instance(spec.instanceName)
        if let v, v.size < spec.sizeGiB {
            ctx.log("volume \(spec.name) is \(v.size) GiB, the inventory says \(spec.sizeGiB): ccrun does not resize volumes")
        }
        var calls: [PlannedCall] = []
        if v == nil {
            calls.append(PlannedCall(.ec2, "CreateVolume", "\(spec.name) (\(spec.sizeGiB) GiB \(spec.volumeType))") { ctx in
                guard let inst = try await ctx.instance(spec.instanceName) else { throw CloudError.unexpected("instance \(spec.instanceName) does not exist") }
                let vid = try await ctx.api.createVolume(name: spec.name, availabilityZone: inst.availabilityZone ?? ctx.blueprint.availabilityZone,
                                                         sizeGiB: spec.sizeGiB, volumeType: spec.volumeType, tags: Blueprint.managedTag)
                let api = ctx.api, name = spec.name
                try await ctx.wait(for: "volume \(name) to be available", seconds: 600) {
                    let s = try await api.volumes(named: name).first?.state ?? "missing"
                    return (s == "available" || s == "in-use", s)
                }
                return "created volume \(spec.name) \(vid)"
            })
        }
        let attached = v?.attachments.contains { $0.instanceId == inst?.id && $0.device == spec.device && $0.state != "detaching" } ?? false
        if !attached {
            calls.append(PlannedCall(.ec2, "AttachVolume", "\(spec.name) to \(spec.instanceName) as \(spec.device)") { ctx in
                guard let inst = try await ctx.instance(spec.instanceName) else { throw CloudError.unexpected("instance \(spec.instanceName) does not exist") }
                guard let vol = try await ctx.api.volumes(named: spec.name).first else { throw CloudError.unexpected("volume \(spec.name) vanished") }
                if vol.attachments.contains(where: { $0.instanceId == inst.id && $0.device == spec.device }) { return "\(spec.name) already attached" }
                if let other = vol.attachments.first {
                    throw CloudError.unexpected("volume \(spec.name) \(vol.id) is attached to \(other.instanceId) as \(other.device); detach it by hand first")
                }
                try await ctx.api.attachVolume(volumeId: vol.id, instanceId: inst.id, device: spec.device)
                return "attached \(spec.name) to \(spec.instanceName) as \(spec.device)"
            })
        }
        return calls.isEmpty ? .satisfied : .calls(calls)
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        Self.createdOrIrreversible(exists: !(try await ctx.api.volumes(named: spec.name).isEmpty),
                                   "volume \(spec.name) existed; ccrun attached it to \(spec.instanceName) as \(spec.device) (detach it by hand to undo)")
    }

    func destroy(_ ctx: CloudContext) async throws -> [String] {
        var done: [String] = []
        for v in try await ctx.api.volumes(named: spec.name) {
            for a in v.attachments {
                try await ctx.api.detachVolume(volumeId: v.id, instanceId: a.instanceId, device: a.device)
                let api = ctx.api, name = spec.name
                try await ctx.wait(for: "volume \(name) to detach", seconds: 600) {
                    let s = try await api.volumes(named: name).first { $0.id == v.id }
                    return (s == nil || s!.attachments.isEmpty, s?.state ?? "gone")
                }
            }
            try await ctx.api.deleteVolume(volumeId: v.id)
            done.append("deleted volume \(spec.name) \(v.id)")
        }
        return done
    }
}
