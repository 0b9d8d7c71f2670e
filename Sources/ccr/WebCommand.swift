import ArgumentParser
import Logging
import Store
import TunerServer
import Web
#if canImport(Glibc)
import Glibc
#endif

/// `ccr web`: the web UI and JSON API, read-only over the database and archive that `ccr serve`
/// writes. With no options it reads ./ccr.sqlite and ./archive, like `ccr serve` writes them.
struct WebCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "web",
        abstract: "Serve live captions, the archive, search and downloads over HTTP (read-only).",
        discussion: """
        Without --config: http://127.0.0.1:8080, SQLite in ./ccr.sqlite, archive in ./archive (what \
        `ccr serve` writes with no configuration). --config reads the same INI file as `ccr serve` \
        ([database], [archive]) plus [web] listen/archive_dir/user/password and the limits against hostile \
        visitors (max_connections, header_timeout, query_timeout, ...: docs/web.md "Limits"). Use the read-only \
        account (cc_ro); its password comes from the file (mode 0600) or CCR_WEB_DB_PASSWORD / \
        CCR_DB_PASSWORD, never from the command line. See docs/web.md.
        """
    )

    @Option(help: "INI configuration file, e.g. /etc/ccr/ccr.conf.")
    var config: String?

    @Option(help: "Address and port to listen on (HOST:PORT; port 0 picks a free one).")
    var listen: String?

    @Option(help: "Database: sqlite:PATH or mysql://USER@HOST[:PORT]/NAME (password from the environment).")
    var db: String?

    @Option(help: "Archive folder written by `ccr serve` ('' for none).")
    var archive: String?

    @Option(name: .customLong("log-level"), help: ArgumentHelp(stringLiteral: ServiceBootstrap.levelHelp))
    var logLevel: String = "info"

    @Option(name: .customLong("ready-file"), help: .hidden)
    var readyFile: String?

    func run() async throws {
        let bootstrap = try ServiceBootstrap.start(logLevel: logLevel)
        let environment = bootstrap.environment
        var settings = WebConfiguration()
        if let config {
            let file = try ConfigFile.read(path: config)
            settings = try WebConfiguration.load(text: file.text, source: config, fileMode: file.mode, environment: environment)
        }
        if let listen {
            guard let (host, port) = WebConfiguration.parseListen(listen) else { throw ValidationError("--listen: expected HOST:PORT") }
            (settings.host, settings.port) = (host, port)
        }
        if let db {
            guard let store = WebConfiguration.parseDatabase(db, environment: environment) else {
                throw ValidationError("--db: expected sqlite:PATH or mysql://USER@HOST[:PORT]/NAME")
            }
            settings.store = store
        }
        if let archive { settings.archiveDirectory = archive.isEmpty ? nil : archive }

        let logger = Logger(label: "ccr.web")
        let limits = settings.limits
        let source = StoreSource(configuration: settings.store, timeoutSeconds: settings.databaseTimeoutSeconds,
                                 retrySeconds: settings.reconnectSeconds, reads: limits.reads)
        // A refused login (or one needing a plugin not installed) is a configuration error no retry mends: stop with it, as `ccr serve`
        // and `ccr watchdog` do, so the service manager and ccrun see the service fail instead
        // of a web that answers on its port and 503s every page. Any other failure (the
        // database down) leaves the web to start and retry. SQLite has no login: not tried, so
        // a file `ccr serve` has not created yet is opened on the first request, as before.
        if case .mysql = settings.store {
            do { _ = try await source.store() } catch let error as StoreError {
                switch error {
                case .authenticationFailed, .authenticationPluginMissing: throw error
                default: break
                }
            }
        }
        let site = WebSite(source: source, archiveDirectory: settings.archiveDirectory,
                           livePollMilliseconds: settings.livePollMilliseconds, keepAliveSeconds: settings.keepAliveSeconds,
                           limits: limits, logger: logger)
        let fileLimit = Self.openFileLimit()
        let gate = ConnectionGate(cap: limits.connectionCap(fileLimit: fileLimit))
        if gate.cap < limits.maxConnections {
            logger.warning("""
                at most \(gate.cap) connections (not max_connections = \(limits.maxConnections)): the open-file limit is \(fileLimit); \
                raise it (LimitNOFILE in the systemd unit, ulimit -n in the init script)
                """)
        }
        let readyFile = self.readyFile
        let (host, storeDescription) = (settings.host, "\(settings.store)")
        // Stops gracefully on SIGTERM/SIGINT.
        try await WebServer.run(site: site, host: settings.host, port: settings.port, gate: gate, logger: logger) { port in
            print("ccr web: http://\(host):\(port)/ (database \(storeDescription))")
            if let readyFile { writeSmallFile(readyFile, "port=\(port)\n") }
        }
        await site.feed.shutdown()
        await source.close()
    }

    /// The soft RLIMIT_NOFILE: what the connection cap must fit in.
    static func openFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return Int.max }
        // RLIM_INFINITY is UInt64.max: above Int.max too.
        return limit.rlim_cur > UInt64(Int.max) ? Int.max : Int(limit.rlim_cur)
    }
}
