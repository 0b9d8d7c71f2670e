import Logging
import NIOCore

/// The tuner's own address, read from a load balancer's PROXY header: `TunerChannelHandler`
/// uses it for the limits, the logs and the tuners table instead of the balancer's.
struct ProxiedClient: Sendable {
    let address: SocketAddress
    /// The balancer's address (the connection's own peer), for the logs.
    let via: String
}

/// First handler on a connection from a load balancer (`[server] proxy_protocol_from`): reads the
/// PROXY header (v1 or v2) before anything else, then hands the tuner's address to the tuner's
/// handler and gets out of the way. The tuner's handler does not see the connection become active
/// until the header is read, so nothing is admitted, counted or refused under the balancer's
/// address.
///
/// A header that is malformed, too long or not complete within the handshake deadline closes the
/// connection with a logged reason and the metric `ccr_connections_closed_total{reason="proxy-header"}`.
/// A connection closed before its first byte (a balancer's TCP health check) is counted as
/// `proxy-eof` and not logged.
final class ProxyHeaderHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let shared: ServerContext
    private var received: ByteBuffer?
    private var deadline: Scheduled<Void>?
    private var forwarded = false
    private var closing = false

    init(shared: ServerContext) {
        self.shared = shared
    }

    func channelActive(context: ChannelHandlerContext) {
        let seconds = shared.configuration.handshakeTimeout
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) {
            let (handler, context) = bound.value
            guard !handler.forwarded else { return }
            handler.fail(context: context, "no complete PROXY header within \(formatted(seconds)) s of connecting")
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !forwarded else { return context.fireChannelRead(data) }
        guard !closing else { return }
        var bytes = unwrapInboundIn(data)
        if received == nil {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
        let parsed: (ProxyHeader, length: Int)?
        do throws(ProxyHeaderError) {
            parsed = try received!.withUnsafeReadableBytes { (raw) throws(ProxyHeaderError) in try ProxyHeader.parse(raw) }
        } catch {
            return fail(context: context, error.description)
        }
        guard let (header, length) = parsed else { return }
        deadline?.cancel()
        forwarded = true
        let peer = context.remoteAddress?.ipAddress ?? "?"
        if case .proxied(let address, let port) = header, let client = try? SocketAddress(ipAddress: address, port: port) {
            context.fireUserInboundEventTriggered(ProxiedClient(address: client, via: peer))
        }
        context.fireChannelActive()
        received!.moveReaderIndex(forwardBy: length)
        if let rest = received, rest.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(rest)) }
        received = nil
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func fail(context: ChannelHandlerContext, _ message: String) {
        guard !closing else { return }
        closing = true
        shared.metrics.update { $0.closedByReason["proxy-header", default: 0] += 1 }
        var logger = shared.logger
        logger[metadataKey: "peer"] = "\(context.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?")"
        logger.warning("closing load balancer connection: \(message)", metadata: ["reason": "proxy-header"])
        context.close(promise: nil)
    }

    /// A reset before the header was read (a balancer's health check may close so): closed
    /// quietly, counted by `channelInactive`.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !forwarded else { return context.fireErrorCaught(error) }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        if forwarded { return context.fireChannelInactive() }
        if !closing && (received?.readableBytes ?? 0) == 0 {
            shared.metrics.update { $0.closedByReason["proxy-eof", default: 0] += 1 }
        } else if !closing {
            closing = true
            shared.metrics.update { $0.closedByReason["proxy-header", default: 0] += 1 }
            shared.logger.warning("load balancer connection ended inside its PROXY header", metadata: ["reason": "proxy-header"])
        }
    }
}
