import ArgumentParser
import Dispatch
import Logging
import Store
import TunerServer
#if canImport(Glibc)
import Glibc
#endif

/// `ccr serve`: the tuner-facing server. Runs with no configuration at all (port 3030, SQLite and
/// the archive under the current directory), or from an INI file in production.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Receive captions from CCExtractor tuners (-sendto), archive and store them.",
        discussion: """
        Without --config: tuners on 0.0.0.0:3030, archive in ./archive, SQLite in ./ccr.sqlite, \
        metrics on 127.0.0.1:9330. Passwords come from the config file (mode 0600) or the \
        environment (CCR_TUNER_PASSWORD, CCR_DB_PASSWORD), never from the command line.
        """
    )

    @Option(help: "INI configuration file, e.g. /etc/ccr/ccr.conf.")
    var config: String?

    @Option(help: "Tuner port (overrides the file; 0 picks a free port).")
    var port: Int?

    @Option(help: "Listen address for tuners.")
    var listen: String?

    @Option(help: "Archive folder.")
    var archive: String?

    @Option(name: .customLong("metrics-port"), help: "Metrics HTTP port; 'off' disables it.")
    var metricsPort: String?

    @Option(help: "SQLite database file (overrides the file's [database]).")
    var database: String?

    @Flag(name: .customLong("no-store"), help: "Archive only: no database.")
    var noStore = false

    @Option(name: .customLong("max-tuners"), help: "Connection limit.")
    var maxTuners: Int?

    @Option(name: .customLong("log-level"), help: ArgumentHelp(stringLiteral: ServiceBootstrap.levelHelp))
    var logLevel: String = "info"

    @Option(name: .customLong("ready-file"), help: .hidden)
    var readyFile: String?

    func run() async throws {
        let bootstrap = try ServiceBootstrap.start(logLevel: logLevel)
        let logger = Logger(label: "ccr.serve")
        let environment = bootstrap.environment
        var settings = try config.map { try ServerConfiguration.load(path: $0, environment: environment) }
            ?? ServerConfiguration.defaultsWithEnvironment(environment)
        if let port { settings.port = port }
        if let listen { settings.host = listen }
        if let archive { settings.archiveDirectory = archive }
        if let metricsPort {
            if metricsPort == "off" { settings.metricsPort = nil }
            else if let p = Int(metricsPort), (0...65_535).contains(p) { settings.metricsPort = p }
            else { throw ValidationError("--metrics-port: expected a port number or 'off'") }
        }
        if let database { settings.store = .sqlite(path: database) }
        if noStore { settings.store = nil }
        if let maxTuners { settings.maxTuners = maxTuners }

        // Signals first, so a SIGTERM during start-up is not lost.
        let signals = ShutdownSignal()
        var store: (any CaptionStore)?
        if let storeConfiguration = settings.store {
            store = try await openStore(storeConfiguration, options: StoreOptions(spoolDirectory: settings.spoolDirectory, spoolLimitBytes: settings.spoolLimitBytes))
        }
        let server = try await TunerServer.start(configuration: settings, store: store, logger: logger)
        if let readyFile {
            // Tests and scripts learn the real ports from here.
            writeSmallFile(readyFile, "port=\(server.port)\nmetrics=\(server.metricsPort ?? 0)\n")
        }
        let signal = await signals.wait()
        logger.info("received \(signal): stopping")
        await server.shutdown()
    }
}

/// Waits for SIGTERM or SIGINT (graceful shutdown) without a signal handler doing real work.
///
/// @unchecked Sendable: `sources` is written once in init and only kept alive afterwards (the
/// dispatch sources are not Sendable-annotated); the stream and continuation are Sendable.
final class ShutdownSignal: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    private let stream: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation

    init() {
        (stream, continuation) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(1))
        var sources: [any DispatchSourceSignal] = []
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            let continuation = self.continuation
            source.setEventHandler { continuation.yield(name) }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    func wait() async -> String {
        for await name in stream { return name }
        return "end"
    }
}
