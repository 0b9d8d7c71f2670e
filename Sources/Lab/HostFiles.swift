import LeanFoundation

/// Files placed into the shared root filesystem or each host's overlay.
///
/// Kept as text here (not as a separate script directory) so one `ccrun` binary carries the whole lab.
enum HostFiles {
    /// Bump when the customization of the shared root filesystem changes: the cache is then rebuilt.
    static let rootfsRevision = "4"

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
    mountpoint -q /proc || mount -t proc proc /proc
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
    mkdir -p /run/lock /run/sshd /run/sendsigs.omit.d
    chmod 1777 /run/lock
    # Runtime directories packages declare for systemd-tmpfiles ("d /run/x mode user group").
    for f in /usr/lib/tmpfiles.d/*.conf /etc/tmpfiles.d/*.conf; do
      [ -f "$f" ] || continue
      while read -r type path mode user group rest; do
        case "$type:$path" in
          d:/run/*|D:/run/*|d:/var/run/*|D:/var/run/*)
            mkdir -p "$path"
            [ "$mode" = "-" ] || chmod "$mode" "$path" 2>/dev/null
            [ "$user" = "-" ] || chown "$user" "$path" 2>/dev/null
            [ "$group" = "-" ] || chgrp "$group" "$path" 2>/dev/null ;;
        esac
      done < "$f"
    done
    if [ -f /etc/ccrun-lab/devices ]; then
      while read -r name type major minor; do
        [ -n "$name" ] || continue
        mknod -m 660 "/dev/$name" "$type" "$major" "$minor" && chgrp disk "/dev/$name"
      done < /etc/ccrun-lab/devices
    fi
    hostname "$(cat /etc/hostname)"
    # Local filesystems from /etc/fstab, then the NFS ones (through the lab's mount.nfs stand-in,
    # docs/lab.md), before any service starts, as Debian's mountnfs.sh does at boot.
    mount -a -t nonfs,nfs4 || true
    mount -a -t nfs,nfs4 || true
    : > /run/utmp
    # rcS.d then rc2.d, like sysvinit. hwclock.sh and procps are skipped: they would set the
    # machine's clock and kernel-wide sysctls, which a lab host must not touch.
    # Without insserv every update-rc.d link is S01, so LSB dependencies are not ordered: rpcbind
    # (which nfs-common's rpc.statd and NFS servers need) is started first; its second start below
    # is a no-op.
    for s in /etc/rcS.d/S*rpcbind /etc/rc2.d/S*rpcbind /etc/rcS.d/S* /etc/rc2.d/S*; do
      case "$s" in *hwclock.sh|*procps) continue ;; esac
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

    /// Debian 12's nfs-ganesha ships only systemd units and lab hosts have no systemd, so the
    /// root filesystem carries this sysv script that starts ganesha.nfsd the way the unit does.
    /// `update-rc.d nfs-ganesha defaults` enables it like any other service.
    static let ganeshaInitScript = #"""
    #!/bin/sh
    ### BEGIN INIT INFO
    # Provides:          nfs-ganesha
    # Required-Start:    $network $remote_fs rpcbind
    # Required-Stop:     $network $remote_fs
    # Default-Start:     2 3 4 5
    # Default-Stop:      0 1 6
    # Short-Description: NFS server in userspace (ccrun lab stand-in for the systemd unit)
    ### END INIT INFO
    DAEMON=/usr/bin/ganesha.nfsd
    PIDFILE=/run/ganesha/ganesha.pid
    OPTIONS="-L /var/log/ganesha/ganesha.log -f /etc/ganesha/ganesha.conf -N NIV_EVENT"
    [ -r /etc/default/nfs-ganesha ] && . /etc/default/nfs-ganesha
    running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
    case "$1" in
      start)
        [ -x "$DAEMON" ] || { echo "nfs-ganesha is not installed"; exit 5; }
        if running; then echo "nfs-ganesha already running"; exit 0; fi
        mkdir -p /run/ganesha /var/log/ganesha /var/lib/nfs/ganesha
        [ -x /etc/init.d/rpcbind ] && /etc/init.d/rpcbind start >/dev/null 2>&1
        echo "Starting nfs-ganesha"
        $DAEMON $OPTIONS ;;
      stop)
        if running; then kill "$(cat "$PIDFILE")"; for i in 1 2 3 4 5 6 7 8 9 10; do running || break; sleep 1; done; fi
        rm -f "$PIDFILE"; echo "Stopped nfs-ganesha" ;;
      restart|force-reload) "$0" stop; "$0" start ;;
      reload) running && kill -HUP "$(cat "$PIDFILE")" ;;
      status) if running; then echo "nfs-ganesha is running"; else echo "nfs-ganesha is not running"; exit 3; fi ;;
      *) echo "Usage: $0 {start|stop|restart|reload|status}"; exit 2 ;;
    esac
    """#

    /// Units masked in systemd hosts: a lab host shares the machine's kernel and clock, and has
    /// no network manager (its address is set from outside), so these would fail or touch the
    /// machine. rpc_pipefs (nfs-common's, for NFSv4 idmapping and Kerberos) is a file system this
    /// kernel lacks, like nfsd (docs/lab.md "Lab limitations"). Written into each host's layer,
    /// so a change needs no root filesystem rebuild.
    static let systemdMaskedUnits = [
        "systemd-timesyncd.service", "systemd-networkd-wait-online.service", "getty@.service",
        "console-getty.service", "systemd-sysctl.service", "systemd-modules-load.service",
        "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service",
        "run-rpc_pipefs.mount",
    ]

    /// systemd's fstab generator ignores block-device lines inside a container ("Running in a
    /// container, ignoring fstab device entry"), so a systemd lab host would not mount its data
    /// volume at boot, as a VM does. This unit mounts fstab's local device lines where the
    /// generator would have, before local-fs.target (so before the NFS server and ccr). A lab
    /// stand-in (docs/lab.md "Lab limitations"); NFS lines are mounted by systemd itself.
    static let fstabDevicesUnitName = "ccrun-lab-fstab-devices.service"
    static let fstabDevicesUnit = """
    [Unit]
    Description=ccrun lab: mount fstab's block-device lines (systemd skips them in containers)
    DefaultDependencies=no
    After=local-fs-pre.target
    Before=local-fs.target

    [Service]
    Type=oneshot
    RemainAfterExit=yes
    ExecStart=/bin/sh -c 'mount -a -t nonfs,nfs4,tmpfs,proc,sysfs,devpts || true'

    [Install]
    WantedBy=local-fs.target
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

/// What identifies a lab host to the outside and must survive `reset-host`: its ed25519 host key
/// (recorded in the lab's known_hosts) and its marker (hostname + token, checked by tests).
struct HostIdentity {
    static let keyPath = "/etc/ssh/ssh_host_ed25519_key"
    static let markerPath = "/etc/ccrun-lab-marker"

    var privateKey: Data
    var publicKey: Data
    var marker: Data

    /// nil when the host was never provisioned (it then simply gets a new identity).
    init?(readingFrom root: String) {
        guard let privateKey = FileManager.default.contents(atPath: root + Self.keyPath),
              let publicKey = FileManager.default.contents(atPath: root + Self.keyPath + ".pub"),
              let marker = FileManager.default.contents(atPath: root + Self.markerPath) else { return nil }
        self.privateKey = privateKey; self.publicKey = publicKey; self.marker = marker
    }

    func restore(into root: String, shell: Shell) throws {
        try write(String(decoding: privateKey, as: UTF8.self), to: root + Self.keyPath, mode: 0o600)
        try write(String(decoding: publicKey, as: UTF8.self), to: root + Self.keyPath + ".pub", mode: 0o644)
        try write(String(decoding: marker, as: UTF8.self), to: root + Self.markerPath, mode: 0o644)
    }
}
