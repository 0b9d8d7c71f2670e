import LeanFoundation

/// What undoes one resource's apply, captured from the account just before the apply and
/// written with the journal's intent record, so `ccrun aws rollback` puts back what the run
/// changed and leaves alone what it found (Terraform's destroy removes everything it manages;
/// this removes only what the last run made).
public enum CloudUndo: Codable, Sendable, Hashable {
    /// The run created it: delete it (the resource's `deleteCreated`).
    case delete
    /// Rules the run authorized (revoked again) and rules it revoked (authorized again).
    case rules(authorized: [IngressRule], revoked: [IngressRule])
    /// Termination protection the run turned on.
    case protectionOff
    /// An autoscaling group the run changed (switched to a launch template, sizes, target
    /// groups): what it launched from and was attached to before.
    case autoScalingGroup(AutoScalingGroupState)
    /// The scaling policies a group had before the run (put back; the run's own are deleted).
    case policies([ObservedPolicy])
    /// A classic load balancer the migration deleted: recreated and attached to these groups again.
    case recreateClassicLoadBalancer(ObservedClassicLoadBalancer, attachedTo: [String])
    /// Launch configurations the migration deleted: recreated as they were.
    case recreateLaunchConfigurations([ObservedLaunchConfiguration])
    /// The run changed an object that existed before in a way ccrun cannot put back.
    case irreversible(String)

    public var summary: String {
        switch self {
        case .delete: "delete what the run created"
        case let .rules(a, r): (a.map { "revoke \($0)" } + r.map { "authorize \($0) again" }).joined(separator: "; ")
        case .protectionOff: "turn termination protection off"
        case let .autoScalingGroup(g): "put \(g.name) back on \(g.launchText), \(g.min)/\(g.max)/\(g.desired), target groups as they were"
        case let .policies(p): "put back the policies \(p.map(\.name).joined(separator: ", ")) and delete the run's own"
        case let .recreateClassicLoadBalancer(lb, groups): "recreate classic load balancer \(lb.name)" + (groups.isEmpty ? "" : " attached to \(groups.joined(separator: ", "))")
        case let .recreateLaunchConfigurations(lcs): "recreate launch configurations \(lcs.map(\.name).joined(separator: ", "))"
        case let .irreversible(why): "cannot undo: \(why)"
        }
    }

    /// The journal's free-form undo field holds this as JSON (StepKit knows hosts, not AWS).
    func encoded() throws -> String { String(decoding: try JSONEncoder().encode(self), as: UTF8.self) }
    static func decode(_ text: String) throws -> CloudUndo { try JSONDecoder().decode(CloudUndo.self, from: Data(text.utf8)) }
}

/// An autoscaling group's settings that a run may change, as read before it.
public struct AutoScalingGroupState: Codable, Sendable, Hashable {
    public var name: String
    public var launchConfiguration: String?
    public var launchTemplate: String?
    public var launchTemplateVersion: String?
    public var min: Int, max: Int, desired: Int
    public var targetGroupARNs: [String]

    init(_ g: ObservedAutoScalingGroup) {
        name = g.name; launchConfiguration = g.launchConfigurationName; launchTemplate = g.launchTemplateName
        launchTemplateVersion = g.launchTemplateVersion; min = g.min; max = g.max; desired = g.desired; targetGroupARNs = g.targetGroupARNs
    }

    var launch: CloudAPI.LaunchSource? {
        if let t = launchTemplate { return .template(name: t, version: launchTemplateVersion ?? "$Default") }
        return launchConfiguration.map { .configuration($0) }
    }
    var launchText: String {
        launchTemplate.map { "launch template \($0) version \(launchTemplateVersion ?? "$Default")" }
            ?? launchConfiguration.map { "launch configuration \($0)" } ?? "nothing"
    }
}

extension IngressRule: Codable {
    enum CodingKeys: String, CodingKey { case proto, from, to, cidr, group }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let source: Source
        if let g = try c.decodeIfPresent(String.self, forKey: .group) { source = .group(g) } else { source = .cidr(try c.decode(String.self, forKey: .cidr)) }
        self.init(try c.decode(String.self, forKey: .proto), try c.decode(Int.self, forKey: .from), try c.decode(Int.self, forKey: .to), source)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(proto, forKey: .proto); try c.encode(from, forKey: .from); try c.encode(to, forKey: .to)
        switch source {
        case let .cidr(v): try c.encode(v, forKey: .cidr)
        case let .group(g): try c.encode(g, forKey: .group)
        }
    }
}
