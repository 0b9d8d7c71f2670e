import LeanFoundation

/// What runs as PID 1 in a lab host.
///
/// WHY two kinds: the light hosts (a shell init running sysv scripts) cost ~4 MB and start in
/// milliseconds, which fan-out benchmarks need; the guide's real platform (Amazon Linux 2023) is
/// systemd, and unit files, `systemctl enable` and journald only behave for real with systemd as
/// PID 1 (`systemd-nspawn -b`, ~15-18 MB and ~10 s to sshd per host).
public enum LabHostInit: String, Sendable, Equatable, CaseIterable {
    case sysv
    case systemd
}

/// Everything that names or places one lab instance: interfaces, namespaces, addresses, paths.
///
/// The main lab ("main") is what `ccrun lab up` builds. A second, smaller instance ("scratch")
/// lives beside it on 198.51.100.192/26 with its own bridge and state directory, so a test can
/// tear a lab down and check that nothing is left without disturbing tests that use the main lab.
public struct LabSpec: Sendable, Equatable {
    public var name: String
    /// Prefix of network namespaces (`<prefix>-<host>`), veth names and the bridge (`<prefix>0`).
    public var prefix: String
    /// First three octets of the lab network.
    public var network: String = "198.51.100"
    /// Machine side of the bridge and its prefix length.
    public var bridgeOctet: Int
    public var bridgePrefixLength: Int
    /// Host N (0-based, creation order) gets `network.(firstHostOctet + N)`.
    public var firstHostOctet: Int
    public var hostCount: Int
    /// Where this instance keeps state (keys, secrets, overlays, inventory).
    public var stateDirectory: String
    /// Shared caches (debootstrap root filesystem, downloaded .debs); kept by `down`.
    public var cacheDirectory: String = "/var/cache/ccrun-lab"
    public var motoPort: Int
    public var mariaDBPort: Int = 3306
    /// Hosts that get a loop-backed block device seen as `/dev/xvdf`: nfs-master, and host8 where
    /// the runbook tests deploy an NFS master onto a host they reset to bare (`lab reset-host`).
    public var blockDeviceHosts: Set<String> = ["nfs-master", "host8"]
    public var blockDeviceSize: String = "1G"
    public var region: String = "us-east-1"
    /// PID 1 of every host of this instance (`ccrun lab up --init systemd`).
    public var hostInit: LabHostInit = .sysv
    /// The guide's fleet (`ccrun lab up --fleet`): `fleetHostNames` appended after the
    /// `hostCount` hosts, so a second repository and web server and a load balancer exist
    /// beside the one-of-each deployment.
    public var fleet = false

    public static let defaultHostNames = ["db", "nfs-master", "repo-node", "web-node"]
    /// The fleet's hosts and their inventory roles: a second repository and web server (roles
    /// as the first ones', so the runbooks and the load balancer find them by role) and the load
    /// balancer, HAProxy standing in for the guide's two ELBs.
    ///
    /// WHY after the numbered hosts rather than in place of some: tests address `host5` ...
    /// `host14` by name and number, and the fan-out benchmarks count from `host15`; appending
    /// changes no existing host's name or address.
    public static let fleetHosts: [(name: String, role: String)] = [
        ("repo-node-2", "repo-node"), ("web-node-2", "web-node"), ("lb", "lb"),
    ]
    public static var fleetHostNames: [String] { fleetHosts.map(\.name) }

    /// The main lab: bridge `ccrlab0` 198.51.100.1/24, hosts from 198.51.100.10.
    public static func main(hosts: Int = 4) -> LabSpec {
        LabSpec(name: "main", prefix: "ccrlab", bridgeOctet: 1, bridgePrefixLength: 24,
                firstHostOctet: 10, hostCount: hosts, stateDirectory: "/var/lib/ccrun-lab", motoPort: 5055)
    }

    /// A second small lab for destructive tests: bridge `ccrlabx0` 198.51.100.193/26, hosts from .200.
    public static func scratch(hosts: Int = 2) -> LabSpec {
        LabSpec(name: "scratch", prefix: "ccrlabx", bridgeOctet: 193, bridgePrefixLength: 26,
                firstHostOctet: 200, hostCount: hosts, stateDirectory: "/var/lib/ccrun-lab-scratch", motoPort: 5056)
    }

    /// Looks an instance up by name (`main` or `scratch`).
    public static func named(_ name: String, hosts: Int?) throws -> LabSpec {
        switch name {
        case "main": return .main(hosts: hosts ?? 4)
        case "scratch": return .scratch(hosts: hosts ?? 2)
        default: throw LabError.unknownInstance(name)
        }
    }

    // MARK: Derived names

    public var maxHosts: Int { name == "main" ? 180 : 50 }

    /// Every host in creation order (index N has address `firstHostOctet + N`): the numbered
    /// ones, then the fleet's.
    public var hostNames: [String] {
        (0..<hostCount).map { $0 < Self.defaultHostNames.count ? Self.defaultHostNames[$0] : "host\($0 + 1)" }
            + (fleet ? Self.fleetHostNames : [])
    }

    /// A host's inventory role: its own name for the four guide hosts, the fleet's roles for the
    /// fleet hosts, `fanout` for the numbered extra hosts.
    public func role(of host: String) -> String {
        if Self.defaultHostNames.contains(host) { return host }
        return Self.fleetHosts.first { $0.name == host }?.role ?? "fanout"
    }

    public var bridge: String { "\(prefix)0" }
    public var bridgeAddress: String { "\(network).\(bridgeOctet)" }

    public func address(ofHostAt index: Int) -> String { "\(network).\(firstHostOctet + index)" }

    public func address(of host: String) -> String? {
        hostNames.firstIndex(of: host).map { address(ofHostAt: $0) }
    }

    public func namespace(of host: String) -> String { "\(prefix)-\(host)" }
    public var namespacePrefix: String { "\(prefix)-" }

    /// Machine-side veth of host index N (kept under the 15-character interface name limit).
    public func vethOutside(_ index: Int) -> String { "\(prefix)v\(index)" }
    public func vethInside(_ index: Int) -> String { "\(prefix)p\(index)" }

    public var dbHost: String { hostNames[0] }
    public var nfsServerHost: String? { hostNames.count > 1 ? hostNames[1] : nil }

    // MARK: Paths

    /// One cached root filesystem per init kind, so switching kinds never rebuilds the other.
    public var rootfsPath: String { rootfsPath(for: hostInit) }
    public func rootfsPath(for kind: LabHostInit) -> String {
        kind == .sysv ? "\(cacheDirectory)/rootfs" : "\(cacheDirectory)/rootfs-\(kind.rawValue)"
    }
    public var debsPath: String { "\(cacheDirectory)/debs" }
    public var cacheLockPath: String { "\(cacheDirectory)/.lock" }
    public var hostsDirectory: String { "\(stateDirectory)/hosts" }
    public func hostDirectory(_ host: String) -> String { "\(hostsDirectory)/\(host)" }
    public func mergedPath(_ host: String) -> String { "\(hostDirectory(host))/root" }
    public var sshDirectory: String { "\(stateDirectory)/ssh" }
    public var identityFile: String { "\(sshDirectory)/id_ed25519" }
    public var knownHostsFile: String { "\(sshDirectory)/known_hosts" }
    public var secretsDirectory: String { "\(stateDirectory)/secrets" }
    public var dbPasswordFile: String { "\(secretsDirectory)/db-admin-password" }
    public var awsCredentialsFile: String { "\(secretsDirectory)/aws-credentials" }
    public var inventoryPath: String { "\(stateDirectory)/inventory.json" }
    public var blockDirectory: String { "\(stateDirectory)/block" }
    public func blockImage(_ host: String) -> String { "\(blockDirectory)/\(host).img" }
    public var runDirectory: String { "\(stateDirectory)/run" }
    public var logDirectory: String { "\(stateDirectory)/log" }
    public var mariaDBDataDirectory: String { "\(stateDirectory)/mariadb" }
    public var mariaDBSocket: String { "\(runDirectory)/mariadb/mysqld.sock" }
    public var lockPath: String { "\(stateDirectory).lock" }
    public var motoEndpoint: String { "http://127.0.0.1:\(motoPort)" }
    public var mariaDBAdminUser: String { "admin" }
}
