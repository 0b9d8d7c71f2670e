import NIOCore
import NIOPosix
import Synchronization

/// Many simulated tuners replaying a capture at its real rate (benchmarks, not tests).
///
/// Each connection sends the capture's blocks when their stream time is due (the 10-byte
/// BIN_DATA blocks carry the record timestamps), batched per `tick`. One repeated task per event
/// loop drives all of that loop's connections, so 10,000 tuners cost 10,000 sockets, not
/// 10,000 timers. `probes` of the connections send `LatencyProbe` captions instead, noting in
/// `ledger` when each caption's completing bytes left, so a reader can time its line.
///
/// Probes send on a finer timer (`probeTickMilliseconds`), each at its own phase of the interval:
/// captions from real tuners arrive at independent times, and probes sending in lockstep would
/// all meet the same pause of the server, which made the p99 of lines the worst second of a run.
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
        /// Each loop's connections send in this many groups, one group every
        /// `tickMilliseconds / tickPhases` ms (each connection still every `tickMilliseconds`).
        /// Independent tuners' bytes arrive spread over time; when every connection sent in the
        /// same millisecond of each tick, the server read 10,000 sockets in one burst, ten times
        /// a second, and a probe caption arriving meanwhile waited behind the whole burst.
        public var tickPhases = 10
        public var probeTickMilliseconds: Int64 = 5
        public var threads = 1
        /// How many of `connections` are latency probes (the first ones opened).
        public var probes = 0
        /// Time between a probe's captions.
        public var probeIntervalMilliseconds: Int64 = 1000
        public init() {}
    }

    public struct Progress: Sendable {
        public var connected = 0
        public var failed = 0
        public var closedByServer = 0
        public var bytesSent = 0
        public var finished = 0
        /// Sends held back because the server had not read what was sent before (its socket
        /// buffer and our small write buffer were full): the tuner lags instead of queueing.
        public var heldBack = 0
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
    /// Send times of the probes' captions.
    public let ledger = ProbeLedger()

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
            let ledger = self.ledger
            driver.loop.execute { driver.start(schedule: schedule, options: options, progress: progress, ledger: ledger) }
        }
        let interval = max(1, 1000 / max(1, options.rampPerSecond))
        let perStep = max(1, options.rampPerSecond / 1000)
        var opened = 0
        while opened < options.connections {
            for _ in 0..<min(perStep, options.connections - opened) {
                let driver = drivers[opened % drivers.count]
                connect(driver, probe: opened < options.probes ? opened : nil)
                opened += 1
            }
            try? await Task.sleep(for: .milliseconds(interval))
        }
    }

    private func connect(_ driver: LoopDriver, probe: Int?) {
        let progress = self.progress
        let probes = options.probes
        ClientBootstrap(group: driver.loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(60))
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 64))
            // A server that cannot keep up must not make this process queue gigabytes: past 8 KB
            // unsent per connection the driver waits (a 10,000-tuner run once queued 8 GB here).
            .channelOption(.writeBufferWaterMark, value: ChannelOptions.Types.WriteBufferWaterMark(low: 2048, high: 8192))
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
                    driver.loop.execute { driver.add(channel, probe: probe.map { ($0, probes) }) }
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
        /// Probe number when this connection is a latency probe.
        var probe: Int?
        /// A probe's offset in each interval (ms), so that probes do not send in lockstep.
        var phase: Int64 = 0
        var captionsSent = 0
    }
    /// Connections by send phase (see `Options.tickPhases`).
    private var groups: [[Connection]] = [[]]
    private var nextGroup = 0
    private var tickCount = 0
    private var probes: [Connection] = []
    private var task: RepeatedTask?
    private var probeTask: RepeatedTask?
    private var schedule: TunerLoadGenerator.Schedule?
    private var speed: Double = 1
    private var progress: ProgressCounter?
    private var ledger: ProbeLedger?
    private var probeInterval: Int64 = 1000

    init(loop: any EventLoop) { self.loop = loop }

    func start(schedule: TunerLoadGenerator.Schedule, options: TunerLoadGenerator.Options, progress: ProgressCounter, ledger: ProbeLedger) {
        self.schedule = schedule
        self.speed = options.speed
        self.progress = progress
        self.ledger = ledger
        self.probeInterval = max(1, options.probeIntervalMilliseconds)
        let phases = Int(max(1, min(Int64(options.tickPhases), options.tickMilliseconds)))
        groups = Array(repeating: [], count: phases)
        let tick = TimeAmount.milliseconds(options.tickMilliseconds / Int64(phases))
        task = loop.scheduleRepeatedTask(initialDelay: tick, delay: tick) { [self] _ in self.tick() }
        if options.probes > 0 {
            let probeTick = TimeAmount.milliseconds(options.probeTickMilliseconds)
            probeTask = loop.scheduleRepeatedTask(initialDelay: probeTick, delay: probeTick) { [self] _ in self.tickProbes() }
        }
    }

    /// Adds a connection; `probe` (number, of how many) makes it a latency probe.
    func add(_ channel: any Channel, probe: (index: Int, count: Int)?) {
        guard let probe else {
            groups[nextGroup].append(Connection(channel: channel, started: .now()))
            nextGroup = (nextGroup + 1) % groups.count
            return
        }
        let preamble = ClientBytes.preamble(description: "bench probe \(probe.index)")
        var buffer = channel.allocator.buffer(capacity: preamble.count)
        buffer.writeBytes(preamble)
        channel.writeAndFlush(buffer, promise: nil)
        probes.append(Connection(channel: channel, started: .now(), probe: probe.index,
                                 phase: probeInterval * Int64(probe.index) / Int64(max(1, probe.count))))
    }

    /// A probe's next caption when due; the previous caption's line is completed by these bytes.
    private func sendProbeCaption(_ c: inout Connection) -> Int {
        guard let probe = c.probe else { return 0 }
        let elapsed = (NIODeadline.now() - c.started).nanoseconds / 1_000_000
        guard elapsed >= c.phase + Int64(c.captionsSent) * probeInterval else { return 0 }
        let id = probe * 1_000_000 + c.captionsSent
        let bytes = LatencyProbe.caption(id: id, at: elapsed)
        var buffer = c.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        if c.captionsSent > 0 { ledger?.record(id: id - 1, at: ContinuousClock.now) }
        c.channel.writeAndFlush(buffer, promise: nil)
        c.captionsSent += 1
        return bytes.count
    }

    private func tick() {
        guard let schedule else { return }
        let now = NIODeadline.now()
        var sent = 0
        var heldBack = 0
        let group = tickCount % groups.count
        tickCount += 1
        let finished = Self.visit(&groups[group]) { c in
            let elapsed = Double((now - c.started).nanoseconds) / 1_000_000 * speed
            var end = c.offset
            if c.channel.isWritable {
                while c.block < schedule.blocks.count && Double(schedule.blocks[c.block].due) <= elapsed {
                    end = schedule.blocks[c.block].end
                    c.block += 1
                }
            } else {
                heldBack += 1
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
                return false
            }
            return true
        }
        report(sent: sent, finished: finished, heldBack: heldBack)
    }

    private func tickProbes() {
        var sent = 0
        var heldBack = 0
        let finished = Self.visit(&probes) { c in
            guard c.channel.isActive else { return false }
            if c.channel.isWritable { sent += sendProbeCaption(&c) } else { heldBack += 1 }
            return true
        }
        report(sent: sent, finished: finished, heldBack: heldBack)
    }

    /// Lets `body` update each connection in place; those it returns false for are dropped (swapped
    /// with the last, so the array never shifts). Returns how many were dropped.
    private static func visit(_ list: inout [Connection], _ body: (inout Connection) -> Bool) -> Int {
        var dropped = 0
        var i = 0
        while i < list.count {
            if body(&list[i]) {
                i += 1
            } else {
                list.swapAt(i, list.count - 1)
                list.removeLast()
                dropped += 1
            }
        }
        return dropped
    }

    private func report(sent: Int, finished: Int, heldBack: Int) {
        guard sent > 0 || finished > 0 || heldBack > 0 else { return }
        progress?.update {
            $0.bytesSent += sent
            $0.finished += finished
            $0.heldBack += heldBack
        }
    }

    func stop() {
        task?.cancel()
        probeTask?.cancel()
        for c in groups.joined() + probes { c.channel.close(promise: nil) }
        groups = groups.map { _ in [] }
        probes = []
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
