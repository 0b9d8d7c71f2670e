import LeanFoundation

/// A security group exists (empty at first): all groups are created before any rule, since
/// the guide's groups reference each other (cc-slave <-> cc-master).
struct SecurityGroupResource: CloudResource {
    let spec: SecurityGroupSpec
    var id: String { "security-group \(spec.name)" }
    var phase: Phase { .base }

    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        if try await ctx.groupId(spec.name) != nil { return .satisfied }
        let spec = spec
        return .calls([PlannedCall(.ec2, "CreateSecurityGroup", "\(spec.name) (\(spec.description))") { ctx in
            do {
                let gid = try await ctx.api.createSecurityGroup(name: spec.name, description: spec.description, tags: Blueprint.managedTag)
                await ctx.learnGroup(spec.name, id: gid)
                return "created security group \(spec.name) \(gid)"
            } catch let e as CloudError where e.code == "InvalidGroup.Duplicate" {
                // Created by a run that died before it could record it: it is state, not an error.
                await ctx.forgetGroups()
                return "security group \(spec.name) already existed"
            }
        }])
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        Self.createdOrIrreversible(exists: try await ctx.groupId(spec.name) != nil, "security group \(spec.name) existed")
    }

    func destroy(_ ctx: CloudContext) async throws -> [String] {
        guard let gid = try await ctx.groupId(spec.name) else { return [] }
        // Instances being terminated still hold the group for a while on real AWS.
        let api = ctx.api
        do {
            try await ctx.retrying(on: "DependencyViolation", "security group \(spec.name) still in use") { try await api.deleteSecurityGroup(id: gid) }
        } catch let e as CloudError where e.code == "InvalidGroup.NotFound" {}
        await ctx.forgetGroups()
        return ["deleted security group \(spec.name) \(gid)"]
    }
}

/// The exact inbound rule set of one group: missing rules are added, rules not in the guide's
/// table are revoked (a group is the table, nothing more).
struct SecurityGroupRulesResource: CloudResource {
    let spec: SecurityGroupSpec
    var id: String { "rules \(spec.name)" }
    var phase: Phase { .base }

    /// The rules present now, with group sources named by their managed group's name
    /// (an unmanaged group keeps its id).
    func current(_ ctx: CloudContext) async throws -> (groupId: String, rules: Set<IngressRule>)? {
        guard let gid = try await ctx.groupId(spec.name) else { return nil }
        let names = Dictionary(uniqueKeysWithValues: try await ctx.groupIds().map { ($0.value, $0.key) })
        guard let g = try await ctx.api.securityGroups(named: [spec.name]).first(where: { $0.id == gid }) else { return nil }
        var out = Set<IngressRule>()
        for p in g.ingress {
            let proto = p.proto == "6" ? "tcp" : p.proto == "17" ? "udp" : p.proto == "-1" ? "all" : p.proto
            for c in p.cidrs { out.insert(IngressRule(proto, p.from, p.to, .cidr(c))) }
            for s in p.groupIds { out.insert(IngressRule(proto, p.from, p.to, .group(names[s] ?? s))) }
        }
        return (gid, out)
    }

    func diff(_ ctx: CloudContext) async throws -> (missing: [IngressRule], extra: [IngressRule]) {
        let desired = Set(spec.rules)
        let have = try await current(ctx)?.rules ?? []
        return (desired.subtracting(have).sorted(), have.subtracting(desired).sorted())
    }

    func undo(_ ctx: CloudContext) async throws -> CloudUndo {
        let (missing, extra) = try await diff(ctx)
        return .rules(authorized: missing, revoked: extra)
    }

    /// Revokes the rules the run authorized and authorizes again those it revoked.
    func restore(_ undo: CloudUndo, _ ctx: CloudContext) async throws -> [String]? {
        guard case let .rules(authorized, revoked) = undo else { return nil }
        guard let (gid, have) = try await current(ctx) else { return [] }   // the group is gone: nothing to restore
        var done: [String] = []
        for r in authorized where have.contains(r) {
            done.append(try await revoke(r, from: gid, ctx))
        }
        for r in revoked where !have.contains(r) {
            try await authorize(r, on: gid, ctx)
            done.append("authorized \(spec.name): \(r) again")
        }
        return done
    }

    /// One call per rule: extra rules revoked, missing ones authorized. The group's id is read
    /// when the calls run (a plan of a fresh account names groups the apply creates first).
    func plan(_ ctx: CloudContext) async throws -> CallPlan {
        let (missing, extra) = try await diff(ctx)
        let this = self, name = spec.name
        let revokes = extra.map { r in
            PlannedCall(.ec2, "RevokeSecurityGroupIngress", "\(name): \(r)", undo: .exactly(.rules(authorized: [], revoked: [r]))) { ctx in
                try await this.revoke(r, from: try await ctx.requireGroupId(name), ctx)
            }
        }
        let authorizes = missing.map { r in
            PlannedCall(.ec2, "AuthorizeSecurityGroupIngress", "\(name): \(r)", undo: .exactly(.rules(authorized: [r], revoked: []))) { ctx in
                do {
                    try await this.authorize(r, on: try await ctx.requireGroupId(name), ctx)
                    return "authorized \(name): \(r)"
                } catch let e as CloudError where e.code == "InvalidPermission.Duplicate" {
                    return "\(name): \(r) already present"
                }
            }
        }
        return revokes.isEmpty && authorizes.isEmpty ? .satisfied : .calls(revokes + authorizes)
    }

    func sourceParams(_ ctx: CloudContext, _ r: IngressRule) async throws -> (cidr: String?, group: String?) {
        switch r.source {
        case let .cidr(c): return (c, nil)
        case let .group(g): return (nil, try await ctx.groupId(g) ?? g)
        }
    }

    /// Revokes one inbound rule of group `gid`; returns the report line. (Used by apply, destroy
    /// and rollback alike.)
    func revoke(_ r: IngressRule, from gid: String, _ ctx: CloudContext) async throws -> String {
        let s = try await sourceParams(ctx, r)
        try await ctx.api.revokeIngress(groupId: gid, proto: r.proto == "all" ? "-1" : r.proto, from: r.from, to: r.to, cidr: s.cidr, sourceGroupId: s.group)
        return "revoked \(spec.name): \(r)"
    }

    func authorize(_ r: IngressRule, on gid: String, _ ctx: CloudContext) async throws {
        let s = try await sourceParams(ctx, r)
        try await ctx.api.authorizeIngress(groupId: gid, proto: r.proto, from: r.from, to: r.to, cidr: s.cidr, sourceGroupId: s.group)
    }

    /// Revokes every inbound rule, so groups that reference each other can then be deleted.
    func destroy(_ ctx: CloudContext) async throws -> [String] {
        guard let (gid, rules) = try await current(ctx) else { return [] }
        var done: [String] = []
        for r in rules.sorted() {
            done.append(try await revoke(r, from: gid, ctx))
        }
        return done
    }
}
