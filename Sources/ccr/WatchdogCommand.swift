import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Logging
import Store
import TunerServer

/// `ccr watchdog`: replaces the original ccr-watchdog on the NFS server.
///
/// Repository nodes beat a heartbeat into the database; when a node stops (crash, power, network),
/// its tuners would stay "connected" forever. The watchdog marks the tuners of every node whose
/// last heartbeat is older than `--stale-after` seconds as disconnected. A node that comes back
/// revives its tuners with its next heartbeat.
struct WatchdogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watchdog",
        abstract: "Mark the tuners of repository nodes whose heartbeat stopped as disconnected.",
        discussion: """
        The database comes from --config (the same INI file as `ccr serve`: [database] driver, host, \
        port, user, name; password in the file with mode 0600 or CCR_DB_PASSWORD in the environment) \
        or --database for SQLite. Use the read-write account (cc_rw).
        """
    )

    @Option(help: "INI configuration file, e.g. /etc/ccr/ccr.conf.")
    var config: String?

    @Option(help: "SQLite database file (instead of --config).")
    var database: String?

    @Option(name: .customLong("stale-after"), help: "Seconds without a heartbeat after which a node's tuners are marked gone.")
    var staleAfter: Double = 30

    @Option(help: "Seconds between checks.")
    var interval: Double = 10

    @Flag(help: "Check once and exit.")
    var once = false

    @Option(name: .customLong("log-level"), help: ArgumentHelp(stringLiteral: ServiceBootstrap.levelHelp))
    var logLevel: String = "info"

    func validate() throws {
        guard staleAfter > 0 else { throw ValidationError("--stale-after must be positive") }
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
        guard config == nil || database == nil else { throw ValidationError("use --config or --database, not both") }
    }

    func run() async throws {
        let bootstrap = try ServiceBootstrap.start(logLevel: logLevel)
        let logger = Logger(label: "ccr.watchdog")
        let storeConfiguration: StoreConfiguration
        var hostname = ServerConfiguration.hostName()
        if let config {
            let settings = try ServerConfiguration.load(path: config, environment: bootstrap.environment)
            guard let store = settings.store else { throw ValidationError("\(config): [database] driver = none: nothing to watch") }
            storeConfiguration = store
            hostname = settings.nodeName
        } else {
            storeConfiguration = .sqlite(path: database ?? "ccr.sqlite")
        }
        // No spool: the watchdog's only write is a fresh check, pointless to replay later.
        // A database that is down at boot is waited for (unless --once): the service must not die.
        var opened: (any CaptionStore)?
        while opened == nil {
            do {
                opened = try await openStore(storeConfiguration, options: StoreOptions(spoolDirectory: nil))
            } catch let error as StoreError where error.isTransient && !once {
                logger.warning("database unreachable; will retry", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
            }
        }
        guard let store = opened else { return }
        logger.info("watching node heartbeats", metadata: [
            "database": "\(storeConfiguration)", "stale_after": "\(staleAfter)", "interval": "\(interval)",
        ])
        do {
            repeat {
                do {
                    let marked = try await store.markStaleTuners(heartbeatOlderThan: staleAfter)
                    if marked > 0 { logger.notice("marked tuners of silent nodes disconnected", metadata: ["tuners": "\(marked)"]) }
                    // What `ccr health watchdog` (and so a deployment) reads: this check was made.
                    try await store.beat(.watchdog, hostname: hostname)
                } catch let error as StoreError where error.isTransient {
                    logger.warning("database unreachable; will retry", metadata: ["error": "\(error)"])
                }
                if once { break }
                try await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
            } while !Task.isCancelled
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }
}
