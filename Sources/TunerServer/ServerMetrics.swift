import Synchronization

/// The server's counters, rendered in Prometheus' text format on `/metrics`.
///
/// Updated from every event loop; a mutex is enough (a few updates per read of a tuner's
/// ~200 bytes/s) and keeps the values consistent with each other in one scrape.
public final class ServerMetrics: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var connectedTuners = 0
        /// Connections not yet authenticated (set when rendered).
        public var unauthenticatedConnections = 0
        public var connectionsTotal = 0
        public var bytesReceived = 0
        public var recordsDecoded = 0
        public var captionLines = 0
        public var decodeErrors = 0
        public var closedByReason: [String: Int] = [:]
        public var wrongPasswords = 0
        public var connectionLimitRejections = 0
        /// Connections refused before they were read, by reason (locked-out, unauthenticated-limit, address-limit).
        public var refusedByReason: [String: Int] = [:]
        public var lockouts = 0
        public var storeDropped = 0
        public var archiveErrors = 0
        public var archiveQueueDepth = 0
        public var storeErrors = 0
        public var storeQueueDepth = 0
        public var spoolDepth = 0
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    public func update(_ body: (inout Snapshot) -> Void) {
        state.withLock { body(&$0) }
    }

    /// Prometheus text exposition format 0.0.4.
    public func render() -> String {
        let s = snapshot
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ value: Int) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        metric("ccr_connected_tuners", "gauge", "Tuners connected now.", s.connectedTuners)
        metric("ccr_unauthenticated_connections", "gauge", "Connections not yet authenticated now.", s.unauthenticatedConnections)
        metric("ccr_connections_total", "counter", "Tuner connections accepted.", s.connectionsTotal)
        metric("ccr_bytes_received_total", "counter", "Bytes received from tuners.", s.bytesReceived)
        metric("ccr_records_total", "counter", "RCWT records decoded.", s.recordsDecoded)
        metric("ccr_caption_lines_total", "counter", "Caption lines decoded.", s.captionLines)
        metric("ccr_decode_errors_total", "counter", "Connections closed for malformed data.", s.decodeErrors)
        metric("ccr_wrong_passwords_total", "counter", "Connections refused for a wrong password.", s.wrongPasswords)
        metric("ccr_connection_limit_rejections_total", "counter", "Connections refused at the connection limit.", s.connectionLimitRejections)
        metric("ccr_lockouts_total", "counter", "Addresses locked out after repeated wrong passwords.", s.lockouts)
        metric("ccr_store_dropped_total", "counter", "Caption lines and XDS items dropped because the store queue was full.", s.storeDropped)
        metric("ccr_archive_errors_total", "counter", "Failed archive writes.", s.archiveErrors)
        metric("ccr_archive_queue_depth", "gauge", "Archive writes queued for the writer threads.", s.archiveQueueDepth)
        metric("ccr_store_errors_total", "counter", "Failed store writes (not spooled).", s.storeErrors)
        metric("ccr_store_queue_depth", "gauge", "Store writes queued in memory.", s.storeQueueDepth)
        metric("ccr_spool_depth", "gauge", "Store writes waiting in the durable spool.", s.spoolDepth)
        out += "# HELP ccr_connections_closed_total Tuner connections closed, by reason.\n# TYPE ccr_connections_closed_total counter\n"
        for (reason, count) in s.closedByReason.sorted(by: { $0.key < $1.key }) {
            out += "ccr_connections_closed_total{reason=\"\(reason)\"} \(count)\n"
        }
        out += "# HELP ccr_connections_refused_total Connections refused before authentication, by reason.\n# TYPE ccr_connections_refused_total counter\n"
        for (reason, count) in s.refusedByReason.sorted(by: { $0.key < $1.key }) {
            out += "ccr_connections_refused_total{reason=\"\(reason)\"} \(count)\n"
        }
        return out
    }
}
