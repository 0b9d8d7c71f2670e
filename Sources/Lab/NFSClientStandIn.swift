import LeanFoundation

/// The lab's stand-in for kernel NFS client mounts (docs/lab.md, "Lab limitations").
///
/// WHY: the machine's kernel has no NFS client, yet the deployment only works when repository
/// and web nodes see the master's /srv through their fstab's nfs lines. Every host gets a
/// `/sbin/mount.nfs` (the real one, if nfs-common is installed later, is diverted to
/// `/sbin/mount.nfs.kernel` by dpkg-divert) that, for `SERVER:/path`, mounts the server host's
/// data volume (same block device, so the kernel shares one superblock with the server's own
/// mount: data written on a client lands on the server's file system at once) and bind-mounts
/// the exported directory, read-only when the options say `ro`. `mount -a` at boot therefore
/// works. The NFS protocol itself is checked separately with libnfs against the real server.
struct NFSClientStandIn {
    let spec: LabSpec
    let shell: Shell

    static let helperPath = "/sbin/mount.nfs"
    /// address name major minor, one line per host with a data volume.
    static let serversPath = "/etc/ccrun-lab/nfs-servers"

    static let helper = """
        #!/bin/sh
        # ccrun lab stand-in for mount.nfs (see docs/lab.md "Lab limitations"): SERVER:/path is the
        # server host's data volume, mounted here too, with /path bind-mounted on the mount point.
        spec=$1; mp=$2; shift 2
        opts=""
        while [ $# -gt 0 ]; do case "$1" in -o) opts=$2; shift 2;; *) shift;; esac; done
        server=${spec%%:*}; path=${spec#*:}
        line=$(awk -v s="$server" '$1==s || $2==s {print; exit}' \(serversPath) 2>/dev/null)
        [ -n "$line" ] || { echo "mount.nfs (lab stand-in): $server is not a lab NFS server" >&2; exit 32; }
        set -- $line
        # One mount at a time: systemd mounts fstab's NFS lines in parallel, and two helpers
        # mounting the same volume at once made one of them fail.
        mkdir -p /run/ccrun-lab/nfs
        exec 9>/run/ccrun-lab/nfs/.lock && flock 9
        base=/run/ccrun-lab/nfs/$1
        # The device node lives in /dev: systemd mounts /run nodev, where it could not be opened.
        dev=/dev/ccrun-lab-nfs-$1
        mkdir -p "$base/root"
        [ -b "$dev" ] || mknod "$dev" b "$3" "$4" || exit 32
        mountpoint -q "$base/root" || mount -t ext4 "$dev" "$base/root" || {
            echo "mount.nfs (lab stand-in): $server has no file system on its data volume yet" >&2; exit 32; }
        # The export's path on the server's volume: the longest tail of /path that exists there.
        rel=$path; src=""
        while [ -n "$rel" ]; do
            if [ -d "$base/root/$rel" ]; then src="$base/root/$rel"; break; fi
            case "$rel" in */*) rel=${rel#*/};; *) rel="";; esac
        done
        [ -n "$src" ] || { echo "mount.nfs (lab stand-in): $server:$path does not exist" >&2; exit 32; }
        mkdir -p "$mp"
        mount --bind "$src" "$mp" || exit 32
        case ",$opts," in *,ro,*) mount -o remount,bind,ro "$mp" || exit 32;; esac
        exit 0
        """

    /// Installs the helper and the server list into a host's root file system.
    func install(host: String) throws {
        let root = spec.mergedPath(host)
        var servers = ""
        for (index, name) in spec.hostNames.enumerated() where spec.blockDeviceHosts.contains(name) {
            // Written by the lab for the host's init: "xvdf b MAJOR MINOR".
            guard let record = try? String(contentsOfFile: "\(spec.mergedPath(name))/etc/ccrun-lab/devices", encoding: .utf8) else { continue }
            let f = record.split(whereSeparator: { $0 == " " || $0 == "\n" })
            guard f.count >= 4 else { continue }
            servers += "\(spec.address(ofHostAt: index)) \(name) \(f[2]) \(f[3])\n"
        }
        try shell.run("mkdir", ["-p", "\(root)/etc/ccrun-lab"])
        if (try? String(contentsOfFile: root + Self.serversPath, encoding: .utf8)) != servers {
            try write(servers, to: root + Self.serversPath, mode: 0o644)
        }
        if (try? String(contentsOfFile: root + Self.helperPath, encoding: .utf8)) != Self.helper + "\n" {
            // Keep nfs-common's mount.nfs out of the way: it would call the kernel, which has no NFS.
            try shell.run("chroot", [root, "dpkg-divert", "--quiet", "--local", "--rename", "--divert", "/sbin/mount.nfs.kernel", "--add", Self.helperPath])
            try write(Self.helper + "\n", to: root + Self.helperPath, mode: 0o755)
        }
    }
}
