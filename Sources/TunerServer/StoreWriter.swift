import Logging
import Store
import Synchronization

/// What the tuner connections ask the store to record, keyed by this process's own connection
/// and program numbers (the store's ids arrive later, asynchronously).
enum StoreCommand: Sendable {
    case connected(connection: Int, TunerConnection)
    case disconnected(connection: Int, at: Int64)
    case programStarted(connection: Int, program: Int, at: Int64, name: String?)
    case programRenamed(program: Int, name: String)
    case programEnded(program: Int, at: Int64)
    case line(connection: Int, program: Int, service: Int, startMs: Int64, endMs: Int64, mode: String, text: String, capturedAt: Int64)
    case xds(connection: Int, program: Int, atMs: Int64, kind: String, value: String)
}

/// Feeds the store from the event loops without ever blocking them.
///
/// Event loops append commands to a queue (a mutex-protected array); one task drains it in
/// order, so each tuner's commands reach the store in the order they happened, and runs of
/// caption lines become one `appendLines` transaction. The store itself spools during a
/// database outage, so the queue only holds what arrived since the last drain.
///
/// Under load, transactions are grouped (`CommitPacer`).
final class StoreWriter: Sendable {
    /// A queue this long is written without waiting for the pacer.
    static let fullGroup = 2_000

    private let store: any CaptionStore
    private let logger: Logger
    private let metrics: ServerMetrics
    private let queue = Mutex<[StoreCommand]>([])
    private let wakeup: AsyncStream<Void>.Continuation
    private let signals: AsyncStream<Void>
    private let ids = Mutex(IDs())
    /// Lines and XDS items queued at most (`[limits] store_queue`); program and tuner events are
    /// always queued (a few per tuner), so the store's picture of who is connected stays right.
    private let queueLimit: Int
    /// True from the first dropped item until the queue is half empty again (one log line per episode).
    private let dropping = Atomic<Bool>(false)
    /// When a store error was last logged, and how many were not logged since.
    private let errorLog = Mutex<(last: ContinuousClock.Instant?, suppressed: Int)>((nil, 0))

    private struct IDs {
        var tuners: [Int: Int64] = [:]
        var programs: [Int: Int64] = [:]
    }

    let nodeID: Int64

    init(store: any CaptionStore, nodeID: Int64, logger: Logger, metrics: ServerMetrics, queueLimit: Int = TunerLimits().storeQueue) {
        self.queueLimit = queueLimit
        self.store = store
        self.nodeID = nodeID
        self.logger = logger
        self.metrics = metrics
        (signals, wakeup) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Called on event loops: O(1), no await.
    func enqueue(_ command: StoreCommand) {
        let droppable: Bool
        switch command {
        case .line, .xds: droppable = true
        default: droppable = false
        }
        let depth = queue.withLock { q -> Int? in
            if droppable && q.count >= queueLimit { return nil }
            q.append(command)
            return q.count
        }
        guard let depth else {
            metrics.update { $0.storeDropped += 1 }
            if !dropping.exchange(true, ordering: .relaxed) {
                logger.error("store queue full (\(queueLimit) items, [limits] store_queue): dropping caption lines until the database catches up; the archive keeps them")
            }
            return
        }
        if depth == 1 { wakeup.yield() }
    }

    /// Commands waiting in memory (a metric).
    var queuedCount: Int { queue.withLock { $0.count } }

    /// Stops taking new wakeups; `run()` returns after writing what is queued.
    func finish() { wakeup.finish() }

    /// The drain loop; run it in a task for the server's lifetime.
    func run() async {
        var pacer = CommitPacer()
        for await _ in signals {
            await drain(&pacer)
        }
        await drain(&pacer)
    }

    private func drain(_ pacer: inout CommitPacer) async {
        while true {
            if let due = pacer.nextStart, ContinuousClock.now < due, queuedCount < Self.fullGroup {
                try? await Task.sleep(until: due, clock: .continuous)
            }
            let batch = queue.withLock { q -> [StoreCommand] in
                let taken = q
                q = []
                return taken
            }
            if batch.count < queueLimit / 2, dropping.exchange(false, ordering: .relaxed) {
                logger.notice("store queue below half of its limit again: caption lines are stored again")
            }
            if batch.isEmpty { return }
            let start = ContinuousClock.now
            defer { pacer.wrote(from: start, to: .now) }
            var lines: [CaptionLineInput] = []
            var xds: [XDSItemInput] = []
            for command in batch {
                switch command {
                case .line(let c, let p, let service, let s, let e, let mode, let text, let at):
                    guard let tuner = tunerID(c), let program = programID(p) else { continue }
                    lines.append(CaptionLineInput(programID: program, tunerID: tuner, service: service, startMs: s, endMs: e, mode: mode,
                                                  text: text, capturedAt: at))
                case .xds(let c, let p, let at, let kind, let value):
                    guard let tuner = tunerID(c), let program = programID(p) else { continue }
                    xds.append(XDSItemInput(programID: program, tunerID: tuner, atMs: at, kind: kind, value: value))
                default:
                    // Keep order: what was batched so far goes first.
                    await flush(&lines, &xds)
                    await execute(command)
                }
            }
            await flush(&lines, &xds)
        }
    }

    private func flush(_ lines: inout [CaptionLineInput], _ xds: inout [XDSItemInput]) async {
        if !lines.isEmpty {
            await attempt("append \(lines.count) caption lines") { try await store.appendLines(lines) }
            lines = []
        }
        if !xds.isEmpty {
            await attempt("record \(xds.count) XDS items") { try await store.recordXDS(xds) }
            xds = []
        }
    }

    private func tunerID(_ connection: Int) -> Int64? { ids.withLock { $0.tuners[connection] } }
    private func programID(_ program: Int) -> Int64? { ids.withLock { $0.programs[program] } }

    private func execute(_ command: StoreCommand) async {
        switch command {
        case .connected(let c, var connection):
            connection.nodeID = nodeID
            let snapshot = connection
            if let id = await attempt("record tuner connection", { try await store.tunerConnected(snapshot) }) {
                ids.withLock { $0.tuners[c] = id }
            }
        case .disconnected(let c, let at):
            guard let tuner = ids.withLock({ $0.tuners.removeValue(forKey: c) }) else { return }
            await attempt("record tuner disconnection") { try await store.tunerDisconnected(tunerID: tuner, at: at) }
        case .programStarted(let c, let p, let at, let name):
            guard let tuner = tunerID(c) else { return }
            if let id = await attempt("record program start", { try await store.programStarted(tunerID: tuner, startedAt: at, name: name) }) {
                ids.withLock { $0.programs[p] = id }
            }
        case .programRenamed(let p, let name):
            guard let program = programID(p) else { return }
            await attempt("record program name") { try await store.programRenamed(programID: program, name: name) }
        case .programEnded(let p, let at):
            guard let program = ids.withLock({ $0.programs.removeValue(forKey: p) }) else { return }
            await attempt("record program end") { try await store.programEnded(programID: program, endedAt: at) }
        case .line, .xds:
            break
        }
    }

    @discardableResult
    private func attempt<T: Sendable>(_ what: String, _ body: () async throws -> T) async -> T? {
        do {
            return try await body()
        } catch {
            metrics.update { $0.storeErrors += 1 }
            // At most one line a second: a full spool or a lost grant fails every batch.
            let suppressed = errorLog.withLock { state -> Int? in
                let now = ContinuousClock.now
                if let last = state.last, now - last < .seconds(1) {
                    state.suppressed += 1
                    return nil
                }
                defer { state = (now, 0) }
                return state.suppressed
            }
            if let suppressed {
                logger.error("store: cannot \(what)", metadata: ["error": "\(error)", "similar_errors_suppressed": "\(suppressed)"])
            }
            return nil
        }
    }
}

/// Group commit, only under load. Taken as they came, 10,000 tuners made ~2,900 transactions a
/// second of under 3 lines each, and every one wrote the same table, index and full-text pages
/// to the WAL again (most of what the store cost). When the writer was busy more than
/// `busyShareOn` of the last `window`, each transaction waits until `spacing` after the previous
/// one began, so the lines that arrive meanwhile share it; below `busyShareOff` lines are written
/// at once again (a quiet server adds no wait to the live feed).
struct CommitPacer: Sendable {
    var spacing = Duration.milliseconds(10)
    var window = Duration.milliseconds(100)
    var busyShareOn = 0.25
    var busyShareOff = 0.05
    private(set) var grouping = false
    private var windowStart: ContinuousClock.Instant?
    private var busy = Duration.zero
    private var lastStart: ContinuousClock.Instant?

    /// When the next transaction may begin (nil: at once).
    var nextStart: ContinuousClock.Instant? { grouping ? lastStart.map { $0 + spacing } : nil }

    /// Notes a transaction (or a run of them) from `start` to `end`.
    mutating func wrote(from start: ContinuousClock.Instant, to end: ContinuousClock.Instant) {
        lastStart = start
        let since = windowStart ?? start
        windowStart = since
        busy += end - start
        let elapsed = end - since
        guard elapsed >= window else { return }
        let share = busy / elapsed
        if share > busyShareOn { grouping = true } else if share < busyShareOff { grouping = false }
        windowStart = end
        busy = .zero
    }
}
