import NIOCore
import NIOPosix
import Synchronization

/// Many simulated tuners replaying a capture at its real rate (benchmarks, not tests).
///
/// Each connection sends the capture's blocks when their stream time is due (the 10-byte
/// BIN_DATA blocks carry the record timestamps), batched per `tick`. One repeated task per event
/// loop drives all of that loop's connections, so 10,000 tuners cost 10,000 sockets, not
/// 10,000 timers.
public final class TunerLoadGenerator: Sendable {
    public struct Options: Sendable {
        public var host = "127.0.0.1"
        public var port = 3030
        public var connections = 100
        /// New connections per second while ramping up.
        public var rampPerSecond = 1000
        /// 1 = real time.
        public var speed: Double = 1
        public var tickMilliseconds: Int64 = 100
        public var threads = 1
        public init() {}
    }

    public struct Progress: Sendable {
        public var connected = 0
        public var failed = 0
        public var closedByServer = 0
        public var bytesSent = 0
        public var finished = 0
        /// The first connection error, for the report.
        public var firstError: String?
    }

    /// A capture split into blocks, each with the time (ms from the first record) it is due.
    struct Schedule: Sendable {
        let bytes: [UInt8]
        /// (end offset of block in `bytes`, due ms)
        let blocks: [(end: Int, due: Int64)]
    }

    private let options: Options
    private let schedule: Schedule
    private let group: MultiThreadedEventLoopGroup
    private let progress = ProgressCounter()
    private let drivers: [LoopDriver]

    public init(capture: [UInt8], options: Options) {
        self.options = options
        self.schedule = Self.makeSchedule(capture)
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: options.threads)
        var drivers: [LoopDriver] = []
        for loop in group.makeIterator() { drivers.append(LoopDriver(loop: loop)) }
        self.drivers = drivers
    }

    static func makeSchedule(_ capture: [UInt8]) -> Schedule {
        var blocks: [(Int, Int64)] = []
        var i = 0
        var first: Int64?
        var due: Int64 = 0
        while i + 11 <= capture.count {
            let digits = capture[(i + 1)..<(i + 11)].prefix { $0 != 0 }
            guard let length = Int(String(decoding: digits, as: UTF8.self)) else { break }
            let end = i + 11 + length + 2
            guard end <= capture.count else { break }
            if capture[i] == 6 && length == 10 {
                var t: Int64 = 0
                for k in 0..<8 { t |= Int64(capture[i + 11 + k]) << (8 * Int64(k)) }
                if first == nil { first = t }
                due = max(due, t - first!)
            }
            blocks.append((end, due))
            i = end
        }
        return Schedule(bytes: capture, blocks: blocks)
    }

    public var snapshot: Progress { progress.value }

    /// Duration of the capture at the configured speed, in seconds.
    public var captureSeconds: Double { Double(schedule.blocks.last?.due ?? 0) / 1000 / options.speed }

    /// Opens the connections (ramping) and starts streaming; returns once all are attempted.
    public func start() async {
        for driver in drivers {
            let schedule = self.schedule
            let options = self.options
            let progress = self.progress
            driver.loop.execute { driver.start(schedule: schedule, options: options, progress: progress) }
        }
        let interval = max(1, 1000 / max(1, options.rampPerSecond))
        let perStep = max(1, options.rampPerSecond / 1000)
        var opened = 0
        while opened < options.connections {
            for _ in 0..<min(perStep, options.connections - opened) {
                let driver = drivers[opened % drivers.count]
                connect(driver)
                opened += 1
            }
            try? await Task.sleep(for: .milliseconds(interval))
        }
    }

    private func connect(_ driver: LoopDriver) {
        let progress = self.progress
        ClientBootstrap(group: driver.loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(60))
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 64))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DiscardingHandler(progress: progress))
                }
            }
            .connect(host: options.host, port: options.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    progress.update { $0.connected += 1 }
                    driver.loop.execute { driver.add(channel) }
                case .failure(let error):
                    progress.update {
                        $0.failed += 1
                        if $0.firstError == nil { $0.firstError = "\(error)" }
                    }
                }
            }
    }

    /// Closes every connection and stops the event loops.
    public func stop() async {
        for driver in drivers {
            try? await driver.loop.submit { driver.stop() }.get()
        }
        try? await group.shutdownGracefully()
    }
}

final class ProgressCounter: Sendable {
    private let state = Mutex(TunerLoadGenerator.Progress())
    var value: TunerLoadGenerator.Progress { state.withLock { $0 } }
    func update(_ body: (inout TunerLoadGenerator.Progress) -> Void) { state.withLock { body(&$0) } }
}

/// The connections of one event loop and the tick that feeds them.
///
/// @unchecked Sendable: every mutable member is touched only on `loop` (all calls arrive via
/// `loop.execute`/`submit` or from the loop's own scheduled task).
final class LoopDriver: @unchecked Sendable {
    let loop: any EventLoop
    private struct Connection {
        let channel: any Channel
        let started: NIODeadline
        var block = 0
        var offset = 0
    }
    private var connections: [Connection] = []
    private var task: RepeatedTask?
    private var schedule: TunerLoadGenerator.Schedule?
    private var speed: Double = 1
    private var progress: ProgressCounter?

    init(loop: any EventLoop) { self.loop = loop }

    func start(schedule: TunerLoadGenerator.Schedule, options: TunerLoadGenerator.Options, progress: ProgressCounter) {
        self.schedule = schedule
        self.speed = options.speed
        self.progress = progress
        let tick = TimeAmount.milliseconds(options.tickMilliseconds)
        task = loop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { [self] _ in self.tick() }
    }

    func add(_ channel: any Channel) {
        connections.append(Connection(channel: channel, started: .now()))
    }

    private func tick() {
        guard let schedule else { return }
        let now = NIODeadline.now()
        var sent = 0
        var finished = 0
        var i = 0
        while i < connections.count {
            var c = connections[i]
            let elapsed = Double((now - c.started).nanoseconds) / 1_000_000 * speed
            var end = c.offset
            while c.block < schedule.blocks.count && Double(schedule.blocks[c.block].due) <= elapsed {
                end = schedule.blocks[c.block].end
                c.block += 1
            }
            if end > c.offset {
                var buffer = c.channel.allocator.buffer(capacity: end - c.offset)
                buffer.writeBytes(schedule.bytes[c.offset..<end])
                c.channel.writeAndFlush(buffer, promise: nil)
                sent += end - c.offset
                c.offset = end
            }
            if c.block >= schedule.blocks.count || !c.channel.isActive {
                c.channel.close(promise: nil)
                connections.swapAt(i, connections.count - 1)
                connections.removeLast()
                finished += 1
                continue
            }
            connections[i] = c
            i += 1
        }
        if sent > 0 || finished > 0 {
            progress?.update {
                $0.bytesSent += sent
                $0.finished += finished
            }
        }
    }

    func stop() {
        task?.cancel()
        for c in connections { c.channel.close(promise: nil) }
        connections = []
    }
}

/// Reads and drops what the server sends (0x37 answers, CONN_LIMIT) and counts server closes.
private final class DiscardingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let progress: ProgressCounter
    init(progress: ProgressCounter) { self.progress = progress }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    func channelInactive(context: ChannelHandlerContext) {
        progress.update { $0.closedByServer += 1 }
    }
}
