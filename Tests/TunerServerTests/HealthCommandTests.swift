import Foundation
@testable import Store
import SupportKit
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `ccr health serve|watchdog`, run as ccrun's service steps run it: with the service's own
/// configuration file, judged by its exit status (0 a recent heartbeat, 1 none or too old, 2 the
/// database could not be read) and its one line of reason.
@Suite(.serialized)
struct HealthCommandTests {
    struct Outcome { var status: Int32; var output: String }

    static func ccr(_ arguments: [String], in dir: URL, environment: [String: String]? = nil) throws -> Outcome {
        let p = Process()
        if let environment { p.environment = environment }
        p.executableURL = URL(fileURLWithPath: try #require(CCRBinary.path, "ccr executable not found (set CCR_BINARY)"))
        p.arguments = arguments
        p.currentDirectoryURL = dir
        let output = Pipe()
        p.standardOutput = output
        p.standardError = output
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Outcome(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// A service's ccr.conf (0600) in `dir` for `user` on the test's MariaDB; returns its path.
    static func mysqlConfig(in dir: URL, db: MariaDBServer, user: String, password: String, nodeName: String? = nil) throws -> String {
        let path = dir.appendingPathComponent("ccr.conf").path
        try """
        \(nodeName.map { "[server]\nnode_name = \($0)\n" } ?? "")[database]
        driver = mysql
        host = 127.0.0.1
        port = \(db.port)
        name = \(db.database)
        user = \(user)
        password = \(password)

        """.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        return path
    }

    @Test func serveAndWatchdogHeartbeatsOnSQLite() async throws {
        let server = try CCRProcess(config: CCRProcess.sqliteConfig(server: "node_name = repo-under-test"))
        defer { server.remove() }
        let config = server.dir.appendingPathComponent("ccr.conf").path

        let before = try Self.ccr(["health", "serve", "--config", config], in: server.dir)
        #expect(before.status == 1 && before.output.contains("no database file"), "before ccr serve ever ran: \(before.output)")
        #expect(!FileManager.default.fileExists(atPath: server.dir.appendingPathComponent("ccr.sqlite").path), "health created the database")

        try await server.start()
        let running = try Self.ccr(["health", "serve", "--config", config], in: server.dir)
        #expect(running.status == 0 && running.output.contains("ccr serve on repo-under-test: heartbeat"), "\(running.output)")

        // The watchdog has not run: it never beat. Once it runs, it has.
        let never = try Self.ccr(["health", "watchdog", "--config", config], in: server.dir)
        #expect(never.status == 1 && never.output.contains("never beaten a heartbeat"), "\(never.output)")
        let once = try Self.ccr(["watchdog", "--config", config, "--once"], in: server.dir)
        #expect(once.status == 0, "ccr watchdog --once: \(once.output)")
        let watched = try Self.ccr(["health", "watchdog", "--config", config, "--within", "10"], in: server.dir)
        #expect(watched.status == 0 && watched.output.contains("ccr watchdog on repo-under-test: heartbeat"), "\(watched.output)")

        // A stopped ccr serve beats no more: past the window, health says how old its heartbeat is.
        kill(server.pid, SIGTERM)
        #expect(await server.waitForExit() == 0)
        try await Task.sleep(for: .milliseconds(1500))
        let stale = try Self.ccr(["health", "serve", "--config", config, "--within", "1"], in: server.dir)
        #expect(stale.status == 1 && stale.output.contains("s old (more than 1.0 s)"), "\(stale.output)")
    }

    /// A watchdog that loses its database keeps running (it retries), and only its heartbeat
    /// says that it does nothing: health fails while the database is gone and passes again once
    /// the watchdog is back at work. A refused login is a database that cannot be read (2).
    @Test(.enabled(if: MariaDBServer.isInstalled || Fixtures.isCI, "needs mariadb-server"))
    func watchdogThroughAnOutageAndARefusedLogin() async throws {
        let db = try await MariaDBServer.start()
        defer { db.stop() }
        let dir = try makeTemporaryDirectory("ccr-health")
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(password: String) throws -> String {
            try Self.mysqlConfig(in: dir, db: db, user: "cc_rw", password: password, nodeName: "nfs-under-test")
        }
        let config = try write(password: db.readWritePassword.revealed)
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: try #require(CCRBinary.path))
        watchdog.arguments = ["watchdog", "--config", config, "--interval", "0.3"]
        watchdog.currentDirectoryURL = dir
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        try watchdog.run()
        defer { if watchdog.isRunning { kill(watchdog.processIdentifier, SIGKILL); watchdog.waitUntilExit() } }

        func healthWithin(_ seconds: Double, until wanted: Int32) async throws -> Outcome {
            let deadline = Date().addingTimeInterval(seconds)
            var last = try Self.ccr(["health", "watchdog", "--config", config, "--within", "2"], in: dir)
            while last.status != wanted && Date() < deadline {
                try await Task.sleep(for: .milliseconds(200))
                last = try Self.ccr(["health", "watchdog", "--config", config, "--within", "2"], in: dir)
            }
            return last
        }
        let healthy = try await healthWithin(10, until: 0)
        #expect(healthy.status == 0 && healthy.output.contains("ccr watchdog on nfs-under-test: heartbeat"), "\(healthy.output)")

        db.kill()
        try await Task.sleep(for: .seconds(1))
        #expect(watchdog.isRunning, "the watchdog exited when its database went away")
        let outage = try Self.ccr(["health", "watchdog", "--config", config, "--within", "2"], in: dir)
        #expect(outage.status == 2 && outage.output.contains("cannot read the heartbeat"), "during the outage: \(outage.output)")

        try await db.restart()
        let back = try await healthWithin(20, until: 0)
        #expect(back.status == 0, "the watchdog's heartbeat after the database came back: \(back.output)")
        #expect(watchdog.isRunning)

        let wrong = try write(password: "not-the-password")
        let refused = try Self.ccr(["health", "watchdog", "--config", wrong], in: dir)
        #expect(refused.status == 2 && refused.output.contains("login refused"), "\(refused.output)")
        #expect(!refused.output.contains("not-the-password"), "the password in the reason: \(refused.output)")
    }

    /// The client is linked statically and holds only mysql_native_password; other logins
    /// (MySQL 8's caching_sha2_password, MariaDB's ed25519, here) load a plugin file at login.
    /// Found, the login works; not found, the error says what to install.
    @Test(.enabled(if: MariaDBServer.isInstalled || Fixtures.isCI, "needs mariadb-server"))
    func loginThroughAPluginFileAndAClearErrorWithoutIt() async throws {
        let db = try await MariaDBServer.start()
        defer { db.stop() }
        let dir = try makeTemporaryDirectory("ccr-plugin")
        defer { try? FileManager.default.removeItem(at: dir) }
        let password = "ed-" + UUID().uuidString
        try db.sql("""
            INSTALL SONAME 'auth_ed25519';
            CREATE USER 'cc_ed'@'127.0.0.1' IDENTIFIED VIA ed25519 USING PASSWORD('\(password)');
            GRANT SELECT, INSERT, UPDATE, DELETE ON cc.* TO 'cc_ed'@'127.0.0.1';
            """)
        let config = try Self.mysqlConfig(in: dir, db: db, user: "cc_ed", password: password)

        let found = try Self.ccr(["watchdog", "--config", config, "--once"], in: dir)
        #expect(found.status == 0, "an ed25519 login with the plugin folder present: \(found.output)")
        var environment = ProcessInfo.processInfo.environment
        environment["MARIADB_PLUGIN_DIR"] = dir.appendingPathComponent("no-plugins").path
        let missing = try Self.ccr(["watchdog", "--config", config, "--once"], in: dir, environment: environment)
        // MariaDB answers a client that cannot load ed25519 with "access denied"; MySQL 8's
        // client error for caching_sha2_password is 2059, which names what to install.
        #expect(missing.status != 0 && missing.output.contains("cc_ed"), "without the plugin: \(missing.output)")
        #expect(!missing.output.contains(password))
        let plugin = MySQLConnection.classify(code: 2059, message: "Authentication plugin 'caching_sha2_password' cannot be loaded",
                                              database: "mysql://cc_rw@db:3306/cc", user: "cc_rw")
        #expect(plugin == .authenticationPluginMissing(database: "mysql://cc_rw@db:3306/cc", message: "Authentication plugin 'caching_sha2_password' cannot be loaded"))
        #expect("\(plugin)".contains("mariadb-connector-c") && "\(plugin)".contains("MARIADB_PLUGIN_DIR"))
    }
}
