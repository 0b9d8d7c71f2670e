import NIOCore
import NIOPosix
import Synchronization

/// Hostile tuner connections beside an honest load (issue 16; bench/ccr's abused run, and tests):
/// `connections` sockets from `source`, connection i playing attack i mod 6, each reconnecting as
/// soon as the server closes it (0.2 s after a failed connect) until `seconds` have passed.
///
/// All of them run on one NIO event loop with their bytes built once (`AbusePayloads`), so the
/// attackers cost the kernel's sends and connects, not their own CPU: an attacker that starves
/// the server of CPU on a shared machine measures itself, not the server.
///
/// A connection slot opens at most one connection each `connectInterval` (25 ms: 40 a second).
/// The server refuses a spent address at accept, so without that bound the slots reconnect as
/// fast as this process can connect and the attack becomes a connect loop spending a whole core
/// (291,000 connections in 30 s from 100 slots here, at ~1 core of attacker CPU): a rate set by
/// the attacker's CPU, not by the attack. The Python script this replaces was held to about 28
/// connections a second per slot by its own CPU (70,000 in 30 s at 1.2 cores); 40 a second is
/// at least as many, whatever machine runs it.
///
/// The attacks: a roll-up caption flood and an XDS program-name flood (as fast as the socket
/// takes them, one chunk in flight at a time), a PASSWORD block trickled a byte every 5 s, a
/// silent connection, 4,096 random bytes then a wait, and records with extreme timestamps (a
/// chunk each 50 ms). A write that makes no progress for 5 s, and a garbage connection that the
/// server has not closed after 5 s, are closed and reconnected (the socket timeout of the Python
/// script this replaces).
public final class AbusiveTuners: Sendable {
    public enum Attack: String, CaseIterable, Sendable {
        case flood, names, trickle, silent, garbage, extreme
    }

    public struct Options: Sendable {
        public var host = "127.0.0.1"
        public var port = 3030
        public var connections = 100
        /// Local address the connections are bound to, so the server's per-address limits see
        /// the attackers apart from honest tuners.
        public var source = "127.0.0.2"
        public var seconds: Double = 60
        /// Least time between the starts of one slot's connections (zero: no bound).
        public var connectInterval: Duration = .milliseconds(25)
        public init() {}
    }

    /// Connections made per attack, and bytes the kernel accepted from them.
    public struct Tally: Sendable {
        public var connections: [Attack: Int] = [:]
        public var bytesSent = 0

        /// `ABUSE flood=N names=N trickle=N silent=N garbage=N extreme=N bytes=N` (bench/ccr reads it).
        public var summary: String {
            "ABUSE " + Attack.allCases.map { "\($0.rawValue)=\(connections[$0, default: 0])" }.joined(separator: " ") + " bytes=\(bytesSent)"
        }
    }

    public enum SetupError: Error, CustomStringConvertible {
        case badAddress(String, underlying: String)
        case noConnections

        public var description: String {
            switch self {
            case .badAddress(let address, let underlying):
                "cannot use \(address) as an address: \(underlying) (give an IPv4 or IPv6 address, e.g. 127.0.0.2)"
            case .noConnections: "the number of abusive connections must be at least 1"
            }
        }
    }

    private let group: MultiThreadedEventLoopGroup
    private let context: AttackContext
    private let attackers: [Attacker]

    public init(options: Options) throws {
        guard options.connections >= 1 else { throw SetupError.noConnections }
        let target: SocketAddress, source: SocketAddress
        do { target = try SocketAddress.makeAddressResolvingHost(options.host, port: options.port) } catch {
            throw SetupError.badAddress("\(options.host):\(options.port)", underlying: "\(error)")
        }
        do { source = try SocketAddress(ipAddress: options.source, port: 0) } catch {
            throw SetupError.badAddress(options.source, underlying: "\(error)")
        }
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let interval = TimeAmount.nanoseconds(Int64(options.connectInterval / .nanoseconds(1)))
        let shared = AttackContext(target: target, source: source, deadline: .now() + .nanoseconds(Int64(options.seconds * 1e9)),
                                   connectInterval: interval)
        context = shared
        attackers = (0..<options.connections).map { i in
            Attacker(attack: Attack.allCases[i % Attack.allCases.count], index: i, loop: loop, context: shared)
        }
    }

    public var tally: Tally { context.tally.withLock { $0 } }

    /// Runs the attacks until the deadline, then closes every connection.
    public func run() async {
        let loop = group.next()
        let attackers = self.attackers
        let deadline = context.deadline
        // One watchdog for all: the deadline and the 5 s timeouts, without a timer per write.
        let watchdog = loop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { _ in
            let now = NIODeadline.now()
            for attacker in attackers { attacker.check(now: now) }
        }
        // The slow attacks connect first, so they take their places before the floods spend the
        // address's budgets (after which the server refuses the address at accept for a while).
        let floods = attackers.filter { $0.attack == .flood || $0.attack == .names }
        let slow = attackers.filter { $0.attack != .flood && $0.attack != .names }
        loop.execute { for attacker in slow + floods { attacker.connect() } }
        let remaining = deadline - .now()
        if remaining > .zero { try? await Task.sleep(for: .nanoseconds(remaining.nanoseconds)) }
        watchdog.cancel()
        await stop()
    }

    /// Closes every connection and stops the event loop.
    public func stop() async {
        let attackers = self.attackers
        try? await group.next().submit { for attacker in attackers { attacker.stop() } }.get()
        try? await group.shutdownGracefully()
    }
}

/// What every attacker shares: addresses, the deadline, the payloads and the tally.
final class AttackContext: Sendable {
    let target: SocketAddress
    let source: SocketAddress
    let deadline: NIODeadline
    let connectInterval: TimeAmount
    let payloads = AbusePayloads()
    let tally = Mutex(AbusiveTuners.Tally())
    let hello: ByteBuffer
    let extreme: [ByteBuffer]
    /// Random bytes for the garbage attack, a different buffer for each connection in turn.
    let garbage: [ByteBuffer]

    init(target: SocketAddress, source: SocketAddress, deadline: NIODeadline, connectInterval: TimeAmount) {
        self.target = target
        self.source = source
        self.deadline = deadline
        self.connectInterval = connectInterval
        let allocator = ByteBufferAllocator()
        hello = allocator.buffer(bytes: payloads.hello)
        extreme = payloads.extreme.map { allocator.buffer(bytes: $0) }
        var random = SystemRandomNumberGenerator()
        garbage = (0..<64).map { _ in allocator.buffer(bytes: (0..<4096).map { _ in UInt8.random(in: .min ... .max, using: &random) }) }
    }

    func count(_ attack: AbusiveTuners.Attack) { tally.withLock { $0.connections[attack, default: 0] += 1 } }
    func sent(_ bytes: Int) { tally.withLock { $0.bytesSent += bytes } }
}

/// One abusive connection slot, reconnecting for as long as the run lasts.
///
/// @unchecked Sendable: every mutable member is touched only on `loop` (calls arrive from the
/// loop's channel handlers, its scheduled tasks, or `loop.execute`/`submit`).
final class Attacker: @unchecked Sendable {
    let attack: AbusiveTuners.Attack
    let loop: any EventLoop
    let context: AttackContext
    /// Chunks sent so far (across reconnects): their timestamps, and which extreme chunk is next.
    private var chunks: Int64 = 0
    private var garbageTurn: Int
    private var channel: (any Channel)?
    /// Since when the current write (or the garbage's wait for a close) has made no progress.
    private var waitingSince: NIODeadline?
    private var stopped = false
    /// When this slot last began a connection (see `AttackContext.connectInterval`).
    private var lastConnect: NIODeadline?

    static let timeout = TimeAmount.seconds(5)
    /// Flood and name chunks per write.
    static let chunksPerWrite = 4
    /// A trickle's next byte is due then: a closed trickle notices only when it sends it (as a
    /// blocking client sleeping between bytes does), and reconnects then.
    private var trickleDue: NIODeadline?

    init(attack: AbusiveTuners.Attack, index: Int, loop: any EventLoop, context: AttackContext) {
        self.attack = attack
        self.loop = loop
        self.context = context
        self.garbageTurn = index
    }

    func connect() {
        let now = NIODeadline.now()
        guard !stopped, now < context.deadline else { return }
        if let lastConnect, now < lastConnect + context.connectInterval {
            loop.scheduleTask(deadline: lastConnect + context.connectInterval) { self.connect() }
            return
        }
        lastConnect = now
        ClientBootstrap(group: loop)
            .bind(to: context.source)
            .connectTimeout(Self.timeout)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 256))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AttackHandler(attacker: self)) }
            }
            .connect(to: context.target)
            .whenFailure { [self] _ in
                loop.scheduleTask(in: .milliseconds(200)) { self.connect() }
            }
    }

    /// The connection is up: play the attack.
    func began(_ channel: any Channel) {
        self.channel = channel
        waitingSince = nil
        context.count(attack)
        switch attack {
        case .flood, .names, .extreme:
            write(context.hello, on: channel, then: nil)
            sendChunk(on: channel)
        case .trickle:
            trickle(byte: 0, on: channel)
        case .silent:
            break
        case .garbage:
            let bytes = context.garbage[garbageTurn % context.garbage.count]
            garbageTurn += 1
            write(bytes, on: channel, then: nil)
            waitingSince = .now()
        }
    }

    /// The server sent something: a silent or garbage connection stops waiting (and closes).
    func received(on channel: any Channel) {
        if attack == .silent || attack == .garbage { channel.close(promise: nil) }
    }

    /// The connection is gone: reconnect at once.
    func ended(_ channel: any Channel) {
        guard self.channel === channel else { return }
        self.channel = nil
        waitingSince = nil
        if attack == .trickle, let due = trickleDue, due > .now() {
            loop.scheduleTask(deadline: due) { self.connect() }
        } else {
            connect()
        }
    }

    /// The watchdog: past the deadline everything closes; a write stuck for 5 s, or garbage the
    /// server has not closed in 5 s, closes (and reconnects).
    func check(now: NIODeadline) {
        guard let channel else { return }
        if now >= context.deadline {
            stopped = true
            channel.close(promise: nil)
        } else if let since = waitingSince, now - since >= Self.timeout {
            channel.close(promise: nil)
        }
    }

    func stop() {
        stopped = true
        channel?.close(promise: nil)
    }

    /// The next chunk of a flood, names or extreme attack; the one after it once this one is
    /// written (at once, or 50 ms later for extreme), so at most one chunk is ever queued.
    private func sendChunk(on channel: any Channel) {
        guard self.channel === channel, channel.isActive, NIODeadline.now() < context.deadline else { return }
        let buffer: ByteBuffer
        switch attack {
        case .flood, .names:
            // Several chunks per write (the same bytes, fewer writes): a flood's cost is the kernel's.
            let count = Int64(Self.chunksPerWrite)
            let first = chunks
            chunks += count
            var b = channel.allocator.buffer(capacity: context.payloads.flood.template.count * Self.chunksPerWrite)
            for i in first..<(first + count) {
                if attack == .flood {
                    context.payloads.flood.write(into: &b, first: i &* AbusePayloads.floodChunkMilliseconds,
                                                 step: AbusePayloads.floodRecordMilliseconds)
                } else {
                    context.payloads.names[Int(i % 2)].write(into: &b, first: i &* 33, step: 1)
                }
            }
            buffer = b
        default:
            buffer = context.extreme[Int(chunks % 3)]
            chunks += 1
        }
        let pause: TimeAmount? = attack == .extreme ? .milliseconds(50) : nil
        write(buffer, on: channel) { [self] in
            if let pause {
                loop.scheduleTask(in: pause) { self.sendChunk(on: channel) }
            } else {
                // Via the loop: a write the socket took at once completes inside writeAndFlush,
                // and chaining the next one there would recurse for as long as the socket takes them.
                loop.execute { self.sendChunk(on: channel) }
            }
        }
    }

    /// Byte `index` of the PASSWORD block, then the next one 5 s later; closes after the last.
    private func trickle(byte index: Int, on channel: any Channel) {
        guard self.channel === channel, channel.isActive, NIODeadline.now() < context.deadline else { return }
        let block = context.payloads.trickle
        guard index < block.count else {
            channel.close(promise: nil)
            return
        }
        write(channel.allocator.buffer(bytes: block[index...index]), on: channel, then: nil)
        let due = NIODeadline.now() + .seconds(5)
        trickleDue = due
        loop.scheduleTask(deadline: due) { self.trickle(byte: index + 1, on: channel) }
    }

    /// Writes and flushes `buffer`; `then` runs once the kernel took all of it. While the write
    /// is pending the watchdog's 5 s timeout runs.
    private func write(_ buffer: ByteBuffer, on channel: any Channel, then: (@Sendable () -> Void)?) {
        let count = buffer.readableBytes
        if then != nil { waitingSince = .now() }
        channel.writeAndFlush(buffer).whenComplete { [self] result in
            guard case .success = result else {
                channel.close(promise: nil)
                return
            }
            context.sent(count)
            guard let then, self.channel === channel else { return }
            waitingSince = nil
            then()
        }
    }
}

/// Connects a channel's events to its `Attacker`; what the server sends is dropped.
private final class AttackHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let attacker: Attacker
    init(attacker: Attacker) { self.attacker = attacker }

    func channelActive(context: ChannelHandlerContext) {
        attacker.began(context.channel)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        attacker.received(on: context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        attacker.ended(context.channel)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
