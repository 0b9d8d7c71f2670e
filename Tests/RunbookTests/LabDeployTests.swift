import Foundation
import SupportKit
import Testing

/// The whole guide applied to the lab by the built `ccrun`, then used as a user would: a tuner
/// stream to repo-node:3030 and the program's SRT downloaded through Apache on web-node from
/// another lab host. Then a second run of each runbook must find nothing to change.
///
/// Serialized and alone on the lab's db / nfs-master / repo-node / web-node: it installs
/// services on them (other suites touching those hosts must not run at the same time).
///
/// Binaries: `ccrun` is `$CCRUN_BINARY` or the one `swift test` built beside this test bundle.
/// The `ccr` shipped to the hosts must have the Swift runtime linked in (the hosts have no Swift):
/// `$CCR_SHIP_BINARY`, else `$CCR_BINARY` when it is such a static build, else the one scripts/test
/// builds (`scripts/build-ship ccr`, into .build-ship).
@Suite(.serialized, .enabled(if: LabEnvironment.shouldRun && Fixtures.shouldRunSharedTests,
                             "needs the lab (`ccrun lab up`) and the shared fixtures"))
struct LabDeployTests {
    struct CommandResult { var status: Int32; var output: String }

    enum LabDeployError: Error, CustomStringConvertible {
        case missing(String)
        case timedOut(String)
        var description: String {
            switch self {
            case let .missing(what): "not found: \(what)"
            case let .timedOut(what): "timed out waiting for \(what)"
            }
        }
    }

    static func ccrunBinary() throws -> String {
        guard let path = CCRunExecutable.path else { throw LabDeployError.missing(CCRunExecutable.missing) }
        return path
    }

    /// A ccr the hosts can run. ccrun no longer builds one unless asked (`--build-ccr`), and the
    /// debug ccr beside the tests' ccrun needs the Swift runtime, so the tests name the file.
    static func shipBinary() throws -> String {
        let env = ProcessInfo.processInfo.environment
        if let p = env["CCR_SHIP_BINARY"], !p.isEmpty { return p }
        if let p = env["CCR_BINARY"], !p.isEmpty {
            let ldd = try run("/usr/bin/ldd", [p])
            if !ldd.output.contains("libswiftCore") { return p }
        }
        let built = Fixtures.packageRoot.appendingPathComponent(".build-ship/release/ccr").path
        if FileManager.default.isExecutableFile(atPath: built) { return built }
        throw LabDeployError.missing("a ccr the hosts can run: set CCR_SHIP_BINARY, or build \(built) (scripts/test does)")
    }

    @discardableResult
    static func run(_ path: String, _ args: [String], environment: [String: String]? = nil) throws -> CommandResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        if let environment { p.environment = environment }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("labdeploy-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let handle = try FileHandle(forWritingTo: out)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        p.waitUntilExit()
        try handle.close()
        let text = String(decoding: (try? Data(contentsOf: out)) ?? Data(), as: UTF8.self)
        return CommandResult(status: p.terminationStatus, output: text)
    }

    struct Lab {
        let inventory: String
        let hosts: [String: [String: Any]]
        /// Where ccrun keeps the deployment's generated passwords (beside the admin's).
        let secretsDirectory: String
        func address(_ host: String) throws -> String {
            guard let a = hosts[host]?["address"] as? String else { throw LabDeployError.missing("host \(host) in \(inventory)") }
            return a
        }
        func netns(_ host: String) throws -> String {
            guard let n = (hosts[host]?["vars"] as? [String: Any])?["netns"] as? String else { throw LabDeployError.missing("netns of \(host)") }
            return n
        }
        static func load() throws -> Lab {
            let path = LabEnvironment.inventoryPath
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let admin = (json["database"] as? [String: Any])?["adminPasswordFile"] as? String ?? ""
            return Lab(inventory: path, hosts: json["hosts"] as? [String: [String: Any]] ?? [:],
                       secretsDirectory: URL(fileURLWithPath: admin).deletingLastPathComponent().path)
        }
        /// An HTTP GET made from inside another lab host (the db host's network namespace).
        func get(_ url: String, from host: String = "db") throws -> CommandResult {
            try LabDeployTests.run("/usr/sbin/ip", ["netns", "exec", try netns(host), "curl", "-sS", "-f", "--max-time", "10", url])
        }
    }

    /// The four guide commands, in the guide's order.
    static func runbooks(_ inventory: String) -> [[String]] {
        [["database", "--inventory", inventory],
         ["nfs-master", "--inventory", inventory, "nfs-master"],
         ["repo-node", "--inventory", inventory, "repo-node"],
         ["web-node", "--inventory", inventory, "web-node"]]
    }

    func apply(_ ccrun: String, _ args: [String], ship: String?) throws -> CommandResult {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "CCR_BINARY")
        return try Self.run(ccrun, args + (ship.map { ["--ccr-binary", $0] } ?? []), environment: env)
    }

    func programIDs(_ lab: Lab, web: String) throws -> [String] {
        let r = try lab.get("http://\(web)/api/programs?limit=1000")
        guard r.status == 0, let json = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any],
              let programs = json["programs"] as? [[String: Any]] else { throw LabDeployError.missing("program list from http://\(web)/api/programs: \(r.output)") }
        return programs.compactMap { $0["id"] as? String }
    }

    @Test(.timeLimit(.minutes(30)))
    func deployStreamDownloadAndRerun() async throws {
        let lab = try Lab.load()
        let ccrun = try Self.ccrunBinary()
        let ship: String? = try Self.shipBinary()
        let expectedSRT = try Data(contentsOf: try Fixtures.shared("the.tudors.sendto.srt"))

        for args in Self.runbooks(lab.inventory) {
            let r = try apply(ccrun, args, ship: ship)
            try #require(r.status == 0, "ccrun \(args.joined(separator: " ")) exited \(r.status):\n\(r.output.suffix(4000))")
        }

        let program = try await streamAndDownload(lab)
        try expectSecondRunAllOK(lab, ccrun: ccrun, ship: ship)

        try checkExportsOverNFS(lab)
        try await checkRestartedHostsComeBack(lab, ccrun: ccrun, program: program, expectedSRT: expectedSRT)
        try checkServicesThatDieFailTheRun(lab, ccrun: ccrun, ship: ship)
    }

    /// A tuner, as `ccextractor -sendto repo-node:3030 -tcppassword ...` sends it: the whole
    /// capture with the deployment's tuner password, then close. The program must appear and its
    /// archived SRT be served through Apache byte for byte (the archive is written when the tuner
    /// disconnects); a tuner without the password is refused. Returns the program's id.
    func streamAndDownload(_ lab: Lab) async throws -> String {
        let capture = try Fixtures.shared("the.tudors.sendto.bin")
        let expectedSRT = try Data(contentsOf: try Fixtures.shared("the.tudors.sendto.srt"))
        let web = try lab.address("web-node"), repo = try lab.address("repo-node")
        let home = try lab.get("http://\(web)/")
        #expect(home.status == 0 && home.output.contains("<html"), "the home page through Apache: \(home.output.prefix(500))")
        let before = Set(try programIDs(lab, web: web))

        let passwordFile = lab.secretsDirectory + "/tuner-password"
        #expect(try String(contentsOfFile: passwordFile, encoding: .utf8).count >= 20, "the deployment generates a tuner password")
        let stream = try Self.run(Fixtures.packageRoot.appendingPathComponent("scripts/stream-capture").path, [repo, capture.path, passwordFile])
        try #require(stream.status == 0, "streaming to \(repo):3030 failed: \(stream.output)")
        let anonymous = try Self.run(Fixtures.packageRoot.appendingPathComponent("scripts/stream-capture").path, [repo, capture.path])
        #expect(anonymous.status != 0 && anonymous.output.contains("WRONG_PASSWORD"), "a tuner without the password: \(anonymous.output)")

        var srt = Data(), program = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if program.isEmpty, let id = try programIDs(lab, web: web).first(where: { !before.contains($0) }) { program = id }
            if !program.isEmpty {
                let r = try lab.get("http://\(web)/programs/\(program)/srt")
                srt = Data(r.output.utf8)
                if r.status == 0 && srt == expectedSRT { break }
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        try #require(!program.isEmpty, "no new program listed on http://\(web)/api/programs after streaming")
        #expect(srt == expectedSRT, "http://\(web)/programs/\(program)/srt differs from the.tudors.sendto.srt:\n\(String(decoding: srt.prefix(600), as: UTF8.self))")
        return program
    }

    /// A second run of each runbook changes nothing: exit 0 and every step reports ok.
    func expectSecondRunAllOK(_ lab: Lab, ccrun: String, ship: String?) throws {
        for args in Self.runbooks(lab.inventory) {
            let r = try apply(ccrun, args, ship: ship)
            #expect(r.status == 0, "second ccrun \(args.joined(separator: " ")) exited \(r.status):\n\(r.output.suffix(4000))")
            let notOK = r.output.split(separator: "\n").filter { line in
                [": changed ", ": failed ", ": skipped "].contains { line.contains($0) }
            }
            #expect(notOK.isEmpty, "second ccrun \(args[0]) was not all ok:\n\(notOK.joined(separator: "\n"))")
        }
    }

    /// The lab inventory's database: the admin's login, and where ccrun keeps the generated
    /// cc_ro/cc_rw passwords (beside the admin password file).
    func labDatabase() throws -> (host: String, port: Int, admin: String, adminPassword: String, secretsDirectory: String) {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: LabEnvironment.inventoryPath))) as? [String: Any])
        let db = try #require(json["database"] as? [String: Any])
        let file = try #require(db["adminPasswordFile"] as? String)
        return (try #require(db["host"] as? String), db["port"] as? Int ?? 3306, try #require(db["adminUser"] as? String),
                try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
                URL(fileURLWithPath: file).deletingLastPathComponent().path)
    }

    /// A query as the lab's database admin (the password in a 0600 option file, never argv).
    func adminSQL(_ query: String) throws -> CommandResult {
        let db = try labDatabase()
        let cnf = FileManager.default.temporaryDirectory.appendingPathComponent("labdeploy-\(UUID().uuidString).cnf").path
        _ = FileManager.default.createFile(atPath: cnf, contents: Data("[client]\npassword=\(db.adminPassword)\n".utf8), attributes: [.posixPermissions: 0o600])
        defer { try? FileManager.default.removeItem(atPath: cnf) }
        return try Self.run("/usr/bin/mariadb", ["--defaults-extra-file=\(cnf)", "-h", db.host, "-P", String(db.port), "-u", db.admin, "-e", query])
    }

    /// Issue 23: the database was recreated, so cc_rw's and cc_ro's passwords no longer match the
    /// ones on the hosts, and the watchdog and ccr web exit as soon as they start (a restart, as
    /// after a reboot). A run must fail naming the service and the reason, every time, until the
    /// database runbook puts the passwords back; then the runs converge.
    func checkServicesThatDieFailTheRun(_ lab: Lab, ccrun: String, ship: String?) throws {
        let shell = try LabHostShell.load()
        let token = UUID().uuidString.prefix(8)
        let altered = try adminSQL("ALTER USER 'cc_rw'@'%' IDENTIFIED BY 'recreated-rw-\(token)'; ALTER USER 'cc_ro'@'%' IDENTIFIED BY 'recreated-ro-\(token)';")
        try #require(altered.status == 0, "changing the passwords: \(altered.output)")
        try shell.check("nfs-master", "service ccr-watchdog restart >/dev/null", "restart the watchdog")
        try shell.check("web-node", "service ccr-web restart >/dev/null", "restart ccr web")
        let nfs = Self.runbooks(lab.inventory)[1], web = Self.runbooks(lab.inventory)[3]

        for attempt in 1...2 {
            let r = try apply(ccrun, nfs, ship: ship)
            #expect(r.status == 1, "nfs-master run \(attempt) with a dying watchdog exited \(r.status):\n\(r.output.suffix(3000))")
            let failed = r.output.components(separatedBy: "\n").drop { !$0.contains(": failed ") }.prefix(6).joined(separator: "\n")
            #expect(failed.contains("ccr-watchdog") && failed.contains("database login refused for user 'cc_rw'"),
                    "run \(attempt) does not say the watchdog died and why:\n\(r.output.suffix(3000))")
        }
        let webRun = try apply(ccrun, web, ship: ship)
        #expect(webRun.status == 1 && webRun.output.contains("ccr-web is not running") && webRun.output.contains("database login refused for user 'cc_ro'"),
                "web-node with a dying ccr web:\n\(webRun.output.suffix(3000))")

        // A dry-run reports the stopped watchdog as drift, with the reason from its log; a secret the
        // log holds (a service that logs its connection) is masked like everywhere else. (The
        // secret is planted in the sysv log file; a systemd unit's journal takes only what the
        // service itself writes.)
        let systemd = LabEnvironment.hasSystemdHosts
        let secret = try String(contentsOfFile: try labDatabase().secretsDirectory + "/cc_rw-password", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if !systemd {
            try shell.check("nfs-master", "echo 'debug: connecting with password=\(secret)' >> /var/log/ccr-watchdog.log", "plant the password in the log")
        }
        let audit = try apply(ccrun, nfs + ["--dry-run"], ship: ship)
        #expect(audit.status == 2 && audit.output.contains("database login refused for user 'cc_rw'"), "dry-run:\n\(audit.output.suffix(3000))")
        #expect((systemd || audit.output.contains("password=********(cc_rw-password)")) && !audit.output.contains(secret),
                "the log's secret in the dry-run:\n\(audit.output.suffix(2000))")

        let fixed = try apply(ccrun, Self.runbooks(lab.inventory)[0], ship: ship)
        try #require(fixed.status == 0, "ccrun database putting the passwords back:\n\(fixed.output.suffix(3000))")
        for args in [nfs, web] {
            let started = Date()
            let converge = try apply(ccrun, args, ship: ship)
            #expect(converge.status == 0, "\(args[0]) after the passwords were fixed:\n\(converge.output.suffix(3000))")
            print("\(args[0]) converging run (one service start with its settle time): \(String(format: "%.1f", Date().timeIntervalSince(started))) s; "
                  + converge.output.split(separator: "\n").filter { $0.contains(": changed ") }.joined(separator: "; "))
            let again = try apply(ccrun, args, ship: ship)
            let notOK = again.output.split(separator: "\n").filter { line in [": changed ", ": failed ", ": skipped "].contains { line.contains($0) } }
            #expect(again.status == 0 && notOK.isEmpty, "\(args[0]) after converging was not all ok:\n\(again.output.suffix(3000))")
        }
    }

    /// The guide's three exports, used over real NFS (libnfs, not the lab's mount stand-in) from
    /// the client hosts: a repository node reads and writes all three. A web node reads them and
    /// writes its logs; its fstab mounts /srv/web and /srv/archive read-only, so a write there
    /// through its mount is refused. (The guide exports everything `*(rw,...)`, so the NFS server
    /// itself would take a libnfs write from any client: read-only is the web node's mount option.)
    func checkExportsOverNFS(_ lab: Lab) throws {
        let shell = try LabHostShell.load()
        let server = try lab.address("nfs-master")
        let token = UUID().uuidString.prefix(8)
        for client in ["repo-node", "web-node"] {
            try shell.check(client, "command -v nfs-cp >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnfs-utils; } >/dev/null 2>&1",
                            "install libnfs-utils from the lab repository")
        }
        defer { _ = try? shell.run("nfs-master", "rm -f /srv/*/ccrun-nfs-check-\(token)-*") }
        // A just started ganesha is in its grace period (up to 90 s) and answers a create with
        // NFS3ERR_JUKEBOX, "try again later", which libnfs's nfs-cp does not retry (and the
        // half-created file then exists): wait for a create to succeed, a new name each try.
        try shell.check("repo-node", """
            echo grace > /tmp/ccrun-nfs-grace; i=0
            until out=$(nfs-cp /tmp/ccrun-nfs-grace nfs://\(server)/srv/logs/ccrun-nfs-check-\(token)-grace-$i 2>&1); do
              case "$out" in *JUKEBOX*) [ $i -lt 120 ] || { echo "$out"; exit 1; }; i=$((i + 1)); sleep 1;; *) echo "$out"; exit 1;; esac
            done
            """, "wait for ganesha's grace period to end")
        let writable = [("repo-node", "/srv/archive"), ("repo-node", "/srv/web"), ("repo-node", "/srv/logs"), ("web-node", "/srv/logs")]
        for (client, export) in writable {
            let name = "ccrun-nfs-check-\(token)-\(client)"
            let r = try shell.run(client, """
                set -e
                nfs-ls nfs://\(server)\(export) >/dev/null
                echo "written by \(client) over NFS" > /tmp/\(name)
                nfs-cp /tmp/\(name) nfs://\(server)\(export)/\(name)
                nfs-cat nfs://\(server)\(export)/\(name)
                """)
            #expect(r.status == 0 && r.output.contains("written by \(client) over NFS"),
                    "\(client) could not list, write and read back nfs://\(server)\(export) with libnfs: \(r.output)")
            // The file is on the master's data volume, as the master itself sees it.
            let onServer = try shell.run("nfs-master", "cat \(export)/\(name)")
            #expect(onServer.output.contains("written by \(client) over NFS"), "\(export)/\(name) written over NFS is not on nfs-master: \(onServer.output)")
        }
        for export in ["/srv/web", "/srv/archive"] {
            let list = try shell.run("web-node", "nfs-ls nfs://\(server)\(export) >/dev/null")
            #expect(list.status == 0, "web-node cannot read nfs://\(server)\(export): \(list.output)")
            let write = try shell.run("web-node", "touch \(export)/ccrun-nfs-check-\(token)-web-node")
            #expect(write.status != 0, "web-node could write \(export) through its read-only mount")
        }
        let logs = try shell.run("web-node", "touch /srv/logs/ccrun-nfs-check-\(token)-web-mount")
        #expect(logs.status == 0, "web-node cannot write /srv/logs through its mount: \(logs.output)")
    }

    /// Each service host "rebooted" (every process of its PID namespace killed, its init started
    /// again): what runs afterwards was started at boot by the host's init, so "enabled at boot"
    /// is checked by the services actually coming back, not by looking at links.
    func checkRestartedHostsComeBack(_ lab: Lab, ccrun: String, program: String, expectedSRT: Data) async throws {
        let shell = try LabHostShell.load()
        for host in ["nfs-master", "repo-node", "web-node"] {
            let r = try Self.run(ccrun, ["lab", "restart-host", host])
            try #require(r.status == 0, "ccrun lab restart-host \(host): \(r.output)")
        }
        let repo = try lab.address("repo-node"), web = try lab.address("web-node")
        var tuners = false, srt = Data()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            tuners = try Self.run("/usr/sbin/ip", ["netns", "exec", try lab.netns("db"), "bash", "-c",
                                                   "exec 3<>/dev/tcp/\(repo)/3030"]).status == 0
            let r = try lab.get("http://\(web)/programs/\(program)/srt")
            srt = Data(r.output.utf8)
            if tuners && r.status == 0 && srt == expectedSRT { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(tuners, "after restart-host, nothing accepts tuners on \(repo):3030")
        #expect(srt == expectedSRT, "after restart-host, http://\(web)/programs/\(program)/srt is not the program's SRT:\n\(String(decoding: srt.prefix(400), as: UTF8.self))")
        for (host, process) in [("nfs-master", "ccr watchdog"), ("nfs-master", "ganesha.nfsd"), ("nfs-master", "rpcbind"),
                                ("repo-node", "ccr serve"), ("repo-node", "rpcbind"), ("web-node", "ccr web"), ("web-node", "apache2")] {
            #expect(try shell.running(host, process), "\(process) is not running on \(host) after restart-host")
        }
        // The master's volume came back through its fstab line, and the clients' NFS mounts too.
        try shell.check("nfs-master", "mountpoint -q /srv && test -d /srv/archive", "/srv mounted from /dev/xvdf after restart")
        for host in ["repo-node", "web-node"] {
            try shell.check(host, "mountpoint -q /srv/archive && mountpoint -q /srv/logs && mountpoint -q /srv/web", "NFS mounts after restart")
        }
    }
}
