import Foundation
import MariaDBClient
import StepKit
import SupportKit
import Testing

/// The guide's "Creating Database" from a server that has neither the database nor its users,
/// through the built `ccrun` as a user runs it, against the lab's real MariaDB. Each test names
/// its own database and accounts (inventory `database.name`, `readOnlyUser`, `readWriteUser`),
/// so the `cc` database the other lab tests deploy against is never touched.
@Suite(.serialized, .enabled(if: LabEnvironment.shouldRun && Fixtures.shouldRunSharedTests,
                             "needs the lab's MariaDB (`ccrun lab up`) and the shared fixtures"))
struct DatabaseRunbookTests {
    struct Setup {
        let directory: URL
        let inventory: String
        let stateDir: String
        let targetDir: String
        let secretsDir: String
        let ship: [String]
        let db: String, ro: String, rw: String
        let admin: (host: String, port: Int, user: String, passwordFile: String)

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("database-runbook-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let suffix = String(UUID().uuidString.lowercased().filter(\.isLetter).prefix(6))
            db = "cct_\(suffix)"; ro = "ro_\(suffix)"; rw = "rw_\(suffix)"
            stateDir = directory.appendingPathComponent("state").path
            targetDir = directory.appendingPathComponent("target").path
            secretsDir = directory.appendingPathComponent("secrets").path
            ship = ["--ccr-binary", try LabDeployTests.shipBinary()]

            var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: LabEnvironment.inventoryPath))) as? [String: Any])
            var database = try #require(json["database"] as? [String: Any], "no database in the lab inventory")
            admin = (try #require(database["host"] as? String), database["port"] as? Int ?? 3306,
                     try #require(database["adminUser"] as? String), try #require(database["adminPasswordFile"] as? String))
            database["name"] = db; database["readOnlyUser"] = ro; database["readWriteUser"] = rw
            json["database"] = database
            inventory = directory.appendingPathComponent("inventory.json").path
            try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys]).write(to: URL(fileURLWithPath: inventory))
        }

        /// `ccrun database` with this test's inventory, journals and password files.
        func args(_ extra: [String] = []) -> [String] {
            ["database", "--inventory", inventory, "--state-dir", stateDir, "--target-state-dir", targetDir,
             "--secrets-dir", secretsDir, "--json"] + ship + extra
        }

        /// Options of `ccrun rollback` / `ccrun resume` for the run's target, the controller.
        func controllerArgs(_ command: String) -> [String] {
            [command, "--inventory", inventory, "--state-dir", stateDir, "--target-state-dir", targetDir]
                + (command == "resume" ? ship + ["--secrets-dir", secretsDir] : []) + ["controller"]
        }

        func password(_ user: String) throws -> String {
            try String(contentsOfFile: "\(secretsDir)/\(user)-password", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// A query through the mariadb client, the password in a 0600 option file (never argv).
        func sql(_ query: String, as user: String? = nil) throws -> LabDeployTests.CommandResult {
            let secret = try user.map(password) ?? String(contentsOfFile: admin.passwordFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let cnf = directory.appendingPathComponent("my-\(UUID().uuidString).cnf").path
            FileManager.default.createFile(atPath: cnf, contents: nil, attributes: [.posixPermissions: 0o600])
            try "[client]\npassword=\(secret)\n".write(toFile: cnf, atomically: false, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: cnf) }
            return try LabDeployTests.run("/usr/bin/mariadb", ["--defaults-extra-file=\(cnf)", "-h", admin.host, "-P", String(admin.port),
                                                                "-u", user ?? admin.user, "-N", "-B", "-e", query])
        }

        func value(_ query: String) throws -> String {
            let r = try sql(query)
            try #require(r.status == 0, "\(query): \(r.output)")
            return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// What exists of this test's database and accounts, as an operator would list it.
        func state() throws -> String {
            try value("""
                SELECT CONCAT('db ', COUNT(*)) FROM information_schema.schemata WHERE schema_name = '\(db)'
                UNION ALL SELECT CONCAT('tables ', IFNULL(GROUP_CONCAT(table_name ORDER BY table_name), '')) FROM information_schema.tables WHERE table_schema = '\(db)'
                UNION ALL SELECT CONCAT('users ', IFNULL(GROUP_CONCAT(User ORDER BY User), '')) FROM mysql.user WHERE User IN ('\(ro)', '\(rw)')
                """).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "\n")
        }

        /// The table names `ccr schema --dialect mysql` of the shipped binary creates.
        func schemaTables() throws -> [String] {
            // The binary ccrun shipped (its --ccr-binary).
            let binary = try #require(ship.last, "no shippable ccr (CCR_SHIP_BINARY, or .build-ship/release/ccr)")
            let out = try LabDeployTests.run(binary, ["schema", "--dialect", "mysql"])
            try #require(out.status == 0, "\(out.output)")
            let regex = try NSRegularExpression(pattern: "CREATE TABLE IF NOT EXISTS `?([A-Za-z0-9_]+)")
            let text = out.output as NSString
            return regex.matches(in: out.output, range: NSRange(location: 0, length: text.length))
                .map { text.substring(with: $0.range(at: 1)) }.sorted()
        }

        func cleanUp() {
            _ = try? sql("DROP DATABASE IF EXISTS `\(db)`; DROP USER IF EXISTS '\(ro)'@'%', '\(rw)'@'%';")
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test(.timeLimit(.minutes(10)))
    func dryRunApplySecondRunDriftAndRollbackFromNothing() throws {
        let s = try Setup()
        defer { s.cleanUp() }
        let nothing = "db 0\ntables\nusers"
        let initial = try s.state()
        try #require(initial == nothing, "the test's database or users exist already: \(initial)")

        // Dry-run: every step would change (or waits on one that would), exit 2, nothing created.
        let dry = try CCRunProcess.run(s.args(["--dry-run"]))
        #expect(dry.status == 2, "\(dry.text)")
        #expect(dry.steps.map(\.id) == ["sql:database-\(s.db)", "sql:tables-\(s.db)", "sql:user-\(s.ro)", "sql:user-\(s.rw)"], "\(dry.text)")
        let settled = dry.steps.filter { !["would change", "depends"].contains($0.state) }
        #expect(settled.isEmpty, "dry-run on a server without the database: \(settled.map { "\($0.id) \($0.state)" })")
        #expect(try s.state() == nothing, "the dry-run changed the server")

        // Apply: the schema's tables, and two accounts with exactly their grants.
        let apply = try CCRunProcess.run(s.args())
        try #require(apply.status == 0, "\(apply.text)")
        #expect(apply.steps.allSatisfy { $0.state == "changed" }, "\(apply.steps.map { "\($0.id) \($0.state)" })")
        let tables = try s.schemaTables()
        #expect(!tables.isEmpty)
        #expect(try s.state() == "db 1\ntables \(tables.joined(separator: ","))\nusers \([s.ro, s.rw].sorted().joined(separator: ","))")
        let table = tables[0]
        #expect(try s.sql("SELECT COUNT(*) FROM `\(s.db)`.`\(table)`", as: s.ro).status == 0, "the read-only account must read")
        let roWrite = try s.sql("DELETE FROM `\(s.db)`.`\(table)`", as: s.ro)
        #expect(roWrite.status != 0 && roWrite.output.contains("denied"), "the read-only account must not write: \(roWrite.output)")
        #expect(try s.sql("DELETE FROM `\(s.db)`.`\(table)` WHERE 1 = 0", as: s.rw).status == 0, "the read-write account must write")
        let rwDDL = try s.sql("CREATE TABLE `\(s.db)`.ddl_probe (i INT)", as: s.rw)
        #expect(rwDDL.status != 0 && rwDDL.output.contains("denied"), "the read-write account must have no DDL: \(rwDDL.output)")

        // Second run and audit: nothing to do.
        let second = try CCRunProcess.run(s.args())
        #expect(second.status == 0 && second.steps.count == 4 && second.steps.allSatisfy { $0.state == "ok" }, "\(second.text)")
        let audit = try CCRunProcess.run(s.args(["--dry-run"]))
        #expect(audit.status == 0, "\(audit.text)")

        // Drift by hand: another password for the writer, an extra grant for the reader. The
        // audit names exactly those two accounts; apply puts them back.
        _ = try s.value("ALTER USER '\(s.rw)'@'%' IDENTIFIED BY 'changed-by-hand'; GRANT INSERT ON `\(s.db)`.* TO '\(s.ro)'@'%'; SELECT 1")
        let drift = try CCRunProcess.run(s.args(["--dry-run"]))
        #expect(drift.status == 2, "\(drift.text)")
        #expect(drift.steps.filter { $0.state != "ok" }.map(\.id) == ["sql:user-\(s.ro)", "sql:user-\(s.rw)"], "\(drift.steps.map { "\($0.id) \($0.state)" })")
        let repair = try CCRunProcess.run(s.args())
        #expect(repair.status == 0, "\(repair.text)")
        #expect(try s.sql("SELECT 1", as: s.rw).status == 0, "the writer's password must be the generated one again")
        let roInsert = try s.sql("INSERT INTO `\(s.db)`.`\(table)` SELECT * FROM `\(s.db)`.`\(table)` WHERE 1 = 0", as: s.ro)
        #expect(roInsert.status != 0 && roInsert.output.contains("denied"), "the reader's extra grant must be gone: \(roInsert.output)")

        // The generated passwords appear in no output and no journal.
        let journals = try [s.stateDir, s.targetDir].flatMap { dir in
            try FileManager.default.subpathsOfDirectory(atPath: dir).map { "\(dir)/\($0)" }
        }.compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }.joined()
        for user in [s.ro, s.rw] {
            let secret = try s.password(user)
            #expect(secret.count >= 16)
            for (what, text) in [("dry-run", dry.stdout + dry.stderr), ("apply", apply.stdout + apply.stderr),
                                 ("repair", repair.stdout + repair.stderr), ("journals", journals)] {
                #expect(!text.contains(secret), "\(user)'s password appears in the \(what)")
            }
        }

        // Rollback on the controller, where the runs were made. The last run only corrected two
        // accounts that existed: their former passwords are not kept, so rollback says it cannot
        // undo that and leaves them. Rolling back again undoes the first run: nothing is left.
        let undoRepair = try CCRunProcess.run(s.controllerArgs("rollback"))
        #expect(undoRepair.status == 0, "\(undoRepair.text)")
        for user in [s.ro, s.rw] {
            #expect(undoRepair.stdout.contains("irreversible") && undoRepair.stdout.contains("the account \(user) existed before this run"),
                    "rollback of the repair must say why \(user) stays: \(undoRepair.text)")
        }
        #expect(try s.sql("SELECT 1", as: s.rw).status == 0, "rollback of the repair must leave the corrected account")
        let undoFirst = try CCRunProcess.run(s.controllerArgs("rollback"))
        #expect(undoFirst.status == 0, "\(undoFirst.text)")
        let afterRollback = try s.state()
        #expect(afterRollback == nothing, "rollback left: \(afterRollback)")
    }

    /// Passwords holding `'`, `\` and `"` (and a newline-free mix of others): the accounts are
    /// created with them, log in with them, and a second run finds them right (the check logs in
    /// with the password; nothing compares hashes, which MySQL 8 no longer can through SQL).
    @Test(.timeLimit(.minutes(10)))
    func passwordsWithQuotesAndBackslashes() throws {
        let s = try Setup()
        defer { s.cleanUp() }
        let tricky = [s.ro: #"it's a "quote" \ and ' back\slash;--"#, s.rw: #"'; DROP USER 'root'@'%'; -- "x""#]
        try FileManager.default.createDirectory(atPath: s.secretsDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for (user, password) in tricky {
            FileManager.default.createFile(atPath: "\(s.secretsDir)/\(user)-password", contents: Data((password + "\n").utf8),
                                           attributes: [.posixPermissions: 0o600])
        }
        let apply = try CCRunProcess.run(s.args())
        try #require(apply.status == 0, "\(apply.text)")
        for (user, password) in tricky {
            let login = DatabaseEndpoint(host: s.admin.host, port: s.admin.port, user: user, password: Secret(label: user, value: password))
            #expect(try MariaDBExecutor().execute("SELECT CURRENT_USER()", on: login).first?.first == "\(user)@%", "\(user) logs in with its password")
            #expect(!(apply.stdout + apply.stderr).contains(password))
        }
        #expect(try s.value("SELECT COUNT(*) FROM mysql.user WHERE User = 'root'") != "0", "nothing was injected")
        let second = try CCRunProcess.run(s.args())
        #expect(second.status == 0 && second.steps.allSatisfy { $0.state == "ok" }, "\(second.steps.map { "\($0.id) \($0.state)" })")
    }

    /// SIGKILL of ccrun right after the tables were created but before the journal recorded it,
    /// then `ccrun resume controller`: the run completes and a further run finds nothing to do.
    @Test(.timeLimit(.minutes(10)))
    func killedRunResumesToTheSameDatabase() throws {
        let s = try Setup()
        defer { s.cleanUp() }
        let killed = try CCRunProcess.killed(s.args(), at: "after-change:1")
        #expect(killed.reached, "ccrun database ended before the stop point: \(killed.outcome.text)")
        #expect(try s.state().hasPrefix("db 1\ntables "), "the tables step had run before the kill")
        #expect(try s.state().hasSuffix("\nusers"), "no account before the kill")

        let resumed = try CCRunProcess.run(s.controllerArgs("resume"))
        #expect(resumed.status == 0, "\(resumed.text)")
        let tables = try s.schemaTables()
        #expect(try s.state() == "db 1\ntables \(tables.joined(separator: ","))\nusers \([s.ro, s.rw].sorted().joined(separator: ","))")
        let again = try CCRunProcess.run(s.args())
        #expect(again.status == 0 && again.steps.allSatisfy { $0.state == "ok" },
                "after the resume: \(again.steps.filter { $0.state != "ok" }.map { "\($0.id) \($0.state)" })")
    }
}
