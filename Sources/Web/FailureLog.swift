import Logging
import Store
import Synchronization

/// Where a failed request's details go: the log, never the page (issue #16: the 503 page and the
/// API showed the database's path, user, host and server message to anyone).
///
/// Why throttled: during an outage every request fails the same way; one line per kind every
/// `interval`, with the count of those not logged, says as much without flooding the log.
final class FailureLog: Sendable {
    /// What a failure means for the visitor.
    enum Kind: Sendable {
        /// The database cannot be read: 503.
        case unavailable
        /// The visitor left (its request was cancelled): nobody reads the answer.
        case clientGone
        /// Anything else: 500.
        case internalError
    }

    private let logger: Logger
    private let interval: Duration
    private let state = Mutex<(last: ContinuousClock.Instant?, suppressed: Int)>((nil, 0))

    init(logger: Logger, interval: Duration = .seconds(10)) {
        self.logger = logger
        self.interval = interval
    }

    static func kind(of error: any Error) -> Kind {
        if error is CancellationError { return .clientGone }
        guard let error = error as? StoreError else { return .unavailable }
        switch error {
        case .readLimited(.cancelled): return .clientGone
        case .unreachable, .authenticationFailed, .authenticationPluginMissing, .permissionDenied, .schemaOutdated, .closed, .database,
             .readLimited: return .unavailable
        case .spool, .readOnly, .invalidArgument: return .internalError
        }
    }

    /// Logs `error` (throttled) and says how to answer it.
    @discardableResult
    func record(_ error: any Error) -> Kind {
        let kind = Self.kind(of: error)
        guard kind != .clientGone else { return kind }
        let now = ContinuousClock.now
        let suppressed: Int? = state.withLock { state in
            if let last = state.last, now - last < interval {
                state.suppressed += 1
                return nil
            }
            defer { state = (now, 0) }
            return state.suppressed
        }
        if let suppressed {
            let more = suppressed > 0 ? " (\(suppressed) similar failures not logged since the last one)" : ""
            logger.error("request failed: \(error)\(more)")
        }
        return kind
    }
}
