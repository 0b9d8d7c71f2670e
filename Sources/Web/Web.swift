import Hummingbird
import Logging
import NIOCore

/// Runs the web site as an HTTP server (`ccr web`).
public enum WebServer {
    /// The Hummingbird application for `site`, listening on `host:port` (port 0: any free port;
    /// `onRunning` learns the real one). `gate` caps the open connections (see
    /// `WebLimits.connectionCap`); every connection lives under the site's timeouts.
    public static func application(site: WebSite, host: String, port: Int, gate: ConnectionGate? = nil,
                                   logger: Logger = Logger(label: "ccr.web"),
                                   onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: site.buildRouter(),
            server: .guarded(gate: gate ?? ConnectionGate(cap: site.limits.maxConnections), limits: site.limits, logger: logger),
            configuration: .init(address: .hostname(host, port: port), serverName: "ccr-web"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// Serves until SIGTERM or SIGINT.
    public static func run(site: WebSite, host: String, port: Int, gate: ConnectionGate? = nil, logger: Logger = Logger(label: "ccr.web"),
                           onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await application(site: site, host: host, port: port, gate: gate, logger: logger, onRunning: onRunning).runService()
    }
}
