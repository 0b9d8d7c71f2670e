import Foundation
import Runbooks
import StepKit
import Testing

/// Host-free checks of what the guide runbooks would do, planned against probed-fact answers
/// as a Debian (apt, sysv) or RPM (yum, chkconfig) host gives them.
@Suite struct RunbookPlanTests {
    static let debian = FactOutput(stdout: "id=debian\nversion=12\nhas=apt-get\nhas=dpkg-query\nhas=update-rc.d\nhas=service\ninit=sysv", status: 0)
    static let centos = FactOutput(stdout: "id=centos\nversion=7\nhas=yum\nhas=rpm\nhas=chkconfig\nhas=service\ninit=sysv", status: 0)

    func facts(system: FactOutput, extra: [String: FactOutput] = [:]) -> FactSet {
        var o: [String: FactOutput] = [SystemProbe.key: system, PackagesProbe.key: FactOutput(stdout: "[dpkg]\n[rpm]", status: 0)]
        o.merge(extra) { _, n in n }
        return FactSet(o)
    }

    func deployment() -> Deployment {
        Deployment(nfsServer: "nfs.example", admin: DatabaseEndpoint(host: "db.example", port: 3306, user: "admin", password: Secret(label: "admin", value: "ADMINPW")),
                   readOnlyPassword: Secret(label: "cc_ro", value: "ROPW-123"), readWritePassword: Secret(label: "cc_rw", value: "RWPW-456"),
                   ccrBinary: Payload(Data("binary".utf8)), schemaSQL: "CREATE TABLE IF NOT EXISTS nodes (id INT);\nCREATE TABLE IF NOT EXISTS programs (\n  id INT);\n",
                   serviceFiles: ["ccr": .init(sysvScript: "#!/bin/sh\n", systemdUnit: "[Unit]\n"), "ccr-web": .init(sysvScript: "#!/bin/sh\n", systemdUnit: "[Unit]\n"),
                                  "ccr-watchdog": .init(sysvScript: "#!/bin/sh\n", systemdUnit: "[Unit]\n")])
    }

    @Test func nfsClientPackagesAreADistributionFact() throws {
        let step = NFSClient.steps()[0]
        let apt = try #require(try step.plan(facts(system: Self.debian), context: PlanContext()).change)
        #expect(apt.commands.joined().contains("apt-get"))
        #expect(apt.commands.joined().contains("nfs-common"))
        let rpm = try #require(try step.plan(facts(system: Self.centos), context: PlanContext()).change)
        #expect(rpm.commands.joined().contains("yum install -y -q nfs-utils rpcbind"))
    }

    @Test func kernelExportsReplaceLinesByPathAndRunExportfs() throws {
        let step = NFSExports(NFSMasterRunbook.exports, description: "exports")
        let old = "# keep me\n/srv/web 10.0.0.0/8(ro)\n/home *(rw)\n"
        let text = step.exportsText(from: old)
        #expect(text == "# keep me\n/srv/web *(rw,sync,no_root_squash,no_acl)\n/home *(rw)\n/srv/archive *(rw,async,no_root_squash,no_acl)\n/srv/logs *(rw,sync,no_root_squash,no_acl)\n")
        #expect(step.exportsText(from: text) == text)
        let b64 = Data(old.utf8).base64EncodedString()
        let f = facts(system: Self.debian, extra: [
            "nfs-server-kind": FactOutput(stdout: "kernel", status: 0),
            FileProbe.key("/etc/exports", content: true): FactOutput(stdout: "stat regular file|644|root|root|\(old.utf8.count)\nsha256 x\ncontent \(b64)", status: 0),
            FileProbe.key("/etc/ganesha/ganesha.conf", content: true): FactOutput(stdout: "absent", status: 0)])
        let change = try #require(try step.plan(f, context: PlanContext()).change)
        #expect(change.commands.last == "exportfs -ar")
    }

    @Test func ganeshaExportsCarryTheGuidesOptions() {
        let text = NFSExports(NFSMasterRunbook.exports, description: "exports").ganeshaText
        #expect(text.components(separatedBy: "EXPORT {").count == 4)
        #expect(text.contains("Path = /srv/archive;"))
        #expect(text.contains("Squash = No_Root_Squash;"))
        #expect(text.contains("Access_Type = RW;"))
        #expect(!text.contains("Root_Squash;\n") || text.contains("No_Root_Squash;"))
    }

    @Test func fstabNFSLineIsMatchedByMountPoint() throws {
        let m = Mount(nfs: "nfs.example", "/srv/web", at: "/srv/web", options: "ro,noac,noacl,nocto,nodiratime")
        #expect(m.fstabLine == "nfs.example:/srv/web /srv/web nfs ro,noac,noacl,nocto,nodiratime 0 0")
    }

    @Test func schemaTablesAreFoundForTheSatisfiedCheck() {
        #expect(DatabaseRunbook.tableNames(in: deployment().schemaSQL) == ["nodes", "programs"])
    }

    /// A schema that adds a column to existing tables (version 4's `caption_lines.service`) must
    /// still be applied: the step is satisfied only when schema_version's comment names at least
    /// the script's version.
    @Test func tablesStepWantsTheScriptsVersionNotOnlyItsTables() throws {
        var d = deployment()
        #expect(DatabaseRunbook.schemaVersion(in: d.schemaSQL) == nil)
        let old = try #require(DatabaseRunbook.make(d).steps.first { $0.id == "sql:tables-cc" } as? SQLScript)
        #expect(old.unless?.masked.hasSuffix("HAVING COUNT(*) = 2") == true, "a script without a version: tables only")
        d.schemaSQL += "ALTER TABLE schema_version COMMENT = 'ccr schema version 4';\n"
        #expect(DatabaseRunbook.schemaVersion(in: d.schemaSQL) == 4)
        let step = try #require(DatabaseRunbook.make(d).steps.first { $0.id == "sql:tables-cc" } as? SQLScript)
        let unless = try #require(step.unless?.masked)
        #expect(unless.contains("HAVING COUNT(*) = 2 AND SUM(table_name = 'schema_version' AND table_comment LIKE 'ccr schema version %'"))
        #expect(unless.hasSuffix("CAST(SUBSTRING(table_comment, 20) AS UNSIGNED) >= 4) = 1"))
    }

    @Test func passwordsNeverAppearInPlansOrApacheConfig() throws {
        let d = deployment()
        let site = WebNodeRunbook.apacheSite(errorLog: "/srv/logs/apache.log")
        #expect(site.contains("ErrorLog /srv/logs/apache.log"))
        #expect(site.contains("flushpackets=on"))
        #expect(site.contains("live/events flushpackets=on timeout=45"), "a live viewer does not pin a worker for an hour")
        #expect(!site.contains("timeout=3600"))
        #expect(!site.contains("ROPW") && !site.contains("PASSWORD"))
        let db = DatabaseRunbook.make(d)
        #expect(db.steps.count == 4)
        for step in db.steps {
            if let change = try step.plan(FactSet(Dictionary(uniqueKeysWithValues: step.facts.map { ($0.key, FactOutput(stdout: "0", status: 0)) })), context: PlanContext()).change {
                let shown = change.commands.joined() + (change.diff ?? "")
                #expect(!shown.contains("ROPW-123") && !shown.contains("RWPW-456"))
            }
        }
        #expect(db.secrets.map(\.label).contains("cc_rw"))
    }

    /// Facts in, undo out: what a database step undoes depends on what was there before it.
    @Test func databaseUndoDropsOnlyWhatTheRunCreated() throws {
        let d = deployment()
        let db = DatabaseRunbook.make(d)
        func undo(_ id: String, existed: Bool) throws -> [UndoAction] {
            let step = try #require(db.steps.first { $0.id == id })
            let sql = try #require(step as? SQLScript)
            var outputs = Dictionary(uniqueKeysWithValues: step.facts.map { ($0.key, FactOutput(stdout: "0", status: 0)) })
            if let q = sql.existedQuery { outputs[q.key] = FactOutput(stdout: existed ? "1" : "0", status: 0) }
            return try #require(try step.plan(FactSet(outputs), context: PlanContext()).change).undo
        }
        #expect(try undo("sql:user-cc_rw", existed: false) == [.runSQL(endpoint: d.admin.description, script: "DROP USER IF EXISTS 'cc_rw'@'%';")])
        guard case let .irreversible(reason) = try undo("sql:user-cc_rw", existed: true).first else {
            Issue.record("correcting an existing account must not be undone by dropping it"); return
        }
        #expect(reason.contains("existed before this run"))
        #expect(try undo("sql:tables-cc", existed: false) == [.runSQL(endpoint: d.admin.description,
            script: "SET FOREIGN_KEY_CHECKS = 0; DROP TABLE IF EXISTS `cc`.`nodes`, `cc`.`programs`; SET FOREIGN_KEY_CHECKS = 1;")])
        guard case .irreversible = try undo("sql:tables-cc", existed: true).first else {
            Issue.record("tables that partly existed must not be dropped by rollback"); return
        }
    }

    /// The repo node's ccr.conf holds the tuners' password in [server] (masked wherever the
    /// step is shown), and none when the inventory turned it off.
    @Test func repoNodeConfigCarriesTheTunerPassword() throws {
        func config(_ d: Deployment) throws -> SecretText {
            let file = try #require(try RepoNodeRunbook.make(d).steps.compactMap { $0 as? File }.first { $0.path == "/etc/ccr/ccr.conf" })
            return file.content
        }
        var d = deployment()
        d.tunerPassword = Secret(label: "tuner-password", value: "TUNERPW-789")
        let with = try config(d)
        #expect(with.revealed().contains("[server]\nlisten = 0.0.0.0\nport = 3030\npassword = TUNERPW-789\n\n[archive]\n"))
        #expect(!with.masked.contains("TUNERPW-789"))
        d.tunerPassword = nil
        let without = try config(d)
        #expect(without.revealed().contains("port = 3030\n\n[archive]\n"))
        #expect(!without.revealed().contains("password = TUNERPW"))
        #expect(!without.revealed().contains("proxy_protocol_from"))
    }

    /// With load balancers in the inventory, the repo node's ccr.conf takes PROXY headers from
    /// their addresses (HAProxy's send-proxy-v2), and from nobody else.
    @Test func repoNodeConfigTakesProxyHeadersFromTheLoadBalancers() throws {
        var d = deployment()
        d.loadBalancers = ["198.51.100.20", "198.51.100.21"]
        let file = try #require(try RepoNodeRunbook.make(d).steps.compactMap { $0 as? File }.first { $0.path == "/etc/ccr/ccr.conf" })
        #expect(file.content.revealed().contains("[server]\nlisten = 0.0.0.0\nport = 3030\nproxy_protocol_from = 198.51.100.20,198.51.100.21\n\n[archive]\n"))
    }

    /// The database runbook's SQL runs on MySQL 5.7, 8.0, 8.4 and MariaDB 10.x: nothing MySQL 8
    /// removed, and every value an escaped literal (a quote in a password cannot end the string).
    @Test func databaseSQLAvoidsWhatMySQL8Removed() throws {
        var d = deployment()
        d.readOnlyPassword = Secret(label: "cc_ro", value: #"it's "x" \ y"#)
        let steps = DatabaseRunbook.make(d).steps.compactMap { $0 as? SQLScript }
        #expect(steps.count == 4)
        var text = ""
        for step in steps {
            text += step.script.revealed() + "\n" + (step.unless?.revealed() ?? "") + "\n" + (step.existed?.revealed() ?? "") + "\n" + (step.undoSQL ?? "") + "\n"
        }
        let removed = ["PASSWORD(", "OLD_PASSWORD(", "ENCRYPT(", "ENCODE(", "DECODE(", "DES_ENCRYPT(", "DES_DECRYPT(", "authentication_string"]
        for name in removed { #expect(!text.uppercased().contains(name.uppercased()), "\(name) in the database runbook's SQL") }
        #expect(text.range(of: #"GRANT[^;]*IDENTIFIED BY"#, options: .regularExpression) == nil, "GRANT ... IDENTIFIED BY (removed in MySQL 8.0)")
        #expect(text.contains(#"IDENTIFIED BY 'it\'s "x" \\ y';"#))
        #expect(text.contains("SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')"))
        let user = try #require(steps.first { $0.id == "sql:user-cc_ro" })
        #expect(user.unlessAs?.user == "cc_ro", "the password is checked by logging in")
        #expect(!user.script.masked.contains("it's"))
    }

    /// The inventory decides the NFS server kind when it says; the probe is then not asked.
    @Test func nfsServerKindFromTheInventory() throws {
        let d = try deployment().applying(hostVars: ["nfsServerKind": "kernel", "dataDevice": "/dev/xvdg"])
        #expect(d.nfsServerKind == .kernel && d.dataDevice == "/dev/xvdg")
        let book = try NFSMasterRunbook.make(d)
        let packages = try #require(book.steps.compactMap { $0 as? ByFact }.first { $0.id == "packages:nfs-server" })
        let kind = try #require(packages.selector.first { $0.key.hasPrefix("nfs-server-kind") })
        #expect(kind.key == "nfs-server-kind:kernel")
        guard case .shell(let script) = kind.kind else { Issue.record("not a shell probe"); return }
        #expect(script == "echo kernel")
        let f = facts(system: Self.centos, extra: [kind.key: FactOutput(stdout: "kernel\n", status: 0)])
        let change = try #require(try packages.plan(f, context: PlanContext()).change)
        #expect(change.commands.joined().contains("yum install -y -q nfs-utils rpcbind"))
        #expect(throws: StepRefusal.self) { try deployment().applying(hostVars: ["nfsServerKind": "nfsd"]) }
        do { _ = try deployment().applying(hostVars: ["nfsServerKind": "nfsd"]) } catch {
            #expect("\(error)".contains("expected kernel or ganesha"))
        }
    }

    /// Without the inventory, the probe never waits for a loaded module: RPM and systemd hosts
    /// (Amazon Linux) get the kernel server; /proc/filesystems alone would say ganesha on a fresh host.
    @Test func nfsServerKindProbeDefaultsToTheKernelOnRPMAndSystemdHosts() throws {
        guard case .shell(let script) = NFSServerKind.probe().query.kind else { Issue.record("not a shell probe"); return }
        #expect(script.contains("[ -d /run/systemd/system ]"))
        #expect(script.contains("command -v rpm") && script.contains("! command -v dpkg"))
        #expect(script.contains("/lib/modules/$(uname -r)/kernel/fs/nfsd"))
        // Run it as the host would, with a fake rpm on PATH and no dpkg: kernel.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nfs-kind-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for tool in ["rpm", "grep", "uname"] {
            let target = tool == "rpm" ? "/bin/true" : (tool == "grep" ? "/bin/grep" : "/bin/uname")
            try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent(tool).path, withDestinationPath: target)
        }
        func probedKind() throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", script]
            p.environment = ["PATH": dir.path]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            p.waitUntilExit()
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        #expect(try probedKind() == "kernel\n")

        // A sysv Debian host whose kernel has no nfsd (this machine, like the lab's hosts): ganesha,
        // although procfs always has an empty /proc/fs/nfsd mount point (it once said kernel).
        let machine = (try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8)) ?? ""
        let fm = FileManager.default
        if !machine.contains("nfsd"), fm.fileExists(atPath: "/proc/fs/nfsd"), !fm.fileExists(atPath: "/run/systemd/system"),
           !fm.fileExists(atPath: "/lib/modules") {
            try fm.removeItem(at: dir.appendingPathComponent("rpm"))
            #expect(try probedKind() == "ganesha\n")
        }
    }

    @Test func everySectionBuildsWithUniqueStepIDs() throws {
        let d = deployment()
        for book in [DatabaseRunbook.make(d), try NFSMasterRunbook.make(d), try RepoNodeRunbook.make(d), try WebNodeRunbook.make(d),
                     try LoadBalancerRunbook.make(fleet())] {
            #expect(Set(book.steps.map(\.id)).count == book.steps.count, "\(book.name)")
            try book.validate()
        }
    }

    // MARK: the load balancer (ccrun lb)

    func fleet() -> Deployment {
        var d = deployment()
        d.repoNodes = [.init(name: "repo-node", address: "198.51.100.12"), .init(name: "repo-node-2", address: "198.51.100.24")]
        d.webNodes = [.init(name: "web-node", address: "198.51.100.13"), .init(name: "web-node-2", address: "198.51.100.25")]
        return d
    }

    /// Each backend has exactly its role's servers with their health check, tuners by least
    /// connections over TCP, the web over HTTP checked by GET /.
    @Test func haproxyConfigBalancesEachRoleOnItsPort() throws {
        let d = fleet()
        let cfg = LoadBalancerRunbook.haproxyConfig(repoNodes: d.repoNodes, webNodes: d.webNodes)
        func section(_ header: String) -> String {
            let after = cfg.components(separatedBy: "\n" + header + "\n")[1]
            return after.components(separatedBy: "\n\n")[0]
        }
        let tuners = section("backend repo-nodes"), web = section("backend web-nodes")
        #expect(tuners.contains("    mode tcp\n") && tuners.contains("    balance leastconn\n"))
        // The tuner's address reaches ccr in a PROXY v2 header (ccr's proxy_protocol_from).
        #expect(tuners.contains("    server repo-node 198.51.100.12:3030 send-proxy-v2 check inter 2s fall 2 rise 2\n"))
        #expect(tuners.contains("    server repo-node-2 198.51.100.24:3030 send-proxy-v2 check"))
        #expect(!web.contains("send-proxy"))
        #expect(!tuners.contains("web-node"))
        #expect(web.contains("    mode http\n") && web.contains("    http-check send meth GET uri /\n") && web.contains("http-check expect status 200"))
        #expect(web.contains("    server web-node 198.51.100.13:80 check") && web.contains("    server web-node-2 198.51.100.25:80 check"))
        #expect(!web.contains("repo-node"))
        #expect(section("frontend tuners").contains("bind :3030") && section("frontend web").contains("bind :80"))
        #expect(cfg.contains("stats socket /run/haproxy/admin.sock mode 600 level admin"))
        #expect(section("defaults").contains("    option redispatch"), "a refused connection must be retried on another node")
        // Longer than ccr's idle_timeout (120 s): ccr, not the load balancer, closes a silent tuner.
        #expect(tuners.contains("timeout tunnel 3m") && section("frontend tuners").contains("timeout client 3m"))
    }

    /// apt or dnf by probe; the configuration must pass `haproxy -c` before it replaces the old
    /// one (the check runs on the uploaded copy, before the rename); a reload when it changed.
    @Test func loadBalancerPlanOnABareHost() throws {
        let book = try LoadBalancerRunbook.make(fleet())
        let steps = Dictionary(uniqueKeysWithValues: book.steps.map { ($0.id, $0) })
        let packages = try #require(steps["packages:haproxy,python3"])
        #expect(try #require(try packages.plan(facts(system: Self.debian), context: PlanContext()).change).commands.joined().contains("install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold haproxy python3"))
        #expect(try #require(try packages.plan(facts(system: Self.centos), context: PlanContext()).change).commands.joined().contains("yum install -y -q haproxy python3"))
        let file = try #require(steps["file:/etc/haproxy/haproxy.cfg"])
        let absent = facts(system: Self.debian, extra: [FileProbe.key("/etc/haproxy/haproxy.cfg", content: true): FactOutput(stdout: "absent", status: 0)])
        let change = try #require(try file.plan(absent, context: PlanContext()).change)
        let finish = try #require(change.commands.last)
        let check = try #require(finish.range(of: "haproxy -c -q -f /etc/haproxy/.haproxy.cfg.ccrun-tmp"))
        let rename = try #require(finish.range(of: "mv -f /etc/haproxy/.haproxy.cfg.ccrun-tmp /etc/haproxy/haproxy.cfg"))
        #expect(check.lowerBound < rename.lowerBound)
        #expect(change.undo == [.restoreFile(path: "/etc/haproxy/haproxy.cfg", previous: nil)])
        #expect(book.steps.map(\.id).suffix(3) == ["reload-haproxy", "running:haproxy", "enabled:haproxy"])
    }

    @Test func loadBalancerWithoutServersOfARoleIsRefusedNamingTheRole() {
        var d = fleet()
        d.webNodes = []
        #expect { try LoadBalancerRunbook.make(d) } throws: { "\($0)".contains("no host with role web-node") }
    }
}
