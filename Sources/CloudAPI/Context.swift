import Foundation
import StepKit

/// When a resource is applied: `base` by `ccrun aws apply`; `images` (images, termination
/// protection, load balancers, launch configurations, autoscaling) by `ccrun aws images`,
/// after the host runbooks have configured the instances the images are made from.
public enum Phase: String, Codable, Sendable, CaseIterable {
    case base, images
}

/// Shared state of one run: the API, the blueprint, and ids learned along the way
/// (group name -> id), so resources refer to each other by name.
public actor CloudContext {
    public let api: CloudAPI
    public let blueprint: Blueprint
    /// Real sleeps between polls; tests against moto never wait since it answers at once.
    let log: @Sendable (String) -> Void
    private var groupIdCache: [String: String]?

    public init(api: CloudAPI, blueprint: Blueprint, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.api = api; self.blueprint = blueprint; self.log = log
    }

    public func note(_ s: String) { log(s) }

    /// Managed group name -> id for the groups that exist now.
    public func groupIds() async throws -> [String: String] {
        if let c = groupIdCache { return c }
        let names = blueprint.securityGroups.map(\.name)
        var map: [String: String] = [:]
        for g in try await api.securityGroups(named: names) where names.contains(g.name) { map[g.name] = g.id }
        groupIdCache = map
        return map
    }
    public func groupId(_ name: String) async throws -> String? { try await groupIds()[name] }
    public func requireGroupId(_ name: String) async throws -> String {
        guard let id = try await groupId(name) else { throw CloudError.unexpected("security group \(name) does not exist yet") }
        return id
    }
    /// Ids of managed groups, in order; an error names the first that does not exist.
    public func requireGroupIds(_ names: [String]) async throws -> [String] {
        let ids = try await groupIds()
        return try names.map { g in
            guard let id = ids[g] else { throw CloudError.unexpected("security group \(g) does not exist") }
            return id
        }
    }
    public func forgetGroups() { groupIdCache = nil }
    public func learnGroup(_ name: String, id: String) { groupIdCache?[name] = id }

    public func instance(_ name: String) async throws -> ObservedInstance? {
        let found = try await api.instances(named: name)
        if found.count > 1 {
            throw CloudError.unexpected("\(found.count) live instances are tagged Name=\(name) (\(found.map(\.id).joined(separator: ", "))): terminate the extra ones; ccrun manages exactly one")
        }
        return found.first
    }

    public func image(_ name: String) async throws -> ObservedImage? { try await api.images(named: name).first }

    /// The VPC the managed security groups are in: target groups and load balancers go there.
    public func vpcId() async throws -> String? {
        let names = blueprint.securityGroups.map(\.name)
        return try await api.securityGroups(named: names).first { names.contains($0.name) }?.vpcId
    }

    /// A target group's ARN, for calls that run after the group was created in the same apply.
    public func requireTargetGroupArn(_ name: String) async throws -> String {
        guard let tg = try await api.targetGroup(name) else { throw CloudError.unexpected("target group \(name) does not exist yet") }
        return tg.arn
    }

    /// Runs `body` again while AWS answers `code` (an object still in use while something it
    /// depends on is being deleted), every `pollSeconds`, for at most `seconds`.
    public func retrying<T: Sendable>(on code: String, _ what: String, seconds: Int = 600, _ body: @Sendable () async throws -> T) async throws -> T {
        let deadline = Date().addingTimeInterval(Double(seconds))
        while true {
            do {
                return try await body()
            } catch let e as CloudError where e.code == code && Date() < deadline {
                log("\(what) (\(code)); retrying")
                try await Task.sleep(nanoseconds: UInt64(blueprint.pollSeconds * 1_000_000_000))
            }
        }
    }

    /// Polls until `check` says done, every `pollSeconds`, for at most `seconds`.
    public func wait(for what: String, seconds: Int, _ check: @Sendable () async throws -> (done: Bool, state: String)) async throws {
        let start = Date()
        var last = ""
        while true {
            let (done, state) = try await check()
            if done { return }
            last = state
            if Date().timeIntervalSince(start) > Double(seconds) { throw CloudError.timedOut(what: what, seconds: seconds, lastState: last) }
            log("waiting for \(what) (\(state))")
            try await Task.sleep(nanoseconds: UInt64(blueprint.pollSeconds * 1_000_000_000))
        }
    }
}

/// One typed piece of the deployment: it can say how the account differs from the blueprint,
/// make it match, and delete what it made. Every method is idempotent and finds its AWS
/// object by name or Name tag, never by an id remembered from an earlier run, so a killed run
/// is resumed by simply running again.
public protocol CloudResource: Sendable {
    /// Unique, stable: the journal's step id ("security-group cc-web-lb").
    var id: String { get }
    var phase: Phase { get }
    /// The exact API calls that make the account match (mgmt's CheckApply): `ccrun aws plan`
    /// shows them, and apply executes exactly them, in order, from the one reading of the
    /// account that planned them, so what was shown and what runs cannot drift apart.
    func plan(_ ctx: CloudContext) async throws -> CallPlan
    /// Deletes what exists of it; returns what it deleted (empty when nothing existed).
    func destroy(_ ctx: CloudContext) async throws -> [String]
    /// What would undo an apply made now: read from the account before the apply.
    func undo(_ ctx: CloudContext) async throws -> CloudUndo
    /// Deletes what a run created (`CloudUndo.delete`); by default the same as `destroy`.
    func deleteCreated(_ ctx: CloudContext) async throws -> [String]
    /// Carries out an undo other than `.delete` (rules, protection); nil when it has none.
    func restore(_ undo: CloudUndo, _ ctx: CloudContext) async throws -> [String]?
}

public extension CloudResource {
    func deleteCreated(_ ctx: CloudContext) async throws -> [String] { try await destroy(ctx) }
    func restore(_ undo: CloudUndo, _ ctx: CloudContext) async throws -> [String]? { nil }

    /// `.delete` when the object does not exist yet (the apply creates it), else `.irreversible`
    /// with what the apply would change on the object it found.
    static func createdOrIrreversible(exists: Bool, _ changedExisting: String) -> CloudUndo {
        exists ? .irreversible(changedExisting) : .delete
    }
}
