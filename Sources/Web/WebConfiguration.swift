import Store
import ServerFiles

/// Everything `ccr web` needs. The defaults match `ccr serve`'s "no configuration at all" mode
/// (SQLite in ./ccr.sqlite, archive in ./archive), so the two run side by side in one folder.
public struct WebConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// The database, opened read-only (in production: the cc_ro account, SELECT only).
    public var store: StoreConfiguration = .sqlite(path: "ccr.sqlite")
    /// The archive folder `ccr serve` writes; SRT downloads come from here when the program's
    /// file is found (byte for byte what the tuner server wrote), else from the database.
    public var archiveDirectory: String? = "archive"
    /// How often the live feed asks the database for new lines. One poller serves all viewers.
    public var livePollMilliseconds = 200
    /// Seconds between SSE comments that keep idle proxies from closing a live feed.
    public var keepAliveSeconds = 15
    /// How long a failed database open is remembered before trying again.
    public var reconnectSeconds: Double = 2
    /// Connect/read timeout for the database (MySQL), so an outage answers 503 quickly.
    public var databaseTimeoutSeconds: Double = 3
    /// What a visitor may cost (connections, timeouts, live queue, pages, searches): `[web]` keys.
    public var limits = WebLimits()

    public init() {}

    /// Settings read from the config file (the same INI format and file as `ccr serve`):
    /// `[web] listen = HOST:PORT`, `[web] archive_dir`, `[web] poll_ms`, the `WebLimits` keys, and `[database]`
    /// (driver, path, host, port, user, password, name; `[web] user` overrides the user so one file
    /// can name cc_rw for the server and cc_ro for the web). `CCR_WEB_DB_PASSWORD` (then
    /// `CCR_DB_PASSWORD`) wins over the file's password.
    public static func load(text: String, source: String, fileMode: UInt32?, environment: [String: String]) throws -> WebConfiguration {
        let ini = try IniFile(text: text, source: source)
        if let (key, entry) = ini.unknownKeys(known: knownKeys).first {
            throw IniError.unknownKey(source: source, line: entry.line, key: key)
        }
        var c = WebConfiguration()
        if let listen = ini.entry("web", "listen") {
            guard let (h, p) = parseListen(listen.value) else {
                throw IniError.badValue(source: source, line: listen.line, key: "web.listen", "expected HOST:PORT, e.g. 127.0.0.1:8080")
            }
            (c.host, c.port) = (h, p)
        }
        if let dir = ini.string("web", "archive_dir") ?? ini.string("archive", "dir") { c.archiveDirectory = dir.isEmpty ? nil : dir }
        if let ms = try ini.int("web", "poll_ms", in: 20...5000) { c.livePollMilliseconds = ms }
        c.limits = try WebLimits.load(ini, source: source)

        for section in ["database", "web"] {
            if let entry = ini.entry(section, "password"), let mode = fileMode, mode & 0o077 != 0 {
                throw WebConfigurationError.secretsReadableByOthers(path: source, line: entry.line, key: "\(section).password", mode: mode)
            }
        }
        let driver = ini.string("database", "driver") ?? "sqlite"
        switch driver {
        case "sqlite":
            c.store = .sqlite(path: ini.string("database", "path") ?? "ccr.sqlite")
        case "mysql", "mariadb":
            guard let host = ini.string("database", "host"),
                  let user = ini.string("web", "user") ?? ini.string("database", "user") else {
                throw WebConfigurationError.missing(path: source, what: "[database] host and user (driver = \(driver))")
            }
            let port = try ini.int("database", "port", in: 1...65_535) ?? 3306
            let password = environment["CCR_WEB_DB_PASSWORD"] ?? environment["CCR_DB_PASSWORD"]
                ?? ini.string("web", "password") ?? ini.string("database", "password") ?? ""
            c.store = .mysql(host: host, port: port, user: user, password: DatabasePassword(password),
                             database: ini.string("database", "name") ?? "ccr")
        default:
            let line = ini.entry("database", "driver")?.line ?? 0
            throw IniError.badValue(source: source, line: line, key: "database.driver", "expected sqlite, mysql or mariadb for ccr web, got `\(driver)`")
        }
        return c
    }

    /// Keys `ccr web` reads, plus those of `ccr serve` (ignored here) so both can share one file.
    static let knownKeys: [String: Set<String>] = [
        "web": Set(["listen", "archive_dir", "poll_ms", "user", "password"]).union(WebLimits.keys),
        "server": ["listen", "port", "password", "max_tuners", "handshake_timeout", "idle_timeout", "wrong_password_delay", "node_name", "threads"],
        "archive": ["dir", "flush_interval", "flush_bytes"],
        "metrics": ["listen", "port"],
        "database": ["driver", "path", "host", "port", "user", "password", "name", "spool_dir", "heartbeat_interval"],
    ]

    /// `HOST:PORT`, `[v6]:PORT` or `:PORT` (all addresses).
    public static func parseListen(_ text: String) -> (String, Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    /// `--db` values: `sqlite:PATH` or `mysql://USER@HOST[:PORT]/NAME` (password from the environment).
    public static func parseDatabase(_ text: String, environment: [String: String]) -> StoreConfiguration? {
        if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            return path.isEmpty ? nil : .sqlite(path: path)
        }
        for scheme in ["mysql://", "mariadb://"] where text.hasPrefix(scheme) {
            let rest = text.dropFirst(scheme.count)
            guard let at = rest.firstIndex(of: "@"), let slash = rest[at...].firstIndex(of: "/") else { return nil }
            let user = String(rest[..<at])
            let hostPort = rest[rest.index(after: at)..<slash]
            let name = String(rest[rest.index(after: slash)...])
            var host = String(hostPort), port = 3306
            if let colon = hostPort.lastIndex(of: ":") {
                guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1...65_535).contains(p) else { return nil }
                host = String(hostPort[..<colon])
                port = p
            }
            guard !user.isEmpty, !host.isEmpty, !name.isEmpty, !user.contains(":") else { return nil }
            let password = environment["CCR_WEB_DB_PASSWORD"] ?? environment["CCR_DB_PASSWORD"] ?? ""
            return .mysql(host: host, port: port, user: user, password: DatabasePassword(password), database: name)
        }
        return nil
    }
}

public enum WebConfigurationError: Error, Sendable, CustomStringConvertible {
    case secretsReadableByOthers(path: String, line: Int, key: String, mode: UInt32)
    case missing(path: String, what: String)

    public var description: String {
        switch self {
        case .secretsReadableByOthers(let path, let line, let key, let mode):
            "\(path):\(line): \(key) is set but the file's mode is \(String(mode, radix: 8)); run `chmod 600 \(path)` (or pass the password in CCR_WEB_DB_PASSWORD)"
        case .missing(let path, let what):
            "\(path): missing \(what)"
        }
    }
}
