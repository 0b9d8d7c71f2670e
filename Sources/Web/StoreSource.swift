import Store

/// Hands out the read-only store, opening it on first use and again after a failed open.
///
/// Why lazily: the web must start, and say "database unreachable" (HTTP 503), even when the
/// database is down or `ccr serve` has not created the SQLite file yet; once it can be opened,
/// pages work again without restarting `ccr web`.
public actor StoreSource {
    private let open: @Sendable () async throws -> any CaptionStore
    private let retryAfter: Duration
    private var current: (any CaptionStore)?
    private var lastFailure: (error: any Error, at: ContinuousClock.Instant)?
    private var opening: Task<any CaptionStore, any Error>?

    /// A source that opens `configuration` read-only (no spool: the web never writes), with the
    /// read bounds `reads` (connections, search words and queue, statement time).
    public init(configuration: StoreConfiguration, timeoutSeconds: Double = 3, retrySeconds: Double = 2, reads: ReadLimits = ReadLimits()) {
        var readOnly = StoreOptions(spoolDirectory: nil, readOnly: true, timeoutSeconds: timeoutSeconds)
        readOnly.reads = reads
        let options = readOnly
        self.open = { try await openStore(configuration, options: options) }
        self.retryAfter = .milliseconds(Int64(retrySeconds * 1000))
    }

    /// A source around a store that is already open (tests, embedding).
    public init(store: any CaptionStore) {
        self.open = { store }
        self.current = store
        self.retryAfter = .seconds(0)
    }

    /// The store, or the error that kept it from opening (recent failures are not retried at
    /// once, so a down database does not get a connection attempt per request).
    public func store() async throws -> any CaptionStore {
        if let current { return current }
        if let lastFailure, ContinuousClock.now - lastFailure.at < retryAfter { throw lastFailure.error }
        if let opening { return try await opening.value }
        let task = Task { try await open() }
        opening = task
        defer { opening = nil }
        do {
            let store = try await task.value
            current = store
            lastFailure = nil
            return store
        } catch {
            lastFailure = (error, ContinuousClock.now)
            throw error
        }
    }

    public func close() async {
        await current?.close()
        current = nil
    }
}
