import Foundation
import SupportKit
import Testing

/// What the runbook lab tests need to look at a lab host from outside the runbook under test:
/// a root shell over the lab's own ssh key, the host's manifest, and the built `ccrun` run as a
/// separate process (stdout kept apart, so `--json` reports can be decoded).
struct LabHostShell {
    let inventoryPath: String
    let identityFile: String
    let knownHosts: String
    let addresses: [String: String]
    let namespaces: [String: String]

    static func load() throws -> LabHostShell {
        let path = LabEnvironment.inventoryPath
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let hosts = json["hosts"] as? [String: [String: Any]] ?? [:]
        let any = try #require(hosts.values.first, "no hosts in \(path)")
        return LabHostShell(
            inventoryPath: path,
            identityFile: try #require(any["identityFile"] as? String),
            knownHosts: try #require(any["knownHosts"] as? String),
            addresses: hosts.compactMapValues { $0["address"] as? String },
            namespaces: hosts.compactMapValues { ($0["vars"] as? [String: Any])?["netns"] as? String })
    }

    func address(_ host: String) throws -> String {
        try #require(addresses[host], "host \(host) is not in \(inventoryPath) (run `ccrun lab up --hosts 14`)")
    }

    /// Runs a shell script as root on the host (ssh with the lab key and the lab's known_hosts).
    func run(_ host: String, _ script: String) throws -> LabDeployTests.CommandResult {
        try LabDeployTests.run("/usr/bin/ssh", [
            "-i", identityFile, "-o", "UserKnownHostsFile=\(knownHosts)", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "root@\(try address(host))", script])
    }

    /// Runs `script` on the host and requires it to succeed; returns its output.
    @discardableResult
    func check(_ host: String, _ script: String, _ what: String) throws -> String {
        let r = try run(host, script)
        try #require(r.status == 0, "\(what) on \(host) failed (exit \(r.status)):\n\(r.output.suffix(3000))")
        return r.output
    }

    /// Everything a runbook may touch, one line per path (path, content hash, mode, owner), then
    /// the package database (with dpkg's status, so "removed but config left" shows) and the boot
    /// links. Not in it: the account files maintainer scripts add system users to (rollback does
    /// not delete users, README), caches, the controller's run records under /var/lib/ccrun
    /// (journal, lock, backups, digests: they record runs, they are not the deployment), and the contents
    /// of log files, which running services keep appending to (their names and modes are in).
    static let manifestScript = #"""
        for p in $(find /etc /srv /usr/local /var/lib/ccrun 2>/dev/null | LC_ALL=C sort); do
          case "$p" in
            /etc/passwd|/etc/passwd-|/etc/group|/etc/group-|/etc/shadow|/etc/shadow-|/etc/gshadow|/etc/gshadow-) continue ;;
            /etc/subuid|/etc/subuid-|/etc/subgid|/etc/subgid-|/etc/ld.so.cache) continue ;;
            /var/lib/ccrun|/var/lib/ccrun/journal*|/var/lib/ccrun/lock*|/var/lib/ccrun/backup*|/var/lib/ccrun/last-run|/var/lib/ccrun/stamps|/var/lib/ccrun/digests*) continue ;;
          esac
          if [ -f "$p" ] && [ ! -L "$p" ]; then
            case "$p" in *.log|*/log/*|/srv/logs/*) h=log ;; *) h=$(sha256sum < "$p" | cut -c1-16) ;; esac
          elif [ -L "$p" ]; then h="-> $(readlink "$p")"; else h=-; fi
          echo "$p $h $(stat -c '%a %U:%G' "$p")"
        done
        dpkg-query -W -f '${Package} ${Version} ${db:Status-Abbrev}\n'
        """#

    /// The manifest with package versions left out: rollback purges what a run installed, but
    /// cannot downgrade a package the run's installs upgraded as a dependency (apt keeps no old
    /// .deb); `versionChanges` lists those separately.
    static func withoutVersions(_ manifest: [String]) -> [String] {
        manifest.map { line in
            guard !line.hasPrefix("/") else { return line }
            let f = line.split(separator: " ")
            return f.count >= 3 ? "\(f[0]) \(f[2...].joined(separator: " "))" : line
        }
    }

    /// Packages present in both manifests with different versions.
    static func versionChanges(_ a: [String], _ b: [String]) -> [String] {
        func versions(_ m: [String]) -> [String: String] {
            Dictionary(m.filter { !$0.hasPrefix("/") }.compactMap { l -> (String, String)? in
                let f = l.split(separator: " "); return f.count >= 2 ? (String(f[0]), String(f[1])) : nil }, uniquingKeysWith: { x, _ in x })
        }
        let va = versions(a), vb = versions(b)
        return va.keys.sorted().compactMap { k in vb[k].flatMap { $0 != va[k] ? "\(k) \(va[k]!) -> \($0)" : nil } }
    }

    func manifest(_ host: String) throws -> [String] {
        try check(host, Self.manifestScript, "manifest").split(separator: "\n").map(String.init)
    }

    /// Lines only in one of two manifests, for a readable failure message.
    static func difference(_ a: [String], _ b: [String], limit: Int = 40) -> String {
        let sa = Set(a), sb = Set(b)
        let gone = a.filter { !sb.contains($0) }.prefix(limit).map { "- \($0)" }
        let new = b.filter { !sa.contains($0) }.prefix(limit).map { "+ \($0)" }
        return (gone + new).joined(separator: "\n")
    }

    /// Command names of the host's running processes (its own PID namespace seen from the machine,
    /// via the processes in its network namespace).
    func processNames(_ host: String) throws -> Set<String> {
        let out = try check(host, "ps -e -o comm=,args= | sed 's/  */ /g'", "ps")
        return Set(out.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) })
    }

    /// True when some process on the host has a command line containing `needle`.
    func running(_ host: String, _ needle: String) throws -> Bool {
        try processNames(host).contains { $0.contains(needle) }
    }

    /// A copy of the lab inventory with another host as the NFS server (the bare-host tests deploy
    /// the master on host8 and point host9/host10 at it).
    func inventory(nfsServer: String, in directory: URL) throws -> String {
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: inventoryPath))) as? [String: Any])
        json["nfsServer"] = nfsServer
        if var hosts = json["hosts"] as? [String: [String: Any]], var server = hosts[nfsServer] {
            var vars = server["vars"] as? [String: String] ?? [:]
            vars["dataDevice"] = "/dev/xvdf"
            server["vars"] = vars
            hosts[nfsServer] = server
            json["hosts"] = hosts
        }
        let path = directory.appendingPathComponent("inventory.json").path
        try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: path))
        return path
    }
}
