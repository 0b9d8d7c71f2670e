import Foundation
import Lab
import Runbooks
import SupportKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Lab tests need root (namespaces, mounts). They run when the lab is up or under CI; a missing
/// lab is brought up through the library (as `ccrun lab up` would).
enum LabGate {
    static var isRoot: Bool { geteuid() == 0 }
    static var shouldRun: Bool { isRoot && LabEnvironment.shouldRun }

    /// The main lab's inventory, bringing the lab up when it is not running.
    static func mainInventory() throws -> DeploymentInventory {
        if let inventory = try? DeploymentInventory.load(LabEnvironment.inventoryPath),
           inventory.hosts.values.allSatisfy({ Shell().succeeds("ip", ["netns", "pids", $0.vars?["netns"] ?? "-"]) }) {
            return inventory
        }
        return try Lab(spec: .main()).up()
    }
}

/// Runs commands on lab hosts with the OpenSSH client, strictly checking the lab's known_hosts.
struct LabSSH {
    let inventory: DeploymentInventory

    @discardableResult
    func run(_ host: String, _ command: String, user: String? = nil, check: Bool = true) throws -> ShellResult {
        let entry = try #require(inventory.hosts[host], "no host \(host) in the inventory")
        return try Shell().run("ssh", [
            "-i", entry.identityFile ?? "", "-o", "UserKnownHostsFile=\(entry.knownHosts ?? "")",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
            "-p", String(entry.port ?? 22), "\(user ?? entry.user ?? "root")@\(entry.address)", command,
        ], check: check)
    }
}

@Suite("Lab", .serialized, .enabled(if: LabGate.shouldRun, "needs root and a lab (run `ccrun lab up` as root first)"))
struct LabTests {
    @Test("each host answers ssh with its own hostname and marker")
    func hostsAnswerWithOwnIdentity() throws {
        let inventory = try LabGate.mainInventory()
        let ssh = LabSSH(inventory: inventory)
        #expect(inventory.hosts.count >= 4)
        var markers: Set<String> = []
        for name in inventory.hosts.keys.sorted() {
            let out = try ssh.run(name, "hostname; cat /etc/ccrun-lab-marker").stdout.split(separator: "\n")
            #expect(out.first.map(String.init) == name)
            let marker = try #require(out.dropFirst().first.map(String.init))
            #expect(marker.hasPrefix(name + " ") && marker.count > name.count + 10)
            markers.insert(marker)
        }
        #expect(markers.count == inventory.hosts.count, "markers must differ between hosts")
    }

    @Test("a wrong host key is refused by strict known_hosts checking")
    func wrongHostKeyRefused() throws {
        let inventory = try LabGate.mainInventory()
        let db = try #require(inventory.hosts["db"])
        let web = try #require(inventory.hosts["web-node"])
        // known_hosts naming web-node's address with db's key: the client must refuse.
        let known = try String(contentsOfFile: try #require(db.knownHosts), encoding: .utf8)
        let dbLine = try #require(known.split(separator: "\n").first { $0.hasPrefix("\(db.address),") })
        let fake = "\(web.address) " + dbLine.split(separator: " ").dropFirst().joined(separator: " ") + "\n"
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-lab-known-\(UUID().uuidString)").path
        try fake.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try Shell().run("ssh", ["-i", try #require(web.identityFile), "-o", "UserKnownHostsFile=\(path)",
                                             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
                                             "root@\(web.address)", "true"], check: false)
        #expect(result.status != 0)
        #expect(result.stderr.contains("HOST IDENTIFICATION HAS CHANGED") || result.stderr.contains("Host key verification failed"))
    }

    @Test("deploy user has passwordless sudo")
    func deployHasSudo() throws {
        let ssh = LabSSH(inventory: try LabGate.mainInventory())
        let out = try ssh.run("repo-node", "id -un; sudo -n id -u", user: "deploy").stdout
        #expect(out.split(separator: "\n").map(String.init) == ["deploy", "0"])
    }

    @Test("apt-get install works inside a host from the lab repository")
    func aptInstallFromLocalRepository() throws {
        let ssh = LabSSH(inventory: try LabGate.mainInventory())
        let script = """
            export DEBIAN_FRONTEND=noninteractive
            apt-get -q update >/dev/null
            apt-get install -y -q tree >/dev/null
            tree --version
            apt-get remove -y -q tree >/dev/null
            ! command -v tree
            grep -h '^deb ' /etc/apt/sources.list
            """
        // db: the host no runbook test logs into, so this apt run never meets another's dpkg lock.
        let out = try ssh.run("db", script).stdout
        #expect(out.contains("tree v"))
        #expect(out.contains("[trusted=yes] http://198.51.100."))
    }

    @Test("nfs-master has /dev/xvdf as a block device")
    func nfsMasterHasBlockDevice() throws {
        let inventory = try LabGate.mainInventory()
        #expect(inventory.hosts["nfs-master"]?.vars?["dataDevice"] == "/dev/xvdf")
        let out = try LabSSH(inventory: inventory).run("nfs-master", "test -b /dev/xvdf && blockdev --getsize64 /dev/xvdf").stdout
        #expect((Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) >= 512 * 1024 * 1024)
        let other = try LabSSH(inventory: inventory).run("web-node", "test -e /dev/xvdf", check: false)
        #expect(other.status != 0, "only hosts that need a block device get one")
    }

    @Test("MariaDB answers on the db address with the admin password, and refuses a wrong one")
    func mariaDBAdmin() throws {
        let inventory = try LabGate.mainInventory()
        let db = try #require(inventory.database)
        let password = try String(contentsOfFile: try #require(db.adminPasswordFile), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        func query(_ secret: String) throws -> ShellResult {
            // The password goes in a 0600 option file, never on the command line.
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-lab-my-\(UUID().uuidString).cnf").path
            FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
            try "[client]\npassword=\(secret)\n".write(toFile: path, atomically: false, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: path) }
            return try Shell().run("mariadb", ["--defaults-extra-file=\(path)", "-h", db.host, "-P", String(db.port ?? 3306),
                                               "-u", db.adminUser, "-N", "-e", "SELECT CURRENT_USER()"], check: false)
        }
        let good = try query(password)
        #expect(good.status == 0, "\(good.stderr)")
        #expect(good.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\(db.adminUser)@%")
        let bad = try query(password + "x")
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("Access denied"))
        let mode = try FileManager.default.attributesOfItem(atPath: try #require(db.adminPasswordFile))[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("moto accepts the lab key and rejects a wrong secret")
    func motoChecksSignatures() throws {
        let inventory = try LabGate.mainInventory()
        let script = #"""
        import sys, configparser, boto3, botocore
        endpoint, path, region = sys.argv[1], sys.argv[2], sys.argv[3]
        c = configparser.ConfigParser(); c.read(path); d = c["default"]
        def call(secret):
            ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=region,
                               aws_access_key_id=d["aws_access_key_id"], aws_secret_access_key=secret)
            try:
                ec2.describe_security_groups(); return "ok"
            except botocore.exceptions.ClientError as e:
                return e.response["Error"]["Code"]
        print(call(d["aws_secret_access_key"]))
        print(call(d["aws_secret_access_key"] + "x"))
        """#
        let python = ["python3", "/usr/bin/python3", "/var/cache/ccrun-lab/moto-venv/bin/python3"]
            .first { Shell().succeeds($0, ["-c", "import boto3"]) }
        let out = try Shell().run(try #require(python), ["-", try #require(inventory.aws?.endpoint), try #require(inventory.aws?.credentialsFile),
                                                         try #require(inventory.aws?.region)], input: script).stdout
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.first == "ok")
        #expect(lines.count == 2 && lines[1] != "ok", "a wrong secret must be rejected, got \(lines)")
    }

    /// On the separate scratch lab: block device usable for real, restart brings enabled services
    /// back, and `down` leaves nothing behind.
    @Test("scratch lab: mkfs/fstab/mount -a on xvdf, restart-host, then down leaves nothing")
    func scratchLabLifecycle() throws {
        let lab = Lab(spec: .scratch(hosts: 2))
        defer { try? lab.down() }
        let inventory = try lab.up()
        let ssh = LabSSH(inventory: inventory)
        #expect(try !lab.leftovers().isEmpty, "a running lab must be visible to the leftover scan")

        // The block device takes a real filesystem through fstab.
        let mountOut = try ssh.run("nfs-master", """
            mkfs -t ext4 -q -F /dev/xvdf
            mkdir -p /data
            grep -q '^/dev/xvdf ' /etc/fstab || echo '/dev/xvdf /data ext4 defaults 0 2' >> /etc/fstab
            mount -a
            echo persisted > /data/file
            awk '$2 == "/data" {print $1, $3}' /proc/mounts
            """).stdout
        #expect(mountOut.contains("/dev/xvdf ext4"))

        // A service enabled with update-rc.d comes back after a restart.
        try ssh.run("db", """
            cat > /etc/init.d/ccrtest <<'EOF'
            #!/bin/sh
            ### BEGIN INIT INFO
            # Provides: ccrtest
            # Required-Start:
            # Required-Stop:
            # Default-Start: 2 3 4 5
            # Default-Stop: 0 1 6
            ### END INIT INFO
            case "$1" in start) /usr/sbin/sshd -p 8081 -o PidFile=/run/ccrtest.pid ;; esac
            EOF
            chmod +x /etc/init.d/ccrtest
            update-rc.d ccrtest defaults
            """)
        let dbAddress = try #require(inventory.hosts["db"]?.address)
        let marker = try ssh.run("db", "cat /etc/ccrun-lab-marker").stdout
        let bootBefore = try ssh.run("db", "cat /proc/1/stat | cut -d' ' -f22").stdout
        #expect(try ssh.run("db", "ss -Hltn | grep -c ':8081 '", check: false).stdout.hasPrefix("0"))
        try lab.restartHost("db")
        #expect(try ssh.run("db", "cat /etc/ccrun-lab-marker").stdout == marker)
        try lab.restartHost("nfs-master")
        #expect(try ssh.run("nfs-master", "cat /data/file").stdout == "persisted\n", "fstab mounts come back at boot")
        #expect(try ssh.run("db", "cat /proc/1/stat | cut -d' ' -f22").stdout != bootBefore, "init must be new")
        var serving = false
        for _ in 0..<50 where !serving {
            serving = Shell().succeeds("bash", ["-c", "exec 3<>/dev/tcp/\(dbAddress)/8081"])
            if !serving { usleep(100_000) }
        }
        #expect(serving, "service enabled with update-rc.d must start again after restart-host")

        // A writable layer made on another root filesystem build (state an earlier lab left on
        // this machine, or a rebuilt cache) is replaced by a fresh one, not reused half-broken.
        try "another build\n".write(toFile: lab.spec.hostDirectory("db") + "/rootfs-build", atomically: true, encoding: .utf8)
        try lab.up()
        #expect(try ssh.run("db", "cat /etc/ccrun-lab-marker").stdout != marker, "db must be a fresh host")
        #expect(try ssh.run("db", "echo ok > /etc/ccrun-written && cat /etc/ccrun-written").stdout == "ok\n")
        #expect(try ssh.run("nfs-master", "cat /data/file").stdout == "persisted\n", "a current host is kept")

        try lab.down()
        #expect(try lab.leftovers() == [])
        let namespaces = try Shell().run("ip", ["netns", "list"]).stdout
        #expect(!namespaces.contains(lab.spec.namespacePrefix))
        let mounts = try Shell().run("cat", ["/proc/self/mountinfo"]).stdout   // whole: Foundation reads only 4 KB of /proc files
        #expect(!mounts.contains(lab.spec.stateDirectory + "/"))
        let loops = try Shell().run("losetup", ["-l", "-n", "-O", "BACK-FILE"]).stdout
        #expect(!loops.contains(lab.spec.stateDirectory))
        #expect(!FileManager.default.fileExists(atPath: lab.spec.inventoryPath))
        #expect(!Shell().succeeds("ip", ["link", "show", lab.spec.bridge]))
    }
}
