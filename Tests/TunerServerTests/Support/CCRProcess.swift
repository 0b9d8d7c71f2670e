import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A `ccr serve` or `ccr web` process in its own folder (its config, archive, SQLite, spool and
/// log), started with posix_spawn so a test can choose the signal mask it inherits, and
/// restartable on the same folder. `ccr web` can be started on the folder of a `ccr serve`.
final class CCRProcess: @unchecked Sendable {
    // @unchecked: driven by one test task at a time; `pid` and `port` change only in start().
    enum Service: String { case serve, web }

    let dir: URL
    let service: Service
    private(set) var pid: pid_t = 0
    /// The tuner port (serve) or the HTTP port (web).
    private(set) var port = 0
    /// The metrics port (serve, with `metrics: true`).
    private(set) var metricsPort = 0
    private let metrics: Bool
    private var exitStatus: Int32?

    /// A `ccr serve` config for tests: SQLite, archive and spool in the folder, archive written
    /// every 0.2 s, a 2 s handshake deadline; `server` and `limits` add lines to their sections.
    static func sqliteConfig(server: String = "", limits: String = "") -> String {
        """
        [server]
        handshake_timeout = 2
        wrong_password_delay = 0.2
        \(server)
        [archive]
        dir = archive
        flush_interval = 0.2
        [database]
        driver = sqlite
        path = ccr.sqlite
        spool_dir = spool
        [limits]
        \(limits)
        """
    }

    /// `ccr serve` in a new folder holding `config` (as ccr.conf, mode 0600).
    init(config: String, metrics: Bool = false) throws {
        dir = try makeTemporaryDirectory("ccr")
        service = .serve
        self.metrics = metrics
        let path = dir.appendingPathComponent("ccr.conf").path
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
    }

    /// `ccr web` on the folder (config, database, archive) of `server`.
    init(webOn server: CCRProcess) {
        dir = server.dir
        service = .web
        metrics = false
    }

    var archive: URL { dir.appendingPathComponent("archive") }
    private var logPath: String { dir.appendingPathComponent(service == .serve ? "ccr.log" : "ccr-web.log").path }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Resident memory of the process, in KB (0 once it has gone).
    var rssKilobytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// Starts ccr and waits for its ready file. `blockTermination`: the child starts with
    /// SIGTERM and SIGINT blocked, as when a parent spawns it from a Dispatch thread.
    func start(blockTermination: Bool = false) async throws {
        let binary = try #require(CCRBinary.path, "ccr executable not found (set CCR_BINARY)")
        let ready = dir.appendingPathComponent("ready-\(service.rawValue)").path
        unlink(ready)
        let config = dir.appendingPathComponent("ccr.conf").path
        let arguments = switch service {
        case .serve:
            ["ccr", "serve", "--config", config, "--port", "0", "--listen", "127.0.0.1", "--metrics-port", metrics ? "0" : "off",
             "--ready-file", ready, "--log-level", "info"]
        case .web:
            ["ccr", "web", "--config", config, "--listen", "127.0.0.1:0", "--ready-file", ready, "--log-level", "info"]
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var mask = sigset_t()
        sigemptyset(&mask)
        if blockTermination {
            sigaddset(&mask, SIGTERM)
            sigaddset(&mask, SIGINT)
        }
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        // The config's relative paths are relative to the folder: a shell changes into it and
        // execs ccr (same pid, same signal mask).
        let shell = ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", dir.path, binary] + arguments.dropFirst()
        let argv: [UnsafeMutablePointer<CChar>?] = shell.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, "/bin/sh", &actions, &attributes, argv, environ)
        guard result == 0 else { throw TestSocketError.failed("posix_spawn \(binary)", result) }
        pid = child
        exitStatus = nil
        for _ in 0..<600 {
            if let text = try? String(contentsOfFile: ready, encoding: .utf8),
               let p = text.split(separator: "\n").first(where: { $0.hasPrefix("port=") }).flatMap({ Int($0.dropFirst(5)) }) {
                port = p
                metricsPort = text.split(separator: "\n").first(where: { $0.hasPrefix("metrics=") }).flatMap({ Int($0.dropFirst(8)) }) ?? 0
                return
            }
            if reap(block: false) != nil { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        kill9()
        throw TestSocketError.failed("ccr \(service.rawValue) did not start:\n\(log.suffix(2000))", 0)
    }

    /// The exit status once the process ended (nil while it runs).
    @discardableResult
    func reap(block: Bool) -> Int32? {
        if let exitStatus { return exitStatus }
        guard pid > 0 else { return nil }
        var status: Int32 = 0
        let r = waitpid(pid, &status, block ? 0 : WNOHANG)
        guard r == pid else { return nil }
        // WIFEXITED / WEXITSTATUS, spelled out (the C macros are not imported).
        exitStatus = status & 0x7F == 0 ? (status >> 8) & 0xFF : -(status & 0x7F)
        return exitStatus
    }

    var isRunning: Bool { pid > 0 && reap(block: false) == nil }

    func waitForExit(timeout: Double = 20) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let s = reap(block: false) { return s }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    func kill9() {
        if isRunning { kill(pid, SIGKILL); reap(block: true) }
    }

    /// `GET path` (one request, `Connection: close`) on `port` (the web, or the metrics port): status and body.
    func get(_ path: String, port: Int? = nil, timeout: Double = 20) async throws -> (status: Int, body: String) {
        let client = try TestTuner(port: port ?? self.port)
        try client.send(Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8))
        let response = String(decoding: try #require(await client.readUntilClosed(timeout: timeout), "no answer to GET \(path)"), as: UTF8.self)
        let status = Int(response.split(separator: " ").dropFirst().first ?? "") ?? 0
        guard let end = response.range(of: "\r\n\r\n") else { return (status, "") }
        let body = String(response[end.upperBound...])
        let chunked = response[..<end.lowerBound].lowercased().contains("transfer-encoding: chunked")
        return (status, chunked ? Self.dechunk(body) : body)
    }

    /// The body of a chunked HTTP/1.1 response.
    static func dechunk(_ text: String) -> String {
        var bytes = Array(text.utf8)[...]
        var out: [UInt8] = []
        while let lineEnd = bytes.firstIndex(of: 0x0D), let size = Int(String(decoding: bytes[..<lineEnd], as: UTF8.self), radix: 16), size > 0 {
            let start = lineEnd + 2
            out += bytes[start..<min(bytes.endIndex, start + size)]
            bytes = bytes[min(bytes.endIndex, start + size + 2)...]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The value of one metric line (`name` with its labels) from `/metrics`, or 0 when absent.
    func metric(_ name: String) async throws -> Int {
        let text = try await get("/metrics", port: metricsPort).body
        let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
    }

    /// Stops the process (if running) and removes the folder.
    func remove() {
        kill9()
        try? FileManager.default.removeItem(at: dir)
    }
}

