import Foundation

/// Package command lines per manager: one place, shared by install and rollback.
public enum PackageCommands {
    public static func install(_ names: [String], with manager: PackageManager) -> String {
        let pkgs = Shell.join(names)
        switch manager {
        case .apt: return "if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then apt-get update -q >/dev/null || exit 1; fi; DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \(pkgs)"
        case .dnf: return "dnf install -y -q \(pkgs)"
        case .yum: return "yum install -y -q \(pkgs)"
        }
    }
    public static func purge(_ names: [String], with manager: PackageManager) -> String {
        let pkgs = Shell.join(names)
        switch manager {
        case .apt: return "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 purge -y -q \(pkgs)"
        case .dnf: return "dnf remove -y -q \(pkgs)"
        case .yum: return "yum remove -y -q \(pkgs)"
        }
    }
}

/// Packages installed through the host's package manager (apt, dnf or yum, as probed).
/// The set of installed packages is recorded before the install, so rollback purges the
/// packages and everything the install pulled in, and nothing else.
public struct PackageInstalled: Step {
    public let names: [String]
    /// Forces a manager; nil picks the probed one.
    public let manager: PackageManager?
    public let description: String

    public init(_ names: [String], manager: PackageManager? = nil, description: String? = nil) {
        self.names = names; self.manager = manager
        self.description = description ?? "package\(names.count == 1 ? "" : "s") \(names.joined(separator: ", ")) installed"
    }
    public init(_ name: String, manager: PackageManager? = nil, description: String? = nil) {
        self.init([name], manager: manager, description: description)
    }

    public var id: String { "packages:\(names.joined(separator: ","))" }
    public var facts: [FactQuery] { [SystemProbe.probe.query, PackagesProbe.probe.query] }
    public var affects: FactScope { .everything }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        let system = try facts[SystemProbe.probe]
        guard let pm = manager ?? system.packageManager else {
            throw StepRefusal("no supported package manager (apt-get, dnf, yum) found on this \(system.distribution) host")
        }
        let installed = try facts[PackagesProbe.probe].names(for: pm)
        let missing = names.filter { !installed.contains($0) }
        if missing.isEmpty { return .satisfied }
        return .change(Change(actions: [.shell(ShellAction("install \(missing.joined(separator: " ")) with \(pm.rawValue)",
                                                           script: PackageCommands.install(missing, with: pm)))],
                              diff: missing.map { "+ package \($0)\n" }.joined(),
                              undo: [.purgePackages(manager: pm, requested: missing, installedBefore: installed.sorted())]))
    }
}
