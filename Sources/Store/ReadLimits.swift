import Synchronization

/// What one reader of the store (`ccr web`, open to anyone on the internet) may cost the database.
///
/// Why: one visitor's search must not stall every page. Cheap reads (pages, the live feed,
/// downloads) and searches run on separate connections, searches wait in a bounded queue, a search
/// has a bounded number of words, and every read statement has a time limit. The defaults keep the
/// single-reader behaviour `ccr serve` and the tools have always had; `ccr web` sets its own
/// (docs/web.md, "Limits").
public struct ReadLimits: Sendable, Hashable {
    /// Connections (each on its own thread) for everything but searches.
    public var readers: Int
    /// Connections for searches only; 0: searches share the `readers`.
    public var searchReaders: Int
    /// Searches that may wait for a search connection; the next is refused at once with
    /// `StoreError.readLimited(.busy)`.
    public var searchQueue: Int
    /// Words (tokens of all terms together) one search may have.
    public var searchWords: Int
    /// How long one read statement may run before it is stopped (nil: no limit). SQLite: a
    /// progress handler; MySQL/MariaDB: the session's max_execution_time / max_statement_time.
    public var statementSeconds: Double?

    public init(readers: Int = 1, searchReaders: Int = 0, searchQueue: Int = Int.max, searchWords: Int = Int.max,
                statementSeconds: Double? = nil) {
        self.readers = readers
        self.searchReaders = searchReaders
        self.searchQueue = searchQueue
        self.searchWords = searchWords
        self.statementSeconds = statementSeconds
    }
}

/// Why a read was stopped before it finished (`StoreError.readLimited`).
public enum ReadStop: Sendable, Hashable, CustomStringConvertible {
    /// The statement ran longer than `ReadLimits.statementSeconds`.
    case timeLimit(seconds: Double)
    /// The caller's task was cancelled (the visitor left).
    case cancelled
    /// Too many searches were already waiting.
    case busy(waiting: Int)

    public var description: String {
        switch self {
        case .timeLimit(let seconds): "the query ran longer than its limit of \(seconds) s"
        case .cancelled: "the query was cancelled (the client left)"
        case .busy(let waiting): "\(waiting) searches are already waiting"
        }
    }
}

/// One read's stop signal, checked between SQLite VM steps (from the connection's thread) and
/// set from any thread when the caller's task is cancelled.
final class ReadTicket: Sendable {
    private let cancelled = Atomic<Bool>(false)
    private let timeLimit: Duration?
    private let deadline = Mutex<ContinuousClock.Instant?>(nil)

    init(timeLimitSeconds: Double?) {
        timeLimit = timeLimitSeconds.map { .milliseconds(Int64(($0 * 1000).rounded())) }
    }

    /// Starts the clock: the limit counts from when the statement runs, not from when it queued.
    func begin() {
        if let timeLimit { deadline.withLock { $0 = .now + timeLimit } }
    }

    func cancel() { cancelled.store(true, ordering: .relaxed) }

    /// Why the read must stop now, or nil.
    var stop: ReadStop? {
        if cancelled.load(ordering: .relaxed) { return .cancelled }
        if let end = deadline.withLock({ $0 }), ContinuousClock.now >= end, let timeLimit {
            return .timeLimit(seconds: Double(timeLimit.components.seconds) + Double(timeLimit.components.attoseconds) / 1e18)
        }
        return nil
    }
}

/// Several `DatabaseThread`s, each with its own connection, serving one kind of read. A job goes
/// to the thread with the fewest jobs; `capacity` bounds the jobs queued or running.
final class ReaderPool: Sendable {
    private let threads: [DatabaseThread]
    private let load: Mutex<[Int]>
    private let capacity: Int

    init(name: String, count: Int, capacity: Int, connect: @escaping @Sendable () throws -> DatabaseConnection) {
        let count = max(1, count)
        threads = (0..<count).map { DatabaseThread(name: "\(name)-\($0)", connect: connect) }
        load = Mutex([Int](repeating: 0, count: count))
        self.capacity = capacity
    }

    /// Runs `body` on a free (or the least busy) connection; stops it when `ticket` says so, and
    /// cancels it (through the ticket) when the calling task is cancelled.
    func run<T: Sendable>(ticket: ReadTicket, _ body: @escaping @Sendable (DatabaseConnection) throws -> T) async throws -> T {
        let picked: Int? = load.withLock { load in
            guard load.reduce(0, +) < capacity, let index = load.indices.min(by: { load[$0] < load[$1] }) else { return nil }
            load[index] += 1
            return index
        }
        guard let index = picked else { throw StoreError.readLimited(.busy(waiting: capacity - threads.count)) }
        defer { load.withLock { $0[index] -= 1 } }
        return try await withTaskCancellationHandler {
            try await threads[index].run { connection in
                if let stop = ticket.stop { throw StoreError.readLimited(stop) }
                ticket.begin()
                return try connection.interruptible(by: ticket) { try body(connection) }
            }
        } onCancel: {
            ticket.cancel()
        }
    }

    func stop() async {
        for thread in threads { await thread.stop() }
    }
}
