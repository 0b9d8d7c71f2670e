import LeanFoundation

/// Package command lines per manager: one place, shared by install and rollback.
public enum PackageCommands {
    public static func install(_ names: [String], with manager: PackageManager) -> String {
        let pkgs = Shell.join(names)
        switch manager {
        case .apt: return aptRecovery + "\nif ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then apt-get update -q >/dev/null || exit 1; fi; DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \(pkgs)"
        case .dnf: return "dnf install -y -q \(pkgs)"
        case .yum: return "yum install -y -q \(pkgs)"
        }
    }
    /// Run before an apt install (engine helper): an apt/dpkg still running on the host (e.g.
    /// left behind by a killed ccrun) is waited for, up to 300 s, and a dpkg run that was
    /// interrupted is finished with `dpkg --configure -a`, as dpkg itself asks; apt-get refuses
    /// to install anything until then.
    static let aptRecovery = """
        ccrun_waited=0
        while (for f in /proc/[0-9]*/comm; do read -r c < "$f" 2>/dev/null || continue; case "$c" in dpkg|apt-get|apt) exit 0;; esac; done; exit 1); do
          [ "$ccrun_waited" = 0 ] && echo 'ccrun: waiting for an apt/dpkg already running on this host' >&2
          ccrun_waited=$((ccrun_waited + 1))
          [ "$ccrun_waited" -gt 1500 ] && { echo 'ccrun: apt/dpkg still running after 300 s; let it finish (or stop it), then run ccrun resume' >&2; exit 1; }
          sleep 0.2
        done
        if [ -n "$(dpkg --audit 2>/dev/null)" ]; then
          echo 'ccrun: an earlier dpkg run was interrupted; finishing it with dpkg --configure -a' >&2
          DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a >&2 || { echo 'ccrun: dpkg --configure -a failed; see dpkg --audit on the host' >&2; exit 1; }
        fi
        """

    public static func purge(_ names: [String], with manager: PackageManager) -> String {
        let pkgs = Shell.join(names)
        switch manager {
        case .apt: return "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 purge -y -q \(pkgs)"
        // Rollback computes the exact set to remove (installed now minus installed before); dnf's
        // default clean_requirements_on_remove would also remove older dependencies no longer
        // needed, which this run did not install.
        case .dnf: return "dnf remove -y -q --setopt=clean_requirements_on_remove=False \(pkgs)"
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
