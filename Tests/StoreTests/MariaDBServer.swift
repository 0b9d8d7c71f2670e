import Foundation
import Store
#if canImport(Glibc)
import Glibc
#endif

/// A real MariaDB server for one test, from Debian's mariadb-server, on 127.0.0.1 and a free port.
///
/// The data folder is copied from a template made once per machine by `mariadb-install-db`
/// (5 s), so a server starts in under a second. Accounts as in production: `root` (admin, via the
/// socket), `cc_rw` (SELECT, INSERT, UPDATE, DELETE on cc.*) and `cc_ro` (SELECT), with the
/// schema applied by root from `Schema.script(for: .mysql)` (what `ccr schema --dialect mysql` prints).
/// Passwords travel on the client's stdin, never on a command line.
final class MariaDBServer: @unchecked Sendable {
    // @unchecked Sendable: `process` is only replaced by start()/kill() calls that one test makes in sequence.
    let directory: URL
    let port: Int
    let database = "cc"
    let readWritePassword = DatabasePassword("rw-" + UUID().uuidString)
    let readOnlyPassword = DatabasePassword("ro-" + UUID().uuidString)
    private var process: Process?

    var socketPath: String { directory.appendingPathComponent("sock").path }
    var dataPath: String { directory.appendingPathComponent("data").path }

    var readWrite: StoreConfiguration {
        .mysql(host: "127.0.0.1", port: port, user: "cc_rw", password: readWritePassword, database: database)
    }
    var readOnly: StoreConfiguration {
        .mysql(host: "127.0.0.1", port: port, user: "cc_ro", password: readOnlyPassword, database: database)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let serverBinary = "/usr/sbin/mariadbd"
    static var isInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: serverBinary)
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/mariadb-install-db")
    }

    /// Starts a fresh server with the cc database, its users and the schema (up to the version
    /// `schemaThrough`: a database an older ccr made).
    static func start(schemaThrough: Int = .max) async throws -> MariaDBServer {
        guard isInstalled else {
            throw Failure(description: "MariaDB server not installed: apt-get install -y mariadb-server")
        }
        let template = try Template.path()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-mariadb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let server = MariaDBServer(directory: directory, port: try freePort())
        do {
            _ = try run("/bin/cp", ["-a", template, server.dataPath])
            try await server.launch()
            try server.sql("""
                CREATE DATABASE cc CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
                CREATE USER 'cc_rw'@'127.0.0.1' IDENTIFIED BY '\(server.readWritePassword.revealed)';
                CREATE USER 'cc_ro'@'127.0.0.1' IDENTIFIED BY '\(server.readOnlyPassword.revealed)';
                GRANT SELECT, INSERT, UPDATE, DELETE ON cc.* TO 'cc_rw'@'127.0.0.1';
                GRANT SELECT ON cc.* TO 'cc_ro'@'127.0.0.1';
                """)
            try server.sql(Schema.script(for: .mysql, through: schemaThrough), database: "cc")
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    private init(directory: URL, port: Int) {
        self.directory = directory
        self.port = port
    }

    private func launch() async throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.serverBinary)
        p.arguments = [
            "--no-defaults", "--datadir=\(dataPath)", "--socket=\(socketPath)", "--port=\(port)",
            "--bind-address=127.0.0.1", "--skip-name-resolve", "--user=root",
            "--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M", "--skip-log-bin",
            "--log-error=\(directory.appendingPathComponent("error.log").path)",
            "--pid-file=\(directory.appendingPathComponent("mariadbd.pid").path)",
        ]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if !p.isRunning { break }
            if (try? sql("SELECT 1")) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
        throw Failure(description: "mariadbd did not start on port \(port):\n\(log.suffix(2000))")
    }

    /// Runs SQL as root through the socket, the way the database runbook applies the schema.
    @discardableResult
    func sql(_ text: String, database: String? = nil) throws -> String {
        var arguments = ["--no-defaults", "-uroot", "--socket=\(socketPath)", "--batch", "--skip-column-names"]
        if let database { arguments.append(database) }
        return try Self.run("/usr/bin/mariadb", arguments, input: text)
    }

    /// Kills the server abruptly (an outage), keeping its data.
    func kill() {
        guard let p = process else { return }
        Glibc.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    /// Starts the server again on the same data and port after `kill()`.
    func restart() async throws {
        try await launch()
    }

    /// Stops the server and deletes its data.
    func stop() {
        if let p = process {
            // SIGKILL, not terminate(): a child spawned from a dispatch thread inherits that
            // thread's blocked SIGTERM, and waitUntilExit() would then wait forever.
            Glibc.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            process = nil
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// The template data folder: made once per machine, reused by every test.
    enum Template {
        static func path() throws -> String {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-mariadb-template-v1-uid\(getuid())").path
            if FileManager.default.fileExists(atPath: path + "/mysql") { return path }
            // Build beside it and rename, so parallel tests never see a half-made template.
            let building = path + ".building-\(UUID().uuidString)"
            _ = try run("/usr/bin/mariadb-install-db", [
                "--no-defaults", "--datadir=\(building)", "--auth-root-authentication-method=normal",
                "--skip-test-db", "--user=root", "--innodb-log-file-size=8M",
            ])
            if rename(building, path) != 0 {
                try? FileManager.default.removeItem(atPath: building)
                guard FileManager.default.fileExists(atPath: path + "/mysql") else {
                    throw Failure(description: "cannot create the MariaDB template at \(path)")
                }
            }
            return path
        }
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw Failure(description: "bind() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        let output = Pipe()
        let stdin = Pipe()
        p.standardOutput = output
        p.standardError = output
        p.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try p.run()
        if let input {
            // The client may exit before it reads (a server not up yet): a broken pipe is then
            // its answer, which its exit status reports; the non-throwing write would trap.
            try? stdin.fileHandleForWriting.write(contentsOf: Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else {
            throw Failure(description: "\(executable) exited with \(p.terminationStatus): \(text.suffix(2000))")
        }
        return text
    }
}
