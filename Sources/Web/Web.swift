import Hummingbird
import NIOCore

/// Runs the web site as an HTTP server (`ccr web`).
public enum WebServer {
    /// The Hummingbird application for `site`, listening on `host:port` (port 0: any free port;
    /// `onRunning` learns the real one).
    public static func application(site: WebSite, host: String, port: Int,
                                   onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: site.buildRouter(),
            configuration: .init(address: .hostname(host, port: port), serverName: "ccr-web"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }
        )
    }

    /// Serves until SIGTERM or SIGINT.
    public static func run(site: WebSite, host: String, port: Int,
                           onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await application(site: site, host: host, port: port, onRunning: onRunning).runService()
    }
}
