/// Files placed into the shared root filesystem or each host's overlay.
///
/// Kept as text here (not as a separate script directory) so one `ccrun` binary carries the whole lab.
enum HostFiles {
    /// Bump when the customization of the shared root filesystem changes: the cache is then rebuilt.
    static let rootfsRevision = "3"

    /// PID 1 of a lab host. It mounts what a booted Debian has (/proc, /sys, a private /dev with
    /// the host's block devices, /run), sets the hostname and runs the `S` scripts of `/etc/rc2.d`
    /// like sysvinit would, so services enabled with `update-rc.d` come back when the host is
    /// restarted (= its PID namespace killed and this script started again). It then only reaps
    /// orphans; dash's `wait` collects any child, adopted ones included.
    static let initScript = #"""
    #!/bin/sh
    # ccrun lab host init: PID 1 in the host's own PID namespace (see Sources/Lab/HostFiles.swift)
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    RUNLEVEL=2
    export PATH RUNLEVEL
    mount -t proc proc /proc
    mount -t sysfs -o ro sysfs /sys 2>/dev/null || true
    mount -t tmpfs -o mode=0755,size=16m tmpfs /dev
    mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5; mknod -m 666 /dev/full c 1 7
    mknod -m 666 /dev/random c 1 8; mknod -m 666 /dev/urandom c 1 9; mknod -m 666 /dev/tty c 5 0
    mkdir -p /dev/pts /dev/shm
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /dev/pts
    ln -s pts/ptmx /dev/ptmx; ln -s /proc/self/fd /dev/fd
    ln -s /proc/self/fd/0 /dev/stdin; ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr
    mount -t tmpfs -o mode=1777 tmpfs /dev/shm
    mount -t tmpfs -o mode=0755,size=64m tmpfs /run
    mkdir -p /run/lock /run/sshd
    chmod 1777 /run/lock
    if [ -f /etc/ccrun-lab/devices ]; then
      while read -r name type major minor; do
        [ -n "$name" ] || continue
        mknod -m 660 "/dev/$name" "$type" "$major" "$minor" && chgrp disk "/dev/$name"
      done < /etc/ccrun-lab/devices
    fi
    hostname "$(cat /etc/hostname)"
    : > /run/utmp
    for s in /etc/rc2.d/S*; do
      [ -x "$s" ] && "$s" start </dev/null
    done
    echo "ccrun-lab-init: $(hostname) up"
    trap 'for s in /etc/rc0.d/K*; do [ -x "$s" ] && "$s" stop; done; exit 0' TERM INT
    while :; do
      sleep 3600 &
      wait $!
    done
    """#

    /// `invoke-rc.d` asks `/sbin/runlevel`; minbase has none, and without an answer package
    /// postinst scripts would not start their services. Lab hosts are always in runlevel 2.
    static let runlevelScript = """
    #!/bin/sh
    echo "N 2"
    """

    /// sshd settings for lab hosts: ed25519 host key only (libssh2 1.10 cannot use RSA against
    /// OpenSSH 9), keys only, no DNS lookups, room for fan-out benchmarks.
    static let sshdConfig = """
    # ccrun lab
    HostKey /etc/ssh/ssh_host_ed25519_key
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    PermitRootLogin prohibit-password
    UseDNS no
    MaxStartups 200:30:400
    MaxSessions 64
    """

    static let sudoers = "deploy ALL=(ALL:ALL) NOPASSWD: ALL\n"

    /// Only the lab repository: hosts have no route anywhere else.
    static func sourcesList(repositoryAddress: String) -> String {
        "deb [trusted=yes] http://\(repositoryAddress)/ ./\n"
    }

    static func hostsFile(entries: [(name: String, address: String)]) -> String {
        var text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        for entry in entries { text += "\(entry.address)\t\(entry.name)\n" }
        return text
    }
}
