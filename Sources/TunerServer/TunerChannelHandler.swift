import Captions
import Logging
import NIOCore
import Store
import ServerFiles

/// What all tuner connections of one server share.
final class ServerContext: Sendable {
    let configuration: ServerConfiguration
    let settings: SessionSettings
    let metrics: ServerMetrics
    let logger: Logger
    let storeWriter: StoreWriter?
    let registry: ConnectionRegistry
    let archive: ArchiveWriter
    let admission: TunerAdmission
    /// Store keys of programs, unique in the process whatever the number of programs per tuner.
    let programKeys = ConnectionCounter()

    init(configuration: ServerConfiguration, metrics: ServerMetrics, logger: Logger, storeWriter: StoreWriter?, registry: ConnectionRegistry,
         archive: ArchiveWriter) {
        self.configuration = configuration
        self.settings = SessionSettings(password: configuration.password,
                                        layout: ArchiveLayout(root: configuration.archiveDirectory, node: configuration.nodeName),
                                        flushThreshold: configuration.flushThreshold, archiveIO: archive,
                                        limits: configuration.limits)
        self.admission = TunerAdmission(limits: configuration.limits)
        self.archive = archive
        self.metrics = metrics
        self.logger = logger
        self.storeWriter = storeWriter
        self.registry = registry
    }
}

/// One tuner connection on an event loop: feeds its bytes to a `TunerSession`, answers PING,
/// enforces the password (with the address's lockout), the handshake deadline, the limits on
/// unauthenticated connections and on tuners, and the idle timeout, flushes the archive on a
/// timer, and forwards what the store must know.
///
/// It reads everything as fast as it arrives and never pauses reading: CCExtractor's client
/// drops data when the server is slow. Decoding is cheap (a tuner sends ~1 KB/s) and stays on the
/// event loop; archive data is batched (one write per file when its buffer is full or
/// `flushInterval` has passed) and written by the server's `ArchiveWriter` threads, so no file
/// operation ever runs on the event loop.
final class TunerChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let shared: ServerContext
    private let connection: Int
    private var session: TunerSession
    private var context: ChannelHandlerContext?
    private var timer: RepeatedTask?
    private var lastRead: NIODeadline = .now()
    /// When `session.blockCount` last grew (or the connect): `[server] block_timeout` counts from it.
    private var lastBlockAt: NIODeadline = .now()
    private var blocksSeen = 0
    private var holdsSlot = false
    /// Counted in `TunerAdmission` until it authenticates or closes.
    private var unauthenticated = false
    private var handshakeDeadline: Scheduled<Void>?
    private var address = ""
    private var closing = false
    private var closeReason: String?
    private var peer = ""
    private var storeConnected = false
    /// The CC_DESC text, for the store's tuner row (written with the first record).
    private var tunerDescription: String?
    /// The store key of the current program (`ServerContext.programKeys`).
    private var globalProgram = 0
    /// Last value per XDS kind (hashes), so rebroadcasts are not stored again and again.
    private var lastXDS: [UInt8: Int] = [:]

    init(shared: ServerContext, connection: Int) {
        self.shared = shared
        self.connection = connection
        self.session = TunerSession(tuner: "tuner-\(connection)", settings: shared.settings)
    }

    private var logger: Logger {
        var l = shared.logger
        l[metadataKey: "tuner"] = "\(connection)"
        l[metadataKey: "peer"] = "\(peer)"
        return l
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// The tuner's address from a load balancer's PROXY header (`ProxyHeaderHandler`), which
    /// stands for the connection's own peer everywhere.
    private var proxied: ProxiedClient?

    /// The tuner's address: from the PROXY header when a load balancer sent one, else the peer's.
    private func clientAddress(_ context: ChannelHandlerContext) -> SocketAddress? {
        proxied?.address ?? context.remoteAddress
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let client = event as? ProxiedClient { proxied = client } else { context.fireUserInboundEventTriggered(event) }
    }

    func channelActive(context: ChannelHandlerContext) {
        let remote = clientAddress(context)
        address = remote?.ipAddress ?? "?"
        session.setAddress(address)
        peer = remote.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        if let proxied { peer += " via \(proxied.via)" }
        shared.metrics.update { $0.connectionsTotal += 1 }
        if let refusal = shared.admission.connect(address, nowMs: wallClockMilliseconds()) {
            shared.metrics.update { $0.refusedByReason[refusal.rawValue, default: 0] += 1 }
            refuse(context: context, reply: refusal.reply)
            return
        }
        unauthenticated = true
        lastBlockAt = .now()
        if let earlier = shared.admission.budgets(for: address, nowMs: wallClockMilliseconds()) { session.budgets = earlier }
        lastRead = .now()
        // The handshake deadline counts from the connect, not from the last byte: a connection
        // trickling a byte now and then is still closed in time.
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let handshake = shared.configuration.handshakeTimeout
        handshakeDeadline = context.eventLoop.scheduleTask(in: .milliseconds(Int64(handshake * 1000))) {
            let handler = bound.value
            guard handler.unauthenticated, let context = handler.context else { return }
            handler.close(context: context, reason: "handshake", message: "not authenticated within \(formatted(handshake)) s of connecting")
        }
        let tick = TimeAmount.milliseconds(Int64(shared.configuration.flushInterval * 1000))
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { _ in
            bound.value.onTimer()
        }
        context.fireChannelActive()
    }

    /// Answers `reply` (possibly nothing) and closes, before the connection took anything.
    private func refuse(context: ChannelHandlerContext, reply: [UInt8]) {
        closing = true
        var buffer = context.channel.allocator.buffer(capacity: reply.count)
        buffer.writeBytes(reply)
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { [channel = context.channel] _ in
            channel.close(promise: nil)
        }
    }

    /// The tuner authenticated: it leaves the unauthenticated count and takes a tuner slot, or
    /// is answered CONN_LIMIT when every slot is held.
    private func authenticated(context: ChannelHandlerContext) {
        unauthenticated = false
        handshakeDeadline?.cancel()
        handshakeDeadline = nil
        shared.admission.leaveUnauthenticated(address)
        if shared.configuration.password != nil { shared.admission.passwordAccepted(address) }
        guard shared.registry.add(context.channel, limit: shared.configuration.maxTuners) else {
            shared.metrics.update { $0.connectionLimitRejections += 1 }
            logger.warning("connection limit reached (\(shared.configuration.maxTuners) tuners): refusing")
            refuse(context: context, reply: BlockCommand.connectionLimit.block())
            return
        }
        holdsSlot = true
        shared.metrics.update { $0.connectedTuners += 1 }
        logger.info("tuner connected")
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard !closing else { return }
        if unauthenticated && shared.admission.isLockedOut(address, nowMs: wallClockMilliseconds()) {
            close(context: context, reason: "locked-out", message: "address locked out after wrong passwords")
            return
        }
        lastRead = .now()
        let count = buffer.readableBytes
        var events = 0
        do throws(SessionClose) {
            try buffer.withUnsafeReadableBytes { (raw) throws(SessionClose) in
                try session.receive(raw) { event in
                    events += 1
                    handle(event, context: context)
                }
            }
        } catch {
            shared.metrics.update {
                $0.bytesReceived += count
                if error.kind != .password { $0.decodeErrors += 1 }
            }
            if error.kind == .limit {
                shared.admission.limitReached(address, budgets: session.budgets, nowMs: wallClockMilliseconds())
            }
            if error.kind != .password || closeReason == nil {
                close(context: context, reason: error.kind.rawValue, message: error.reason)
            }
            return
        }
        if unauthenticated && session.isAuthenticated && !closing {
            authenticated(context: context)
            if closing { return }
        }
        let records = session.recordCount
        shared.metrics.update {
            $0.bytesReceived += count
            $0.recordsDecoded += records - recordsCounted
        }
        recordsCounted = records
        if session.blockCount != blocksSeen {
            blocksSeen = session.blockCount
            lastBlockAt = .now()
        }
        if session.flushIsDue { session.flushFull { handle($0, context: context) } }
    }

    private var recordsCounted = 0

    private func handle(_ event: SessionEvent, context: ChannelHandlerContext) {
        switch event {
        case .reply(let bytes):
            var buffer = context.channel.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        case .wrongPassword:
            shared.metrics.update { $0.wrongPasswords += 1 }
            closing = true
            closeReason = "password"
            logger.warning("wrong password: answering 0x02 and closing")
            if let seconds = shared.admission.passwordFailed(address, nowMs: wallClockMilliseconds()) {
                shared.metrics.update { $0.lockouts += 1 }
                logger.warning("address locked out for \(formatted(seconds)) s after \(shared.configuration.limits.passwordFailures) wrong passwords",
                               metadata: ["address": "\(address)"])
            }
            var buffer = context.channel.allocator.buffer(capacity: 1)
            buffer.writeInteger(UInt8(0x02))
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
            let delay = TimeAmount.milliseconds(Int64(shared.configuration.wrongPasswordDelay * 1000))
            let channel = context.channel
            context.eventLoop.scheduleTask(in: delay) { channel.close(promise: nil) }
        case .described(let text):
            logger.info("tuner described itself", metadata: ["description": "\(text)"])
            tunerDescription = text
        case .streamStarted:
            break
        case .programStarted(let name, let at):
            // The store hears of a tuner with its first record (a real client sends one within a
            // frame of its header): a connection that only says hello, or is closed over a limit
            // before its first record, costs the database nothing.
            connectInStore()
            globalProgram = shared.programKeys.next()
            shared.storeWriter?.enqueue(.programStarted(connection: connection, program: globalProgram, at: at, name: name))
            logger.info("program started", metadata: ["program": "\(name ?? "(unnamed)")"])
        case .programNamed(let name):
            shared.storeWriter?.enqueue(.programRenamed(program: globalProgram, name: name))
            logger.info("program named", metadata: ["program": "\(name)"])
        case .programEnded(let at):
            shared.storeWriter?.enqueue(.programEnded(program: globalProgram, at: at))
        case .cue(let cue, _):
            storeLine(cue, service: CaptionService.cea608)
        case .serviceCue(let serviceCue):
            storeLine(serviceCue.cue, service: serviceCue.service)
        case .xds(let xds):
            guard let (kind, value) = storeXDS(xds.content) else { return }
            let key = xdsKey(xds.content)
            guard lastXDS[key] != value.hashValue else { return }
            lastXDS[key] = value.hashValue
            shared.storeWriter?.enqueue(.xds(connection: connection, program: globalProgram, atMs: xds.start, kind: kind, value: value))
        case .archiveFailed(let error):
            shared.metrics.update { $0.archiveErrors += 1 }
            logger.error("archive write failed", metadata: ["error": "\(error)"])
        }
    }

    private func storeLine(_ cue: Cue, service: Int) {
        guard !cue.lines.isEmpty else { return }
        shared.metrics.update { $0.captionLines += 1 }
        shared.storeWriter?.enqueue(.line(connection: connection, program: globalProgram, service: service, startMs: cue.start, endMs: cue.end,
                                          mode: storeMode(cue.mode), text: cue.plainText, capturedAt: wallClockMilliseconds()))
    }

    private func connectInStore() {
        guard !storeConnected, let writer = shared.storeWriter else { return }
        storeConnected = true
        let address = context.flatMap(clientAddress)
        writer.enqueue(.connected(connection: connection, TunerConnection(
            nodeID: 0, address: address?.ipAddress ?? "", port: address?.port ?? 0,
            description: tunerDescription.flatMap { $0.isEmpty ? nil : $0 }, connectedAt: wallClockMilliseconds())))
    }

    private func onTimer() {
        guard let context, !closing else { return }
        flush()
        let limit = shared.configuration.idleTimeout
        if session.isAuthenticated, NIODeadline.now() - lastRead > .milliseconds(Int64(limit * 1000)) {
            close(context: context, reason: SessionClose.Kind.idle.rawValue, message: "no data for \(formatted(limit)) s")
            return
        }
        let blockLimit = shared.configuration.blockTimeout
        if !session.isAtBlockBoundary, NIODeadline.now() - lastBlockAt > .milliseconds(Int64(blockLimit * 1000)) {
            close(context: context, reason: "slow-block",
                  message: "a block not complete \(formatted(blockLimit)) s after the one before (\(session.positionDescription)) ([server] block_timeout)")
        }
    }

    private func flush() {
        guard let context else { return }
        session.flush { handle($0, context: context) }
    }

    private func close(context: ChannelHandlerContext, reason: String, message: String) {
        guard !closing else { return }
        closing = true
        closeReason = reason
        logger.warning("closing tuner connection: \(message)", metadata: ["reason": "\(reason)"])
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        handshakeDeadline?.cancel()
        handshakeDeadline = nil
        if unauthenticated {
            unauthenticated = false
            shared.admission.leaveUnauthenticated(address)
            // Closed before authenticating for what it did (a deadline, the protocol), or gone
            // in the middle of a block: not what an honest tuner does.
            if closeReason != nil || !session.isAtBlockBoundary { shared.admission.strike(address, nowMs: wallClockMilliseconds()) }
            shared.metrics.update { $0.closedByReason[closeReason ?? "eof", default: 0] += 1 }
        }
        // A tuner refused a slot after it authenticated may have sent captions in the same
        // read: what it sent is kept, and the store hears that it left.
        if holdsSlot || storeConnected || session.recordCount > 0 {
            if closeReason == nil && !session.isAtBlockBoundary {
                closeReason = "truncated"
                logger.warning("tuner connection ended \(session.positionDescription)")
            }
            session.finish { handle($0, context: context) }
            if storeConnected {
                shared.storeWriter?.enqueue(.disconnected(connection: connection, at: wallClockMilliseconds()))
            }
        }
        if holdsSlot {
            holdsSlot = false
            let reason = closeReason ?? "eof"
            shared.metrics.update {
                $0.connectedTuners -= 1
                $0.closedByReason[reason, default: 0] += 1
            }
            shared.registry.remove(context.channel)
            logger.info("tuner disconnected", metadata: ["reason": "\(reason)", "bytes": "\(session.bytesReceived)"])
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if closeReason == nil { closeReason = "error" }
        logger.warning("tuner connection error: \(error)")
        context.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }
}

func storeMode(_ mode: CaptionMode) -> String {
    switch mode {
    case .popOn: "pop-on"
    case .rollUp2, .rollUp3, .rollUp4: "roll-up"
    case .paintOn: "paint-on"
    case .text: "text"
    }
}

func xdsKey(_ content: XDSContent) -> UInt8 {
    switch content {
    case .programName: 1
    case .programType: 2
    case .lengthElapsed: 3
    case .networkName: 4
    case .callLetters: 5
    case .contentAdvisory: 6
    case .other: 7
    }
}

/// The XDS items worth keeping in the store (kind, value); nil for the rest.
func storeXDS(_ content: XDSContent) -> (String, String)? {
    switch content {
    case .programName(let n): ("program-name", n)
    case .programType(let t): ("program-type", t.joined(separator: ", "))
    case .lengthElapsed(let length, _): ("program-length-minutes", String(length))
    case .networkName(let n): ("network-name", n)
    case .callLetters(let c): ("call-letters", c)
    case .contentAdvisory(let a): ("content-advisory", a)
    case .other: nil
    }
}
