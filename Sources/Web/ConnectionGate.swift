import Logging
import NIOCore
import Synchronization

/// Counts `ccr web`'s open connections against a cap shared by all event loops.
public final class ConnectionGate: Sendable {
    public let cap: Int
    private let open = Atomic<Int>(0)
    private let refusals = Atomic<Int>(0)
    private let lingering = Atomic<Int>(0)
    /// Refused connections that may linger at once (each holds a descriptor): within the
    /// descriptors `WebLimits.reservedFileDescriptors` keeps, so that a burst of refusals never
    /// leaves the server unable to accept (the kernel then queues visitors unanswered).
    static let maximumLingering = 16

    public init(cap: Int) {
        self.cap = max(1, cap)
    }

    /// Connections admitted and not yet closed.
    public var openConnections: Int { open.load(ordering: .relaxed) }

    /// True (and counted) when the cap leaves room for one more connection.
    func enter() -> Bool {
        let now = open.add(1, ordering: .relaxed).newValue
        if now <= cap { return true }
        open.subtract(1, ordering: .relaxed)
        return false
    }

    func leave() { open.subtract(1, ordering: .relaxed) }

    /// True (and counted) when a refused connection may linger; `stopLingering` when it closes.
    func startLingering() -> Bool {
        if lingering.add(1, ordering: .relaxed).newValue <= Self.maximumLingering { return true }
        lingering.subtract(1, ordering: .relaxed)
        return false
    }

    func stopLingering() { lingering.subtract(1, ordering: .relaxed) }

    /// Counts a refusal; true for the first and then every 1,000th, so a flood is logged, not
    /// every refused connection.
    func shouldLogRefusal() -> Bool {
        refusals.add(1, ordering: .relaxed).newValue % 1000 == 1
    }
}

/// The first handler of every connection (it sees raw bytes): admits the connection through the
/// `ConnectionGate`, or answers `503 Service Unavailable` itself and closes it; and closes a
/// connection whose client has closed its side, so that the work of a request the client gave up
/// on is cancelled (`WebRequestContext.untilClientLeaves`) rather than finished for no one.
///
/// Why answer instead of not accepting: a server that stops accepting leaves new visitors
/// waiting in the kernel's backlog until they time out; a 503 tells them (and a proxy) at once.
final class ConnectionGateHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum State { case new, admitted, refused(lingering: Bool), closed }
    private var state = State.new
    private let gate: ConnectionGate
    private let logger: Logger
    /// How long a refused connection may still send its request (read and dropped) after the
    /// 503, so that closing does not reset the connection before the client has read the answer.
    /// Past `ConnectionGate.maximumLingering` such connections, a refused one is closed at once.
    static let refusedLinger = TimeAmount.milliseconds(500)

    init(gate: ConnectionGate, logger: Logger) {
        self.gate = gate
        self.logger = logger
    }

    static let refusal: String = {
        let body = "The caption site has too many visitors right now; try again in a minute.\n"
        return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Retry-After: 10\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n\r\n" + body
    }()

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        admit(context: context)
        context.fireChannelActive()
    }

    private func admit(context: ChannelHandlerContext) {
        guard case .new = state else { return }
        if gate.enter() {
            state = .admitted
            // The first read, issued here on the event loop: a connection's reads otherwise wait
            // for its request task to start, and until then a client that connects and leaves
            // (its EOF unread) keeps its place under the cap.
            context.read()
            return
        }
        let lingering = gate.startLingering()
        state = .refused(lingering: lingering)
        if gate.shouldLogRefusal() {
            logger.warning("connection refused with 503: the cap of \(gate.cap) connections is reached ([web] max_connections, ulimit -n)")
        }
        let channel = context.channel
        context.writeAndFlush(NIOAny(ByteBuffer(string: Self.refusal))).whenComplete { _ in
            if lingering { channel.close(mode: .output, promise: nil) } else { channel.close(promise: nil) }
        }
        if lingering { channel.eventLoop.scheduleTask(in: Self.refusedLinger) { channel.close(promise: nil) } }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A refused connection's request is read and dropped: it never reaches HTTP.
        if case .admitted = state { context.fireChannelRead(data) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            // The client closed its side: nobody will read an answer.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .admitted: gate.leave()
        case .refused(lingering: true): gate.stopLingering()
        case .new, .refused(lingering: false), .closed: break
        }
        state = .closed
        context.fireChannelInactive()
    }
}
