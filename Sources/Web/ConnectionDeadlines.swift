#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTPTypes

/// The timeouts a visitor's connection lives under (after HTTP decoding, so it sees requests and
/// responses, not bytes):
/// - header: a request must be complete within `header` of the connection opening or of its head
///   arriving (500 connections sending half a request were held for good);
/// - idle: a kept-alive connection with no request in progress is closed after `idle`;
/// - write: a connection whose socket has taken no data for `write` (the client stopped reading
///   a live feed or a download) is closed, which fails the response's pending write and ends it.
final class ConnectionDeadlines: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    struct Timeouts: Sendable {
        var header: TimeAmount
        var idle: TimeAmount
        var write: TimeAmount
    }

    private let timeouts: Timeouts
    /// Requests whose head arrived and whose response has not ended.
    private var inFlight = 0
    /// A request's head arrived, its end not yet.
    private var reading = false
    private var requestTimer: Scheduled<Void>?
    private var writeTimer: Scheduled<Void>?

    init(timeouts: Timeouts) {
        self.timeouts = timeouts
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { schedule(timeouts.header, context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        schedule(timeouts.header, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        requestTimer?.cancel()
        writeTimer?.cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        requestTimer?.cancel()
        writeTimer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            inFlight += 1
            reading = true
            schedule(timeouts.header, context: context)
        case .body:
            break
        case .end:
            reading = false
            // Answering takes what it takes; only the write timeout watches it now.
            requestTimer?.cancel()
            requestTimer = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            inFlight = max(0, inFlight - 1)
            if inFlight == 0, !reading { schedule(timeouts.idle, context: context) }
        }
        context.write(data, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writeTimer?.cancel()
            writeTimer = nil
        } else if writeTimer == nil {
            let channel = context.channel
            writeTimer = context.eventLoop.scheduleTask(in: timeouts.write) { channel.abort() }
        }
        context.fireChannelWritabilityChanged()
    }

    private func schedule(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        requestTimer?.cancel()
        let channel = context.channel
        requestTimer = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }
}

extension Channel {
    /// Closes with a reset (SO_LINGER 0): for a client that stopped reading, whose unsent data
    /// would otherwise keep the kernel's socket (and its buffers) alive behind the closed one.
    func abort() {
        guard let socket = self as? any SocketOptionProvider else { return close(promise: nil) }
        socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in self.close(promise: nil) }
    }
}
