import LeanFoundation

/// Hosts in batches of `serial`, in the order given: Ansible's `serial`. A rolling upgrade works
/// on one batch at a time so that the other hosts keep serving meanwhile.
public struct RolloutPlan: Sendable, Equatable {
    public let hosts: [String]
    public let serial: Int
    public let batches: [[String]]

    public init(hosts: [String], serial: Int) throws {
        guard serial >= 1 else { throw RolloutError.badSerial(serial) }
        guard !hosts.isEmpty else { throw RolloutError.noHosts }
        var seen = Set<String>()
        for h in hosts where !seen.insert(h).inserted { throw RolloutError.duplicateHost(h) }
        self.hosts = hosts; self.serial = serial
        batches = stride(from: 0, to: hosts.count, by: serial).map { Array(hosts[$0..<min($0 + serial, hosts.count)]) }
    }

    /// The first batch that would take every one of `servers` out of the load balancer at once
    /// (nothing left to send tuners or visitors to), if any. `servers` are the backend's servers:
    /// a batch drains those of its hosts that are among them.
    public func batchDrainingEverything(of servers: Set<String>) -> [String]? {
        guard !servers.isEmpty else { return nil }
        return batches.first { servers.isSubset(of: Set($0)) }
    }
}

/// How many hosts may fail before a rollout stops: Ansible's `max_fail_percentage`, as a count
/// (`--max-fail 1`) or a percentage of all the rollout's hosts (`--max-fail 25%`, rounded down).
/// The default, 0, stops at the first failure. The rollout stops after the batch in which the
/// failures exceed the budget (the hosts of that batch were already running in parallel).
public struct FailureBudget: Sendable, Equatable, CustomStringConvertible {
    public enum Limit: Sendable, Equatable { case count(Int), percent(Int) }
    public let limit: Limit

    public init(_ limit: Limit) { self.limit = limit }

    /// "N" or "N%" (0-100).
    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("%") {
            guard let p = Int(t.dropLast()), (0...100).contains(p) else { throw RolloutError.badMaxFail(text) }
            limit = .percent(p)
        } else {
            guard let n = Int(t), n >= 0 else { throw RolloutError.badMaxFail(text) }
            limit = .count(n)
        }
    }

    /// Hosts of `total` that may fail while the rollout goes on.
    public func allowed(of total: Int) -> Int {
        switch limit {
        case let .count(n): n
        case let .percent(p): total * p / 100
        }
    }

    /// Whether `failed` failures of `total` hosts stop the rollout.
    public func exceeded(failed: Int, total: Int) -> Bool { failed > allowed(of: total) }

    public var description: String {
        switch limit {
        case let .count(n): "\(n)"
        case let .percent(p): "\(p)%"
        }
    }
}

public enum RolloutError: Error, CustomStringConvertible, Sendable, Equatable {
    case badSerial(Int)
    case noHosts
    case duplicateHost(String)
    case badMaxFail(String)
    case drainsEverything(batch: [String], backend: String)
    case nothingToResume(runbook: String, record: String)
    case resumeHostsDiffer(runbook: String, recorded: [String], given: [String])

    public var description: String {
        switch self {
        case let .badSerial(n): "--serial \(n): a batch needs at least 1 host"
        case .noHosts: "a rollout needs at least one host"
        case let .duplicateHost(h): "host \(h) is named twice: a rollout applies each host once"
        case let .badMaxFail(t): "--max-fail \(t): expected a number of hosts (e.g. 1) or a percentage of them (e.g. 25%)"
        case let .drainsEverything(batch, backend):
            "the batch \(batch.joined(separator: ", ")) would drain every server of \(backend) at once: nothing would take the traffic meanwhile (use a smaller --serial)"
        case let .nothingToResume(runbook, record):
            "no rollout of \(runbook) to resume (\(record) does not exist): run it again without --resume"
        case let .resumeHostsDiffer(runbook, recorded, given):
            "the last rollout of \(runbook) was over \(recorded.joined(separator: " ")), not \(given.joined(separator: " ")): resume it with the same hosts, or start a new one without --resume"
        }
    }
}
