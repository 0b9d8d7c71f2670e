#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Store
import ServerFiles

/// Everything `ccr serve` needs. The defaults are the "no configuration at all" mode: tuners on
/// port 3030, SQLite and the archive under the current directory, metrics on 9330 (loopback).
public struct ServerConfiguration: Sendable {
    /// Address and port tuners connect to (port 0: any free port, for tests).
    public var host = "0.0.0.0"
    public var port = 3030
    /// The tuners' shared password (`-tcppassword`); nil accepts any.
    public var password: String?
    /// Tuners served at once; more are answered CONN_LIMIT and closed.
    public var maxTuners = 10_000
    public var archiveDirectory = "archive"
    /// Seconds a tuner may take to send its PASSWORD block.
    public var handshakeTimeout: Double = 15
    /// Seconds a block may take to arrive whole, counted from the end of the one before (or the
    /// connect): CCExtractor writes each block at once, so a block still incomplete after this
    /// long is a connection trickling bytes to hold its slot under `idle_timeout`. As long as
    /// `idle_timeout`: at 30 s, 120 of 9,400 honest tuners of the load generator were closed
    /// mid-block on this overloaded 2-core machine (bench/RESULTS.md, 2026-12-07 15:12).
    public var blockTimeout: Double = 120
    /// Seconds of silence after which a tuner is considered gone. CCExtractor sends data
    /// continuously (and PING every 3 s when idle on live input), so a minute is generous.
    public var idleTimeout: Double = 120
    /// Longest time archive data waits in memory (what a `kill -9` can lose): every file with
    /// data is written this often.
    public var flushInterval: Double = 5
    /// Bytes buffered for one archive file before it is written early (the `.bin` of a tuner
    /// fills it in ~3 s).
    public var flushThreshold = 4096
    /// Seconds between the 0x02 answer to a wrong password and the close (slows guessing).
    public var wrongPasswordDelay: Double = 1
    /// Metrics HTTP listener; port nil disables it.
    public var metricsHost = "127.0.0.1"
    public var metricsPort: Int? = 9330
    /// Name of this node in logs and in the store (defaults to the host name).
    public var nodeName: String = ServerConfiguration.hostName()
    /// nil: no database (archive only; used by benchmarks and some tests).
    public var store: StoreConfiguration? = .sqlite(path: "ccr.sqlite")
    public var spoolDirectory: String? = "spool"
    /// Bytes the outage spool may hold (`[database] spool_limit`).
    public var spoolLimitBytes = StoreOptions.defaultSpoolLimitBytes
    /// Seconds between heartbeats of this node in the store.
    public var heartbeatInterval: Double = 5
    /// Event loop threads (0: one per core).
    public var eventLoopThreads = 0
    /// What one tuner or one address may make the server do.
    public var limits = TunerLimits()
    /// Receive buffer per read: small on purpose (ccr-memory.md: a tuner sends ~200 bytes/s and
    /// NIO keeps each connection's last buffer).
    public var receiveBufferSize = 256
    /// Load balancers whose connections start with a PROXY header (v1 or v2) naming the tuner's
    /// address, which limits, logs and the tuners table then use (`[server] proxy_protocol_from`).
    /// Empty: no PROXY header is accepted from anyone.
    public var proxyProtocolFrom = AddressSet()

    public init() {}

    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The defaults, with the tuners' password from `CCR_TUNER_PASSWORD` when set.
    public static func defaultsWithEnvironment(_ environment: [String: String]) -> ServerConfiguration {
        var c = ServerConfiguration()
        if let p = environment["CCR_TUNER_PASSWORD"], !p.isEmpty { c.password = p }
        return c
    }

    /// Settings known in each section, for the unknown-key check. `[web]` belongs to `ccr web`,
    /// which reads the same file layout (the runbooks write one /etc/ccr/ccr.conf per node, and a
    /// node running both services shares it): `ccr serve` accepts and ignores it, but still
    /// checks its key names so that a typo there is reported by either service.
    static let knownKeys: [String: Set<String>] = [
        "server": ["listen", "port", "password", "max_tuners", "handshake_timeout", "idle_timeout", "wrong_password_delay", "node_name", "threads", "block_timeout",
                   "proxy_protocol_from"],
        "archive": ["dir", "flush_interval", "flush_bytes"],
        "metrics": ["listen", "port"],
        "database": ["driver", "path", "host", "port", "user", "password", "name", "spool_dir", "spool_limit", "heartbeat_interval"],
        "web": ["listen", "archive_dir", "poll_ms", "user", "password"],
        "limits": ["realtime_factor", "burst_seconds", "lines_per_second", "program_changes_per_minute", "program_bytes", "unauthenticated",
                   "unauthenticated_per_address", "password_failures", "lockout_seconds", "store_queue"],
    ]

    /// Reads an INI config file (see docs/ccr.md); `environment` supplies `CCR_TUNER_PASSWORD` and
    /// `CCR_DB_PASSWORD`, which win over the file. A file holding a password must not be
    /// readable by group or others.
    public static func load(path: String, environment: [String: String]) throws -> ServerConfiguration {
        let file = try ConfigFile.read(path: path)
        let ini = try IniFile(text: file.text, source: path)
        if let (key, entry) = ini.unknownKeys(known: knownKeys).first {
            throw IniError.unknownKey(source: path, line: entry.line, key: key)
        }
        var c = ServerConfiguration()
        if let v = ini.string("server", "listen") { c.host = v }
        if let v = try ini.int("server", "port", in: 0...65_535) { c.port = v }
        if let v = try ini.int("server", "max_tuners", in: 1...1_000_000) { c.maxTuners = v }
        if let v = try ini.double("server", "handshake_timeout", in: 0.1...3600) { c.handshakeTimeout = v }
        if let v = try ini.double("server", "idle_timeout", in: 1...86_400) { c.idleTimeout = v }
        if let v = try ini.double("server", "block_timeout", in: 0.1...86_400) { c.blockTimeout = v }
        if let v = try ini.double("server", "wrong_password_delay", in: 0...60) { c.wrongPasswordDelay = v }
        if let v = ini.string("server", "node_name"), !v.isEmpty { c.nodeName = v }
        if let v = try ini.int("server", "threads", in: 0...256) { c.eventLoopThreads = v }
        if let e = ini.entry("server", "proxy_protocol_from") {
            do {
                c.proxyProtocolFrom = try AddressSet(parsing: e.value)
            } catch {
                throw IniError.badValue(source: path, line: e.line, key: "server.proxy_protocol_from", error.description)
            }
        }
        if let v = ini.string("archive", "dir") { c.archiveDirectory = v }
        if let v = try ini.double("archive", "flush_interval", in: 0.05...600) { c.flushInterval = v }
        if let v = try ini.int("archive", "flush_bytes", in: 0...(1 << 20)) { c.flushThreshold = v }
        if let v = ini.string("metrics", "listen") { c.metricsHost = v }
        if let e = ini.entry("metrics", "port") {
            if e.value == "off" {
                c.metricsPort = nil
            } else {
                guard let v = Int(e.value), (0...65_535).contains(v) else {
                    throw IniError.badValue(source: path, line: e.line, key: "metrics.port", "expected a port number, or `off`")
                }
                c.metricsPort = v
            }
        }
        if let v = try ini.double("limits", "realtime_factor", in: 1...1_000_000) { c.limits.realTimeFactor = v }
        if let v = try ini.double("limits", "burst_seconds", in: 1...(366 * 86_400)) { c.limits.burstSeconds = v }
        if let v = try ini.double("limits", "lines_per_second", in: 0.01...1_000) { c.limits.linesPerSecond = v }
        if let v = try ini.double("limits", "program_changes_per_minute", in: 0.01...100_000) { c.limits.programChangesPerMinute = v }
        if let v = try ini.int("limits", "program_bytes", in: 4096...(1 << 50)) { c.limits.programBytes = v }
        if let v = try ini.int("limits", "unauthenticated", in: 1...1_000_000) { c.limits.unauthenticated = v }
        if let v = try ini.int("limits", "unauthenticated_per_address", in: 1...1_000_000) { c.limits.unauthenticatedPerAddress = v }
        if let v = try ini.int("limits", "password_failures", in: 1...1_000_000) { c.limits.passwordFailures = v }
        if let v = try ini.double("limits", "lockout_seconds", in: 0...TunerLimits.maximumLockoutSeconds) { c.limits.lockoutSeconds = v }
        if let v = try ini.int("limits", "store_queue", in: 100...100_000_000) { c.limits.storeQueue = v }
        if let v = ini.string("database", "spool_dir") { c.spoolDirectory = v.isEmpty ? nil : v }
        if let v = try ini.int("database", "spool_limit", in: 1 << 16...(1 << 50)) { c.spoolLimitBytes = UInt64(v) }
        if let v = try ini.double("database", "heartbeat_interval", in: 0.1...3600) { c.heartbeatInterval = v }

        let filePasswords = ["server", "database", "web"].compactMap { s in ini.entry(s, "password").map { (s, $0) } }
        if let (section, entry) = filePasswords.first, let mode = file.mode, mode & 0o077 != 0 {
            throw ConfigurationError.secretsReadableByOthers(path: path, line: entry.line, key: "\(section).password", mode: mode)
        }
        c.password = environment["CCR_TUNER_PASSWORD"] ?? ini.string("server", "password")
        if c.password?.isEmpty == true { c.password = nil }

        let driver = ini.string("database", "driver") ?? "sqlite"
        switch driver {
        case "sqlite":
            c.store = .sqlite(path: ini.string("database", "path") ?? "ccr.sqlite")
        case "mysql", "mariadb":
            guard let host = ini.string("database", "host"), let user = ini.string("database", "user") else {
                throw ConfigurationError.missing(path: path, what: "[database] host and user (driver = \(driver))")
            }
            let port = try ini.int("database", "port", in: 1...65_535) ?? 3306
            let password = environment["CCR_DB_PASSWORD"] ?? ini.string("database", "password") ?? ""
            c.store = .mysql(host: host, port: port, user: user, password: DatabasePassword(password),
                             database: ini.string("database", "name") ?? "ccr")
        case "none":
            c.store = nil
        default:
            let line = ini.entry("database", "driver")?.line ?? 0
            throw IniError.badValue(source: path, line: line, key: "database.driver", "expected sqlite, mysql, mariadb or none, got `\(driver)`")
        }
        return c
    }
}

/// A configuration file's text and permission bits, read the same way by `ccr serve`,
/// `ccr web` and `ccr watchdog` (the permission bits decide whether a password may be in it).
public struct ConfigFile: Sendable {
    public let path: String
    public let text: String
    /// `st_mode & 0o777`, nil when stat failed after the read.
    public let mode: UInt32?

    public static func read(path: String) throws(ConfigurationError) -> ConfigFile {
        do {
            return ConfigFile(path: path, text: try readTextFile(path), mode: fileMode(path))
        } catch {
            throw ConfigurationError.unreadable(path: path, reason: error)
        }
    }
}

public enum ConfigurationError: Error, Sendable, CustomStringConvertible {
    case unreadable(path: String, reason: any Error)
    case secretsReadableByOthers(path: String, line: Int, key: String, mode: UInt32)
    case missing(path: String, what: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason):
            "cannot read config \(path): \(reason)"
        case .secretsReadableByOthers(let path, let line, let key, let mode):
            "\(path):\(line): \(key) is set but the file's mode is \(String(mode, radix: 8)); run `chmod 600 \(path)` (or pass the password in the environment)"
        case .missing(let path, let what):
            "\(path): missing \(what)"
        }
    }
}

struct SystemError: Error, CustomStringConvertible {
    let code: Int32
    var description: String { String(cString: strerror(code)) }
}

func readTextFile(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw SystemError(code: errno) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4096) }
        if n < 0 { if errno == EINTR { continue }; throw SystemError(code: errno) }
        if n == 0 { break }
        bytes += chunk[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

func fileMode(_ path: String) -> UInt32? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return UInt32(st.st_mode) & 0o777
}
