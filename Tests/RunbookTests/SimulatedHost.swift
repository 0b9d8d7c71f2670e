import Foundation
import Runbooks
import StepKit
import SupportKit

/// A target host as data, answering the runbooks' probes in the format the probe scripts print
/// (FactFixtures's, `ServiceProbe.parse`'s, /proc/mounts'...). The golden plans (Fixtures/plans)
/// are written from it: a bare host, and the same host once every step's desired state holds
/// (`converge`), which is what "configured" means.
///
/// WHY simulated rather than captured: the main lab belongs to another run, and a captured host
/// would tie each golden file to one machine's boot id and clock. Its answers are kept in the
/// golden files, so a change in this model shows up there as a diff too.
struct SimulatedHost {
    var system: SystemFacts
    /// path -> what is there (text files with their content; the ccr binary with its digest).
    var files: [String: FileState] = [:]
    var packages: Set<String> = []
    /// Services that exist (an init script or a unit), run (and answer their check), start at boot.
    var services: Set<String> = []
    var running: Set<String> = []
    var enabled: Set<String> = []
    var mounts: [MountEntry] = [MountEntry(device: "proc", mountPoint: "/proc", type: "proc")]
    /// device -> `BlockDeviceProbe` answer ("blank", "fs ext4", "data").
    var blockDevices: [String: String] = [:]
    /// Condition probes (`cond:COMMAND`) that succeed, and SQL queries that return rows.
    var conditions: Set<String> = []
    var sqlWithRows: Set<String> = []

    /// The Debian 12 host the guide's Debian path starts from: sysv init (as the lab's), a blank
    /// data volume, nothing installed.
    static func bareDebian() -> SimulatedHost {
        var h = SimulatedHost(system: .debian())
        h.blockDevices["/dev/xvdf"] = "blank"
        for d in ["/", "/etc", "/srv", "/var", "/var/lib", "/run", "/usr", "/usr/bin"] { h.files[d] = .directory() }
        h.files["/etc/fstab"] = .file("UUID=0a1b2c3d / ext4 errors=remount-ro 0 1\n")
        return h
    }

    /// Amazon Linux 2023, the guide's own distribution: dnf and rpm, systemd as PID 1.
    static func bareAmazonLinux() -> SimulatedHost {
        var h = bareDebian()
        h.system = SystemFacts(distribution: "amzn", version: "2023", tools: ["dnf", "rpm", "systemctl", "service", "bash", "blkid", "mkfs.ext4", "sha256sum", "base64"],
                               initSystem: .systemd)
        h.files["/etc/fstab"] = .file("UUID=4e5f6a7b / xfs defaults,noatime 1 1\n")
        return h
    }

    // MARK: answers

    enum Unanswerable: Error, CustomStringConvertible {
        case key(String)
        var description: String {
            switch self {
            case let .key(k): "the simulated host cannot answer the probe \(k): teach SimulatedHost.answer its output format"
            }
        }
    }

    func answer(_ query: FactQuery) throws -> FactOutput {
        let key = query.key
        func out(_ stdout: String, _ status: Int32 = 0) -> FactOutput { FactOutput(stdout: stdout, status: status) }
        func after(_ prefix: String) -> String? { key.hasPrefix(prefix) ? String(key.dropFirst(prefix.count)) : nil }
        if key == SystemProbe.key { return FactFixtures(system: system).set.outputs[key]! }
        if key == PackagesProbe.key {
            let names = packages.sorted()
            return system.packageManager == .apt
                ? out("[dpkg]\n" + names.map { "install ok installed|\($0)\n" }.joined())
                : out("[rpm]\n" + names.map { $0 + "\n" }.joined())
        }
        if key == MountsProbe.key { return out(mounts.map { "\($0.device) \($0.mountPoint) \($0.type) rw 0 0\n" }.joined()) }
        if let path = after("file+content:") { return out(FactFixtures.fileOutput(files[path])) }
        if let path = after("file:") {
            var state = files[path]
            state?.content = nil
            return out(FactFixtures.fileOutput(state))
        }
        if let path = after("file-exists:") { return out(files[path] == nil ? "no" : "yes") }
        if let path = after("missing-ancestors:") {
            return out(Self.ancestors(of: path).filter { files[$0] == nil }.map { $0 + "\n" }.joined())
        }
        if let device = after("blockdev:") { return out(blockDevices[device] ?? "missing") }
        if key.hasPrefix("cond:") { return out("", conditions.contains(key) ? 0 : 1) }
        if key.hasPrefix("sql:") { return out(sqlWithRows.contains(key) ? "1" : "0") }
        if key.hasPrefix("nfs-server-kind") {
            return out(key.split(separator: ":").dropFirst().first.map(String.init) ?? "kernel")
        }
        if let rest = after("service-boot:") { return out(serviceLines(rest, boot: true)) }
        if let rest = after("service:") {
            return out(serviceLines(String(rest.prefix { $0 != "|" }), boot: false, checked: rest.contains("|")))
        }
        throw Unanswerable.key(key)
    }

    /// What `ServiceProbe.probe` (running) or `bootProbe` (enabled) prints for a service.
    func serviceLines(_ name: String, boot: Bool, checked: Bool = false) -> String {
        let exists = services.contains(name)
        let systemd = system.initSystem == .systemd
        var lines: [String] = []
        if exists && !systemd { lines.append("sysv-script") }
        if systemd { lines.append("systemd-load " + (exists ? "loaded" : "not-found")) }
        if boot {
            let on = enabled.contains(name)
            if systemd { lines.append("systemd-enabled " + (exists ? (on ? "enabled" : "disabled") : "")) }
            else if on && system.packageManager == .apt { lines += ["rc-start /etc/rc2.d/S01\(name)", "rc-link /etc/rc2.d/S01\(name)"] }
            else if exists && system.packageManager != .apt { lines.append("chkconfig \(name)\t0:off\t1:off\t2:\(on ? "on" : "off")\t3:\(on ? "on" : "off")\t4:\(on ? "on" : "off")\t5:\(on ? "on" : "off")\t6:off") }
            return lines.joined(separator: "\n")
        }
        let up = running.contains(name)
        if checked {
            lines.append(up ? "answers-yes" : "answers-no")
            if up { return lines.joined(separator: "\n") }
        }
        if systemd { lines.append("systemd-active " + (up ? "active" : "inactive")) }
        else if exists { lines.append("sysv-status " + (up ? "0" : "3")) }
        return lines.joined(separator: "\n")
    }

    static func ancestors(of path: String) -> [String] {
        var out: [String] = [], url = URL(fileURLWithPath: path).deletingLastPathComponent()
        while url.path != "/" && !url.path.isEmpty { out.append(url.path); url = url.deletingLastPathComponent() }
        return out
    }

    /// Every fact the runbook asks, as this host answers it.
    func facts(for runbook: Runbook) throws -> FactSet {
        var set = FactSet()
        for q in runbook.steps.flatMap(\.allFacts) where !set.has(q.key) { set.outputs[q.key] = try answer(q) }
        return set
    }

    // MARK: converging

    /// This host once every step of `runbook` holds: each step's desired state is written into
    /// the model (what its plan uploads, the packages, services, mounts, users it names), step by
    /// step as an apply would, until a whole pass finds every step satisfied.
    mutating func converge(_ runbook: Runbook) throws {
        for _ in 0..<4 {
            var changed: [String] = []
            for step in runbook.steps {
                let facts = try self.facts(for: Runbook(runbook.name, steps: [step]))
                let plan = try? step.plan(facts, context: PlanContext(earlierChangePending: true))
                if plan?.isSatisfied == true { continue }
                changed.append(step.id)
                try hold(step, facts: facts, plan: plan)
            }
            if changed.isEmpty { return }
        }
        throw StepRefusal("the simulated host does not converge on \(runbook.name): teach SimulatedHost.hold the steps that keep changing")
    }

    /// Writes the desired state of one step into the model.
    mutating func hold(_ step: any Step, facts: FactSet, plan: Plan?) throws {
        for case let .upload(u) in plan?.change?.actions ?? [] {
            let bytes = u.payload()
            files[u.path] = FileState(kind: .file, mode: u.mode, owner: u.owner, group: u.group, size: bytes.count,
                                      sha256: SHA256Digest.hex(bytes), content: bytes)
        }
        switch step {
        case let s as ByFact:
            guard let chosen = s.candidates[try s.select(facts)] else { return }
            try hold(chosen, facts: facts, plan: try? chosen.plan(facts, context: PlanContext(earlierChangePending: true)))
        case let s as File:
            let bytes = Data(s.content.revealed().utf8)
            files[s.path] = FileState(kind: .file, mode: s.mode, owner: s.owner, group: s.group, size: bytes.count,
                                      sha256: SHA256Digest.hex(bytes), content: bytes)
        case let s as Directory:
            for a in Self.ancestors(of: s.path) where files[a] == nil { files[a] = .directory() }
            files[s.path] = .directory(mode: s.mode, owner: s.owner, group: s.group)
        case let s as PackageInstalled:
            packages.formUnion(s.names)
        case let s as ServiceRunning:
            services.insert(s.name); running.insert(s.name)
        case let s as ServiceEnabled:
            services.insert(s.name); enabled.insert(s.name)
        case let s as Mount:
            if files[s.mountPoint] == nil { files[s.mountPoint] = .directory() }
            mounts.removeAll { $0.mountPoint == s.mountPoint }
            mounts.append(MountEntry(device: s.source.fstabField, mountPoint: s.mountPoint, type: s.type == "nfs" ? "nfs4" : s.type))
        case let s as FileSystem:
            blockDevices[s.device] = "fs \(s.type)"
        case let s as GuardedCommand:
            if let creates = s.creates { files[creates] = .file("") }
            if let unless = s.unless { conditions.insert("cond:" + unless) }
        case let s as SQLScript:
            sqlWithRows.formUnion(s.facts.map(\.key))
        default:
            // A restart stamp (`restartWhenChanged`): the digests of the files it watches, as the
            // step writes them after a restart. Its facts are those files, then the stamp.
            if step.id.hasPrefix("restart-") || step.id.hasPrefix("reload-") {
                let keys = step.facts.map(\.key)
                guard let stamp = keys.last.flatMap({ $0.hasPrefix("file+content:") ? String($0.dropFirst(13)) : nil }) else { break }
                let watched = keys.dropLast().compactMap { $0.hasPrefix("file:") ? String($0.dropFirst(5)) : nil }
                files[stamp] = .file(watched.map { "\(files[$0]?.sha256 ?? "-")  \($0)\n" }.joined())
            }
            // Anything else holds once its uploads are written (Upload, NFSExports, the systemd
            // unit with its daemon-reload); `converge` finds out when that is not so.
        }
    }
}
