import Logging
import NIOCore
import NIOPosix
import Store
import Synchronization

/// `ccr serve`'s engine: accepts CCExtractor tuners, archives and stores their captions, serves
/// `/metrics`, and beats the node's heartbeat in the store.
public final class TunerServer: Sendable {
    /// Reads of a tuner's socket per event-loop turn. NIO stops at the first read that does not
    /// fill the (small, `receiveBufferSize`) buffer, so a tuner that is up to date costs one read
    /// as before; one that has more waiting (after a busy moment) is caught up in one turn. With
    /// one read of 256 bytes per turn, a backlog at 10,000 tuners took turns to drain, each turn
    /// over every ready socket, and a busy second grew into lag of several seconds (p99 from
    /// bytes to live line 70-316 ms; with 8 reads 37-54 ms, the disk included).
    static let readsPerTurn: UInt = 8

    public let configuration: ServerConfiguration
    public let metrics: ServerMetrics
    /// The port tuners connect to (the real one when the configuration said 0).
    public let port: Int
    /// The metrics HTTP port, when enabled.
    public let metricsPort: Int?
    /// This run's node id in the store, when there is a store.
    public let nodeID: Int64?

    private let group: MultiThreadedEventLoopGroup
    private let serverChannel: any Channel
    private let metricsChannel: (any Channel)?
    private let context: ServerContext
    private let store: (any CaptionStore)?
    private let background: Mutex<[Task<Void, Never>]>
    private let stopped = Mutex(false)
    private let logger: Logger

    /// Starts listening. `store` nil runs archive-only. The store is closed by `shutdown()`.
    ///
    /// `archiveIO` is what the archive writer threads write with (tests stand in a stalling disk).
    public static func start(configuration: ServerConfiguration, store: (any CaptionStore)?, logger: Logger,
                             archiveIO: any ArchiveIO = DirectArchiveIO()) async throws -> TunerServer {
        let metrics = ServerMetrics()
        var nodeID: Int64?
        var writer: StoreWriter?
        if let store {
            let id = try await store.registerNode(hostname: configuration.nodeName)
            nodeID = id
            writer = StoreWriter(store: store, nodeID: id, logger: logger, metrics: metrics, queueLimit: configuration.limits.storeQueue)
        }
        let threads = configuration.eventLoopThreads > 0 ? configuration.eventLoopThreads : System.coreCount
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let registry = ConnectionRegistry()
        let archive = ArchiveWriter(writingWith: archiveIO) { error in
            metrics.update { $0.archiveErrors += 1 }
            logger.error("archive write failed", metadata: ["error": "\(error)"])
        }
        let context = ServerContext(configuration: configuration, metrics: metrics, logger: logger, storeWriter: writer, registry: registry,
                                    archive: archive)
        let counter = ConnectionCounter()
        do {
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 4096)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(AcceptFilter(admission: context.admission, metrics: metrics,
                                                                                    proxies: configuration.proxyProtocolFrom))
                    }
                }
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                // ccr-memory.md: NIO keeps each connection's last receive buffer; a small fixed
                // one keeps a tuner's cost at a few KB (see `readsPerTurn` for the reads per turn).
                .childChannelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: configuration.receiveBufferSize))
                .childChannelOption(.maxMessagesPerRead, value: Self.readsPerTurn)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // A load balancer's connection starts with the tuner's address (PROXY header).
                        if let peer = channel.remoteAddress?.ipAddress, configuration.proxyProtocolFrom.contains(peer) {
                            try channel.pipeline.syncOperations.addHandler(ProxyHeaderHandler(shared: context))
                        }
                        try channel.pipeline.syncOperations.addHandler(TunerChannelHandler(shared: context, connection: counter.next()))
                    }
                }
            let serverChannel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
            var metricsChannel: (any Channel)?
            if let metricsPort = configuration.metricsPort {
                metricsChannel = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(render: {
                                metrics.update {
                                    $0.archiveQueueDepth = archive.queueDepth
                                    $0.unauthenticatedConnections = context.admission.unauthenticatedCount
                                }
                                return metrics.render()
                            }))
                        }
                    }
                    .bind(host: configuration.metricsHost, port: metricsPort).get()
            }
            let server = TunerServer(configuration: configuration, metrics: metrics, group: group, serverChannel: serverChannel,
                                     metricsChannel: metricsChannel, context: context, store: store, nodeID: nodeID, logger: logger)
            server.startBackground(writer: writer)
            logger.info("ccr serve: listening for tuners", metadata: [
                "address": "\(configuration.host):\(server.port)",
                "metrics": "\(server.metricsPort.map { "\(configuration.metricsHost):\($0)" } ?? "off")",
                "archive": "\(configuration.archiveDirectory)",
                "store": "\(configuration.store.map { "\($0)" } ?? "none")",
                "password": "\(configuration.password == nil ? "none" : "required")",
            ])
            return server
        } catch {
            try? await group.shutdownGracefully()
            await archive.finish()
            throw error
        }
    }

    private init(configuration: ServerConfiguration, metrics: ServerMetrics, group: MultiThreadedEventLoopGroup, serverChannel: any Channel,
                 metricsChannel: (any Channel)?, context: ServerContext, store: (any CaptionStore)?, nodeID: Int64?, logger: Logger) {
        self.configuration = configuration
        self.metrics = metrics
        self.group = group
        self.serverChannel = serverChannel
        self.metricsChannel = metricsChannel
        self.context = context
        self.store = store
        self.nodeID = nodeID
        self.logger = logger
        self.port = serverChannel.localAddress?.port ?? configuration.port
        self.metricsPort = metricsChannel?.localAddress?.port
        self.background = Mutex([])
    }

    private func startBackground(writer: StoreWriter?) {
        var tasks: [Task<Void, Never>] = []
        if let writer {
            tasks.append(Task { await writer.run() })
        }
        if let store, let nodeID {
            let interval = configuration.heartbeatInterval
            let metrics = self.metrics
            let logger = self.logger
            tasks.append(Task {
                while !Task.isCancelled {
                    do {
                        try await store.heartbeat(nodeID: nodeID)
                    } catch {
                        logger.warning("heartbeat failed", metadata: ["error": "\(error)"])
                    }
                    let depth = await store.spoolDepth()
                    let queued = writer?.queuedCount ?? 0
                    metrics.update {
                        $0.spoolDepth = depth
                        $0.storeQueueDepth = queued
                    }
                    try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))
                }
            })
        }
        background.withLock { $0 = tasks }
    }

    /// Graceful stop (SIGTERM): stop accepting, close every tuner connection (each finishes its
    /// decoder and flushes its archive files), write what is queued for the archive and the
    /// store, close the store.
    public func shutdown() async {
        let first = stopped.withLock { s -> Bool in
            defer { s = true }
            return !s
        }
        guard first else { return }
        logger.info("ccr serve: shutting down", metadata: ["tuners": "\(context.registry.count)"])
        try? await serverChannel.close()
        if let metricsChannel { try? await metricsChannel.close() }
        for channel in context.registry.all {
            try? await channel.close()
        }
        await context.archive.finish()
        let tasks = background.withLock { $0 }
        // The heartbeat loop goes first; then the store writer drains its queue and ends.
        if tasks.count > 1 { tasks[1].cancel() }
        context.storeWriter?.finish()
        if let first = tasks.first { await first.value }
        if tasks.count > 1 { await tasks[1].value }
        if let store { await store.close() }
        try? await group.shutdownGracefully()
        logger.info("ccr serve: stopped")
    }
}

/// Numbers unique within the process: connections (logs, archive names, store keys) and programs (store keys).
final class ConnectionCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.wrappingAdd(1, ordering: .relaxed).newValue }
}
