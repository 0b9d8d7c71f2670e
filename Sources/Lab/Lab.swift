import LeanFoundation
import Runbooks
#if canImport(Glibc)
import Glibc
#endif

/// A lab of real target hosts on this machine: network namespaces on a bridge, an overlay root
/// filesystem per host with its own sshd, a local apt repository, a loop block device, MariaDB and
/// moto. `up` is idempotent and repairs partial state; `down` leaves nothing running or mounted.
///
/// All operations are synchronous (they drive Debian tools through `Shell`) and need root.
public struct Lab: Sendable {
    public let spec: LabSpec
    let shell: Shell
    let log: @Sendable (String) -> Void

    public init(spec: LabSpec, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.spec = spec
        self.shell = Shell()
        self.log = log
    }

    /// The instance as it currently exists: host count taken from its inventory when there is one.
    public static func existing(name: String = "main", log: @escaping @Sendable (String) -> Void = { _ in }) throws -> Lab {
        var spec = try LabSpec.named(name, hosts: nil)
        if let inventory = try? DeploymentInventory.load(spec.inventoryPath) {
            spec.fleet = inventory.hasFleet
            spec.hostCount = inventory.hosts.count - (spec.fleet ? LabSpec.fleetHosts.count : 0)
            spec.hostInit = inventory.hostInit
        }
        return Lab(spec: spec, log: log)
    }

    static func requireRoot() throws {
        guard geteuid() == 0 else { throw LabError.notRoot }
    }

    // MARK: up

    /// Builds or repairs the lab and writes its inventory. Warm (caches present, lab running) it
    /// only checks; cold it builds the caches first.
    @discardableResult
    public func up() throws -> DeploymentInventory {
        try Self.requireRoot()
        guard spec.hostCount >= 1, spec.hostNames.count <= spec.maxHosts else {
            throw LabError.tooManyHosts(requested: spec.hostNames.count, maximum: spec.maxHosts)
        }
        let lock = try FileLock(path: spec.lockPath)
        defer { lock.release() }
        for tool in [("ip", "iproute2"), ("unshare", "util-linux"), ("losetup", "mount"),
                     ("mariadbd", "mariadb-server"), ("ssh-keygen", "openssh-client")] {
            guard shell.succeeds("which", [tool.0]) else { throw LabError.missingTool(tool.0, package: tool.1) }
        }
        for dir in [spec.stateDirectory, spec.hostsDirectory, spec.sshDirectory, spec.secretsDirectory,
                    spec.runDirectory, spec.logDirectory, spec.blockDirectory] {
            try shell.run("mkdir", ["-p", dir])
        }
        try shell.run("chmod", ["0700", spec.sshDirectory, spec.secretsDirectory])
        do {
            let cacheLock = try FileLock(path: spec.cacheLockPath)
            defer { cacheLock.release() }
            let rootfs = RootfsCache(spec: spec, shell: shell, log: log)
            if !rootfs.isCurrent {
                // Overlays cannot outlive a change of their lower layer: start the hosts afresh.
                try removeHosts(notIn: [])
            }
            try rootfs.ensure()
            try PackageRepositoryCache(spec: spec, shell: shell, log: log).ensure()
        }
        try ensureLabKey()
        try removeHosts(notIn: Set(spec.hostNames))
        try ensureBridge()
        try RepositoryServer(spec: spec, shell: shell).ensure()

        let labKey = try String(contentsOfFile: spec.identityFile + ".pub", encoding: .utf8)
        var knownHosts = ""
        for (index, host) in spec.hostNames.enumerated() {
            try ensureNetwork(host: host, index: index)
            let fresh = try ensureFilesystem(host: host)
            if fresh { try provision(host: host, labKey: labKey) }
            try writeCommonFiles(host: host)
            let devicesChanged = try ensureBlockDevice(host: host)
            if initPID(of: host) == nil {
                try startInit(host: host)
            } else if devicesChanged {
                try restartHost(host)
            }
            let hostKey = try String(contentsOfFile: "\(spec.mergedPath(host))/etc/ssh/ssh_host_ed25519_key.pub",
                                     encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
            knownHosts += "\(spec.address(ofHostAt: index)),\(host) \(hostKey)\n"
        }
        try write(knownHosts, to: spec.knownHostsFile, mode: 0o644)
        try MariaDBService(spec: spec, shell: shell, log: log).ensure()
        try MotoService(spec: spec, shell: shell, log: log).ensure()
        for (index, host) in spec.hostNames.enumerated() {
            let address = spec.address(ofHostAt: index)
            try Probe.waitUntil("sshd of \(host) on \(address):22", seconds: 30) { Probe.sshAnswers(address) }
        }
        let inventory = DeploymentInventory.make(for: spec)
        try write(try inventory.encoded(), to: spec.inventoryPath, mode: 0o644)
        return inventory
    }

    private func ensureLabKey() throws {
        if FileManager.default.fileExists(atPath: spec.identityFile),
           FileManager.default.fileExists(atPath: spec.identityFile + ".pub") { return }
        try shell.run("rm", ["-f", spec.identityFile, spec.identityFile + ".pub"])
        try shell.run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ccrun-lab", "-f", spec.identityFile])
        try shell.run("chmod", ["0600", spec.identityFile])
    }

    private func ensureBridge() throws {
        let bridge = spec.bridge
        try shell.bash("""
            ip link show \(bridge) >/dev/null 2>&1 || ip link add \(bridge) type bridge
            ip addr replace \(spec.bridgeAddress)/\(spec.bridgePrefixLength) dev \(bridge)
            ip link set \(bridge) up
            """, label: "set up bridge \(bridge)")
    }

    private func ensureNetwork(host: String, index: Int) throws {
        let ns = spec.namespace(of: host)
        let outside = spec.vethOutside(index), inside = spec.vethInside(index)
        try shell.bash("""
            ip netns list | grep -qx '\(ns)\\( .*\\)\\?' || ip netns add \(ns)
            if ! ip -n \(ns) link show eth0 >/dev/null 2>&1; then
              ip link del \(outside) >/dev/null 2>&1 || true
              ip link add \(outside) type veth peer name \(inside)
              ip link set \(inside) netns \(ns)
              ip -n \(ns) link set \(inside) name eth0
            fi
            ip -n \(ns) addr replace \(spec.address(ofHostAt: index))/\(spec.bridgePrefixLength) dev eth0
            ip -n \(ns) link set lo up
            ip -n \(ns) link set eth0 up
            ip link set \(outside) master \(spec.bridge)
            ip link set \(outside) up
            """, label: "network of \(host) (\(ns))")
    }

    /// Mounts the host's overlay; returns true when the host's writable layer is new.
    ///
    /// A layer made on an earlier build of the root filesystem (a rebuild, or state left by an
    /// earlier lab on this machine) is discarded first: overlayfs does not support a lower layer
    /// that changed under its upper layer, and creating files in it then fails with ENOENT.
    private func ensureFilesystem(host: String) throws -> Bool {
        let dir = spec.hostDirectory(host)
        let merged = spec.mergedPath(host)
        let buildRecord = "\(dir)/rootfs-build"
        let build = RootfsCache(spec: spec, shell: shell, log: log).build ?? ""
        let recorded = (try? String(contentsOfFile: buildRecord, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if FileManager.default.fileExists(atPath: "\(dir)/upper"), recorded != build {
            log("\(host): its writable layer was made on another root filesystem build; starting it afresh")
            try Processes.killAndWait(hostPIDs(host))
            try Mounts.unmountTree(under: dir + "/", shell: shell)
            try removeDirectory("\(dir)/upper")
            try removeDirectory("\(dir)/work")
        }
        try shell.run("mkdir", ["-p", "\(dir)/upper", "\(dir)/work", merged])
        try write(build + "\n", to: buildRecord, mode: 0o644)
        // nfs_export (with index) gives the overlay file handles, which ganesha's VFS FSAL needs.
        if !Mounts.isMountPoint(merged) {
            try shell.run("mount", ["-t", "overlay", "overlay", "-o",
                                    "lowerdir=\(spec.rootfsPath),upperdir=\(dir)/upper,workdir=\(dir)/work,index=on,nfs_export=on", merged])
        }
        return !FileManager.default.fileExists(atPath: "\(merged)/etc/ccrun-lab-marker")
    }

    /// One-time per-host identity: hostname, marker, host key, authorized keys.
    private func provision(host: String, labKey: String) throws {
        let root = spec.mergedPath(host)
        try write(host + "\n", to: "\(root)/etc/hostname", mode: 0o644)
        try shell.run("rm", ["-f", "\(root)/etc/ssh/ssh_host_ed25519_key", "\(root)/etc/ssh/ssh_host_ed25519_key.pub"])
        try shell.run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "root@\(host)",
                                     "-f", "\(root)/etc/ssh/ssh_host_ed25519_key"])
        for (home, owner) in [("root", "0:0"), ("home/deploy", try deployOwner(root: root))] {
            try shell.run("mkdir", ["-p", "\(root)/\(home)/.ssh"])
            try write(labKey, to: "\(root)/\(home)/.ssh/authorized_keys", mode: 0o600)
            try shell.run("chmod", ["0700", "\(root)/\(home)/.ssh"])
            try shell.run("chown", ["-R", owner, "\(root)/\(home)/.ssh"])
        }
        if spec.hostInit == .systemd {
            // Its own machine-id (the shared root filesystem has an empty one): journald and
            // dbus key on it, and identical ids across hosts would be a lab artifact.
            try write(randomHex(32) + "\n", to: "\(root)/etc/machine-id", mode: 0o444)
        }
        // Written last: its presence marks a fully provisioned host.
        try write("\(host) \(randomToken(20))\n", to: "\(root)/etc/ccrun-lab-marker", mode: 0o644)
    }

    private func deployOwner(root: String) throws -> String {
        let passwd = try String(contentsOfFile: "\(root)/etc/passwd", encoding: .utf8)
        guard let line = passwd.split(separator: "\n").first(where: { $0.hasPrefix("deploy:") }) else {
            throw ShellError(command: "find user deploy in \(root)/etc/passwd", status: 1, stderr: "no such user")
        }
        let fields = line.split(separator: ":", omittingEmptySubsequences: false)
        return "\(fields[2]):\(fields[3])"
    }

    /// Files that depend on the lab as a whole (host list, repository address), rewritten each `up`.
    private func writeCommonFiles(host: String) throws {
        let root = spec.mergedPath(host)
        let entries = spec.hostNames.enumerated().map { (name: $0.element, address: spec.address(ofHostAt: $0.offset)) }
        try write(HostFiles.hostsFile(entries: entries), to: "\(root)/etc/hosts", mode: 0o644)
        try write(HostFiles.sourcesList(repositoryAddress: spec.bridgeAddress), to: "\(root)/etc/apt/sources.list", mode: 0o644)
        // The init script is refreshed per host so fixing it never needs a root filesystem rebuild.
        let initPath = "\(root)/usr/sbin/ccrun-lab-init"
        if (try? String(contentsOfFile: initPath, encoding: .utf8)) != HostFiles.initScript + "\n" {
            try write(HostFiles.initScript + "\n", to: initPath, mode: 0o755)
        }
        try NFSClientStandIn(spec: spec, shell: shell).install(host: host)   // docs/lab.md "Lab limitations"
        if spec.hostInit == .systemd {
            let unitPath = "\(root)/etc/systemd/system/\(HostFiles.fstabDevicesUnitName)"
            if (try? String(contentsOfFile: unitPath, encoding: .utf8)) != HostFiles.fstabDevicesUnit + "\n" {
                try write(HostFiles.fstabDevicesUnit + "\n", to: unitPath, mode: 0o644)
            }
            try shell.run("mkdir", ["-p", "\(root)/etc/systemd/system/local-fs.target.wants"])
            try shell.run("ln", ["-sfn", "../\(HostFiles.fstabDevicesUnitName)",
                                 "\(root)/etc/systemd/system/local-fs.target.wants/\(HostFiles.fstabDevicesUnitName)"])
            for unit in HostFiles.systemdMaskedUnits {
                let link = "\(root)/etc/systemd/system/\(unit)"
                if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) != "/dev/null" {
                    try shell.run("ln", ["-sfn", "/dev/null", link])
                }
            }
        }
    }

    /// Attaches the host's block image to a loop device and records it for the host's init
    /// (`/etc/ccrun-lab/devices`); returns true when that record changed.
    private func ensureBlockDevice(host: String) throws -> Bool {
        var record = ""
        if spec.blockDeviceHosts.contains(host) {
            let image = spec.blockImage(host)
            if !FileManager.default.fileExists(atPath: image) {
                try shell.run("truncate", ["-s", spec.blockDeviceSize, image])
            }
            var device = try shell.run("losetup", ["-j", image]).stdout
                .split(separator: "\n").first.map { String($0.split(separator: ":")[0]) } ?? ""
            if device.isEmpty {
                device = try shell.run("losetup", ["-f", "--show", image]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            var info = stat()
            guard stat(device, &info) == 0 else {
                throw ShellError(command: "stat \(device)", status: errno, stderr: String(cString: strerror(errno)))
            }
            let rdev = UInt64(info.st_rdev)
            let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~UInt64(0xfff))
            let minor = (rdev & 0xff) | ((rdev >> 12) & ~UInt64(0xff))
            record = "xvdf b \(major) \(minor)\n"
        }
        let path = "\(spec.mergedPath(host))/etc/ccrun-lab/devices"
        let current = try? String(contentsOfFile: path, encoding: .utf8)
        if current == record || (current == nil && record.isEmpty) { return false }
        try write(record, to: path, mode: 0o644)
        return true
    }

    // MARK: host processes

    /// PID (in the machine's namespace) of the host's init: the process in the host's network
    /// namespace whose PID in its own PID namespace is 1.
    func initPID(of host: String) -> Int32? {
        pids(inNamespace: spec.namespace(of: host)).first { pid in
            let ids = Processes.namespacePIDs(pid)
            return ids.count == 2 && ids[1] == 1
        }
    }

    func pids(inNamespace ns: String) -> [Int32] {
        guard let result = try? shell.run("ip", ["netns", "pids", ns], check: false), result.status == 0 else { return [] }
        return result.stdout.split(separator: "\n").compactMap { Int32($0) }
    }

    /// Starts the host's PID 1: the shell init (sysv hosts) or systemd under `systemd-nspawn`.
    private func startInit(host: String) throws {
        switch spec.hostInit {
        case .sysv: try startShellInit(host: host)
        case .systemd: try startSystemd(host: host)
        }
        try Probe.waitUntil("init of \(host)", seconds: 10) { initPID(of: host) != nil }
    }

    /// Starts the host's init in new PID/mount/UTS/IPC namespaces inside its network namespace.
    ///
    /// `nsenter --net` (not `ip netns exec`, which makes a mount namespace of its own that would
    /// live on in the waiting `unshare` parent) and `pivot_root` + a lazy unmount of the old root:
    /// the host's mount namespace then holds only its own overlay, so it never pins another
    /// host's overlay or loop device, and each host can be unmounted on its own.
    private func startShellInit(host: String) throws {
        try shell.run("mkdir", ["-p", "\(spec.mergedPath(host))/.ccrun-oldroot"])
        // Pivot first, then fork the PID namespace from inside the new root (the host's own
        // util-linux `unshare`): no process keeps the machine's root, so the detached old tree
        // (with copies of other hosts' overlays) is really released.
        let script = "cd \"$1\" && pivot_root . .ccrun-oldroot && cd / && mount -t proc proc /proc"
            + " && umount -l /.ccrun-oldroot && umount /proc && exec unshare --pid --fork /sbin/ccrun-lab-init"
        try startDaemon(["nsenter", "--net=/run/netns/\(spec.namespace(of: host))", "unshare",
                         "--mount", "--uts", "--ipc", "--propagation", "private",
                         "/bin/sh", "-c", script, "ccrun-lab-init", spec.mergedPath(host)],
                        log: "\(spec.logDirectory)/\(host).log", shell: shell, label: "init of \(host)")
    }

    /// Boots systemd as the host's PID 1 (shared/design/lab.md's verified recipe) inside the
    /// host's existing network namespace. `--register=no --keep-unit`: the machine has no systemd
    /// or machined to register with. The data volume's loop device is bound in as /dev/xvdf (the
    /// shell init makes the node itself from /etc/ccrun-lab/devices). Machine settings
    /// (resolv.conf, time zone) are not copied in: hosts are what their overlay holds.
    private func startSystemd(host: String) throws {
        guard shell.succeeds("which", ["systemd-nspawn"]) else {
            throw LabError.missingTool("systemd-nspawn", package: "systemd-container")
        }
        var command = ["systemd-nspawn", "--quiet", "-D", spec.mergedPath(host), "-b", "--register=no", "--keep-unit",
                       "--network-namespace-path=/run/netns/\(spec.namespace(of: host))",
                       "--link-journal=no", "--console=read-only", "--resolv-conf=off", "--timezone=off"]
        if spec.blockDeviceHosts.contains(host),
           let device = try loopDevices().first(where: { $0.backing == spec.blockImage(host) })?.device {
            command.append("--bind=\(device):/dev/xvdf")
        }
        try startDaemon(command, log: "\(spec.logDirectory)/\(host).log", shell: shell, label: "systemd of \(host)")
    }

    /// Every process of a host: those in its network namespace and, for a systemd host, the
    /// `systemd-nspawn` that started it (it stays in the machine's network namespace).
    func hostPIDs(_ host: String) -> [Int32] {
        pids(inNamespace: spec.namespace(of: host)) + nspawnPIDs(host)
    }

    func nspawnPIDs(_ host: String) -> [Int32] {
        let root = spec.mergedPath(host)
        return Processes.matching { args in
            args.first.map { $0.hasSuffix("systemd-nspawn") } == true && args.contains(root)
        }
    }

    /// Restarts a host like a reboot: kills its PID namespace (every process in it) and starts its
    /// init again, which brings back sshd and the services enabled in /etc/rc2.d.
    public func restartHost(_ host: String) throws {
        try Self.requireRoot()
        guard let index = spec.hostNames.firstIndex(of: host) else { throw LabError.unknownHost(host) }
        if let pid = initPID(of: host) {
            let pidNamespace = Processes.namespaceLink(pid, "pid")
            let members = pids(inNamespace: spec.namespace(of: host)).filter { Processes.namespaceLink($0, "pid") == pidNamespace }
            try Processes.killAndWait([pid] + members.filter { $0 != pid })
        }
        try Processes.killAndWait(nspawnPIDs(host))
        try startInit(host: host)
        let address = spec.address(ofHostAt: index)
        try Probe.waitUntil("sshd of \(host) on \(address):22", seconds: 30) { Probe.sshAnswers(address) }
    }

    /// Gives hosts a fresh writable layer: bare, as after `lab up` on a new host, while keeping
    /// what identifies them to the outside (address, ed25519 host key, hence the known_hosts
    /// entry, hostname and marker) so ssh keeps trusting them. A host with a block device gets it
    /// blank again (discarded to zeros), so a runbook's mkfs step starts from a never-used volume.
    ///
    /// WHY several hosts in one call: a client host's NFS stand-in mounts the server host's data
    /// volume inside the client's mount namespace, so every host of such a group is stopped before
    /// any volume is wiped, and the clients' server list is written after the volumes exist again.
    public func resetHosts(_ hosts: [String]) throws {
        try Self.requireRoot()
        for host in hosts where !spec.hostNames.contains(host) { throw LabError.unknownHost(host) }
        let lock = try FileLock(path: spec.lockPath)
        defer { lock.release() }
        let labKey = try String(contentsOfFile: spec.identityFile + ".pub", encoding: .utf8)
        var identities: [String: HostIdentity] = [:]
        for host in hosts { identities[host] = HostIdentity(readingFrom: spec.mergedPath(host)) }
        // 1. every process of every host (sshd, services, init), then their overlays
        try Processes.killAndWait(hosts.flatMap { hostPIDs($0) })
        for host in hosts {
            let dir = spec.hostDirectory(host)
            try Mounts.unmountTree(under: dir + "/", shell: shell)
            try removeDirectory("\(dir)/upper")
            try removeDirectory("\(dir)/work")
        }
        // 2. blank volumes, fresh layers with the kept identity
        for host in hosts {
            if spec.blockDeviceHosts.contains(host) { try blankBlockDevice(host: host) }
            _ = try ensureFilesystem(host: host)
            try provision(host: host, labKey: labKey)
            if let identity = identities[host] { try identity.restore(into: spec.mergedPath(host), shell: shell) }
            _ = try ensureBlockDevice(host: host)
        }
        // 3. lab-wide files (after every volume exists: the NFS stand-in lists them), then init
        for host in hosts {
            try writeCommonFiles(host: host)
            try startInit(host: host)
        }
        for host in hosts {
            guard let address = spec.address(of: host) else { continue }
            try Probe.waitUntil("sshd of \(host) on \(address):22", seconds: 30) { Probe.sshAnswers(address) }
        }
    }

    /// Zeroes the host's block image through its loop device (`blkdiscard` punches holes in the
    /// sparse image and drops the device's cached blocks), keeping the same loop device so the
    /// major/minor recorded on other hosts stays valid. Falls back to a new image when no loop
    /// device is attached yet.
    private func blankBlockDevice(host: String) throws {
        let image = spec.blockImage(host)
        let device = try loopDevices().first { $0.backing == image }?.device
        if let device {
            try shell.run("blkdiscard", ["-f", device], label: "blank the data volume of \(host) (\(device))")
        } else {
            try shell.run("rm", ["-f", image])
        }
    }

    // MARK: down

    /// Stops everything: processes, mounts, loop devices, namespaces, interfaces; removes host state
    /// and the inventory. Keeps the caches (and this instance's lab key and secrets) unless `purge`.
    public func down(purge: Bool = false) throws {
        try Self.requireRoot()
        let lock = try FileLock(path: spec.lockPath)
        defer { lock.release() }
        try? FileManager.default.removeItem(atPath: spec.inventoryPath)
        try removeHosts(notIn: [])
        try Processes.killAndWait(Processes.matching { RepositoryServer.isServerProcess($0, address: spec.bridgeAddress) })
        try Processes.killAndWait(Processes.matching(MotoService(spec: spec, shell: shell, log: log).isServerProcess))
        try Processes.killAndWait(Processes.matching(MariaDBService(spec: spec, shell: shell, log: log).isServerProcess))
        try unmountAll()
        try detachLoopDevices()
        try shell.bash("ip link del \(spec.bridge) >/dev/null 2>&1 || true", label: "delete bridge \(spec.bridge)")
        for path in [spec.hostsDirectory, spec.blockDirectory, spec.runDirectory, spec.mariaDBDataDirectory,
                     spec.knownHostsFile, spec.awsCredentialsFile] {
            do { try removeDirectory(path, attempts: 50) } catch { log("warning: \(error)") }
        }
        if purge {
            let roots = LabHostInit.allCases.map(spec.rootfsPath(for:))
            try shell.run("rm", ["-rf", spec.stateDirectory, spec.debsPath] + roots + roots.map { $0 + ".partial" } + [
                                 "\(spec.cacheDirectory)/moto-venv"])
        }
    }

    /// Stops and removes every host of this instance whose name is not in `keep`: found by
    /// namespace prefix, so hosts from a crashed or larger earlier lab are included.
    private func removeHosts(notIn keep: Set<String>) throws {
        let namespaces = try shell.run("ip", ["netns", "list"]).stdout.split(separator: "\n")
            .map { String($0.split(separator: " ")[0]) }
            .filter { $0.hasPrefix(spec.namespacePrefix) }
        let removed = namespaces.filter { !keep.contains(String($0.dropFirst(spec.namespacePrefix.count))) }
        // Every process first, then the mounts: no host may still hold another's overlay.
        try Processes.killAndWait(removed.flatMap { hostPIDs(String($0.dropFirst(spec.namespacePrefix.count))) })
        for ns in removed {
            let host = String(ns.dropFirst(spec.namespacePrefix.count))
            try Mounts.unmountTree(under: spec.hostDirectory(host) + "/", shell: shell)
            try shell.run("ip", ["netns", "del", ns])
            // A directory kept busy by another program's mount namespace copy is not worth
            // aborting the teardown for: it holds no process, namespace, mount or loop device here.
            do { try removeDirectory(spec.hostDirectory(host)) } catch { log("warning: \(error)") }
        }
        // veths whose namespace side is gone are deleted with it; remove any machine-side leftovers.
        let links = try shell.run("ip", ["-o", "link", "show"]).stdout.split(separator: "\n")
            .compactMap { line -> String? in
                let parts = line.split(separator: ":")
                guard parts.count > 1 else { return nil }
                return String(parts[1].trimmingCharacters(in: .whitespaces).split(separator: "@")[0])
            }
        let wanted = Set(spec.hostNames.indices.filter { keep.contains(spec.hostNames[$0]) }.map(spec.vethOutside))
        for link in links where link.hasPrefix("\(spec.prefix)v") && !wanted.contains(link) {
            try shell.run("ip", ["link", "del", link], check: false)
        }
    }

    /// `rm -rf`, retried for a few seconds: a mount namespace whose last process just died can
    /// keep a copy of the overlay busy for a moment after the machine-side unmount.
    private func removeDirectory(_ path: String, attempts: Int = 10) throws {
        for _ in 0..<attempts {
            try? Mounts.unmountTree(under: path + "/", shell: shell)
            if shell.succeeds("rm", ["-rf", path]) { return }
            usleep(100_000)
        }
        try shell.run("rm", ["-rf", path])
    }

    private func unmountAll() throws {
        try Mounts.unmountTree(under: spec.stateDirectory + "/", shell: shell)
    }

    private func detachLoopDevices() throws {
        for (device, backing) in try loopDevices() { try shell.run("losetup", ["-d", device], check: false)
            _ = backing }
    }

    /// Loop devices whose backing file lies in this instance's state directory.
    func loopDevices() throws -> [(device: String, backing: String)] {
        let out = try shell.run("losetup", ["-n", "-l", "-O", "NAME,BACK-FILE"]).stdout
        return out.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[1].hasPrefix(spec.stateDirectory + "/") else { return nil }
            return (parts[0], parts[1])
        }
    }

    // MARK: leftovers (what `down` must remove)

    /// Everything of this instance still present on the machine: namespaces, interfaces, mounts,
    /// loop devices and processes. Empty after `down`.
    public func leftovers() throws -> [String] {
        var found: [String] = []
        let namespaces = try shell.run("ip", ["netns", "list"]).stdout.split(separator: "\n")
            .map { String($0.split(separator: " ")[0]) }.filter { $0.hasPrefix(spec.namespacePrefix) }
        found += namespaces.map { "namespace \($0)" }
        let links = try shell.run("ip", ["-o", "link", "show"]).stdout.split(separator: "\n")
            .compactMap { $0.split(separator: ":").dropFirst().first?.trimmingCharacters(in: .whitespaces) }
            .map { String($0.split(separator: "@")[0]) }
            .filter { $0 == spec.bridge || $0.hasPrefix("\(spec.prefix)v") }
        found += links.map { "interface \($0)" }
        found += Mounts.mountPoints(under: spec.stateDirectory + "/").map { "mount \($0)" }
        found += try loopDevices().map { "loop device \($0.device) (\($0.backing))" }
        let processes = Processes.allPIDs().filter { pid in
            let args = Processes.commandLine(pid)
            let joined = args.joined(separator: " ")
            return RepositoryServer.isServerProcess(args, address: spec.bridgeAddress)
                || MotoService(spec: spec, shell: shell, log: log).isServerProcess(args)
                || MariaDBService(spec: spec, shell: shell, log: log).isServerProcess(args)
                || joined.contains(spec.hostsDirectory + "/")
        }
        found += processes.map { "process \($0) \(Processes.commandLine($0).joined(separator: " "))" }
        return found
    }
}

/// Mount table queries (/proc/self/mountinfo) for the lab's overlays.
enum Mounts {
    static func mountPoints(under prefix: String) -> [String] {
        guard let text = ProcFile.text("/proc/self/mountinfo") else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 4 else { return nil }
            let point = decode(String(fields[4]))
            return point.hasPrefix(prefix) ? point : nil
        }
    }

    static func isMountPoint(_ path: String) -> Bool {
        mountPoints(under: path).contains(path)
    }

    /// Unmounts every mount point under `prefix`, deepest first.
    static func unmountTree(under prefix: String, shell: Shell) throws {
        for point in mountPoints(under: prefix).sorted(by: { $0.count > $1.count }) {
            // A namespace that just lost its last process may release its mounts a moment later.
            var unmounted = false
            for _ in 0..<20 where !unmounted {
                unmounted = shell.succeeds("umount", [point])
                if !unmounted { usleep(100_000) }
            }
            if !unmounted { try shell.run("umount", ["-l", point]) }
        }
    }

    /// mountinfo escapes spaces and a few other characters as octal.
    private static func decode(_ field: String) -> String {
        field.replacingOccurrences(of: "\\040", with: " ").replacingOccurrences(of: "\\011", with: "\t")
            .replacingOccurrences(of: "\\134", with: "\\")
    }
}
