/// The Debian packages the lab deals with, in one place so they are easy to extend.
public enum LabPackages {
    /// Baked into the shared root filesystem (debootstrap `--include`): what every host needs to be
    /// reachable and administrable, plus python3-minimal for Ansible-style benchmarks.
    public static let baseSystem: [String] = [
        "openssh-server", "sudo", "iproute2", "procps", "python3-minimal", "e2fsprogs", "mount",
        "ca-certificates", "netbase",  // netbase: /etc/services and /etc/protocols, which rpcbind needs
    ]

    /// Added to `baseSystem` for systemd hosts (shared/design/lab.md's verified recipe): systemd as
    /// /sbin/init and dbus, which `systemctl` and logind need.
    public static let systemdHost: [String] = ["systemd", "systemd-sysv", "dbus"]

    /// The root filesystem's package list for hosts of this kind.
    public static func rootfs(for kind: LabHostInit) -> [String] {
        kind == .systemd ? baseSystem + systemdHost : baseSystem
    }

    /// Offered by the lab's local apt repository (with their dependency closure): what the runbooks
    /// install, the runtime libraries a Swift binary built with a static stdlib needs, and `htop` as a
    /// small harmless package for tests. Add a package here and the next `ccrun lab up` fetches it.
    public static let repository: [String] = [
        // NFS (server in userspace, client tools in userspace)
        "nfs-common", "rpcbind", "nfs-ganesha", "nfs-ganesha-vfs", "libnfs-utils",
        // web node, database client, tools
        "apache2", "mariadb-client", "curl", "ca-certificates", "sqlite3", "tzdata",
        // libraries ccrun/ccr link against
        "libcurl4", "libssh2-1", "libmariadb3", "libsqlite3-0", "libssl3",
        // runtime of a Swift binary with static stdlib
        "libc6", "libstdc++6", "libgcc-s1", "zlib1g",
        // small harmless packages for tests
        "htop", "tree",
        // Ansible's managed-node requirements (bench/peers, PeerTests): Python 3 and, for its apt module, python3-apt
        "python3", "python3-apt",
        // the load balancer of the fleet (`ccrun lab up --fleet`, `ccrun lb`): HAProxy 2.6
        "haproxy",
        // the yum/dnf path on a real dnf (RunbookTests/DnfPathTests, host11): Debian's dnf 4 and rpm
        "dnf", "rpm",
    ]

    /// Machine-side Debian packages `ccrun lab up` relies on (CI installs these).
    public static let machine: [String] = [
        "debootstrap", "iproute2", "util-linux", "mount", "dpkg-dev", "mariadb-server", "mariadb-client",
        "openssh-client", "python3", "python3-venv", "python3-pip", "e2fsprogs",
        "systemd-container",  // systemd-nspawn: PID 1 of systemd hosts (`lab up --init systemd`)
    ]
}
