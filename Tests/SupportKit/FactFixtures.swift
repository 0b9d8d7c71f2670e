import Foundation
import StepKit

/// Builds the answers a host would print for each probe (pyinfra's fact fixtures), so plan
/// tests go through the same parsers as real runs. Shared by the step tests and the runbooks'
/// golden plans (Fixtures/plans).
public struct FactFixtures {
    public var set = FactSet()

    public init(system: SystemFacts = .debian()) {
        var out = "id=\(system.distribution)\nversion=\(system.version)\n"
        for t in system.tools.sorted() { out += "has=\(t)\n" }
        out += "init=\(system.initSystem.rawValue)\nboot=b00t\n"
        set.outputs[SystemProbe.key] = FactOutput(stdout: out, status: 0)
    }

    public static func fileOutput(_ state: FileState?) -> String {
        guard let s = state else { return "absent" }
        let kind = s.kind == .file ? "regular file" : s.kind == .directory ? "directory" : "symbolic link"
        var out = "stat \(kind)|\(s.mode)|\(s.owner)|\(s.group)|\(s.size)\n"
        if let h = s.sha256 { out += "sha256 \(h)\n" }
        if let c = s.content { out += "content \(c.base64EncodedString())\n" }
        return out
    }

    public mutating func file(_ path: String, _ state: FileState?, content: Bool = true) {
        var st = state
        if !content { st?.content = nil }
        set.outputs[FileProbe.key(path, content: content)] = FactOutput(stdout: Self.fileOutput(st), status: 0)
    }

    public mutating func raw(_ key: String, _ stdout: String, status: Int32 = 0) {
        set.outputs[key] = FactOutput(stdout: stdout, status: status)
    }

    /// What the packages probe prints: dpkg-query's `Status|Package` lines as they come
    /// (`removed` are packages dpkg still knows, with only their conffiles left), rpm's names.
    public mutating func packages(dpkg: [String]? = nil, rpm: [String]? = nil, removed: [String] = []) {
        var out = ""
        if let dpkg {
            out += "[dpkg]\n" + (dpkg.map { "install ok installed|\($0)" } + removed.map { "deinstall ok config-files|\($0)" }).joined(separator: "\n") + "\n"
        }
        if let rpm { out += "[rpm]\n" + rpm.joined(separator: "\n") + "\n" }
        raw(PackagesProbe.key, out)
    }

    public func plan(_ step: any Step, pending: Bool = false) throws -> Plan {
        try step.plan(set, context: PlanContext(earlierChangePending: pending, backupDirectory: "/var/lib/ccrun/backup/R1"))
    }
}

extension Plan {
    public var commands: [String] { change?.commands ?? [] }
    public var dependsReason: String? { if case let .dependsOnEarlierChange(r) = self { r } else { nil } }
}

extension FactQuery {
    /// The shell snippet of a host probe ("" for SQL).
    public var shellScript: String { if case let .shell(s) = kind { s } else { "" } }
}
