import Captions
import NIOCore
import Store

/// One message for live viewers, already encoded as Server-Sent Events (encoded once, written
/// to every viewer): the new lines of one poll, or a status or keep-alive.
public struct LiveMessage: Sendable {
    /// The tuner whose lines these are; nil for all tuners' lines and for messages meant for everyone.
    public let tunerID: Int64?
    public let event: ByteBuffer
}

/// The live caption feed of this web process: ONE task polls the store's live cursor and fans the
/// new lines out to every connected viewer.
///
/// Why one poller: the database is shared by several repo nodes (writers) and several web nodes
/// (readers), so live lines must come from it, and polling is what works through any database and
/// load balancer. Polling per viewer would cost 5 queries/s per viewer (5,000/s for 1,000 viewers);
/// one poller costs 5 queries/s per web process whatever the audience. The poller runs only while
/// someone watches.
public actor LiveFeed {
    private let source: StoreSource
    private let interval: Duration
    private var subscribers: [Int: Subscriber] = [:]
    private var nextID = 0
    private var poller: Task<Void, Never>?
    private var cursor: LiveCursor?
    private var databaseDown = false

    private struct Subscriber {
        let tunerID: Int64?
        let continuation: AsyncStream<LiveMessage>.Continuation
        /// Called when the viewer is dropped for falling `queueLimit` messages behind.
        let onOverflow: @Sendable () -> Void
    }

    private let queueLimit: Int
    /// Viewers dropped for not reading (for tests and the log).
    public private(set) var droppedViewers = 0

    private let keepAlive: Duration
    private var lastKeepAlive = ContinuousClock.now

    public init(source: StoreSource, pollMilliseconds: Int, keepAliveSeconds: Int = 15, queueLimit: Int = 100) {
        self.source = source
        self.queueLimit = max(1, queueLimit)
        self.interval = .milliseconds(pollMilliseconds)
        self.keepAlive = .seconds(keepAliveSeconds)
    }

    /// Viewers connected now (for tests and the benchmark).
    public var viewerCount: Int { subscribers.count }

    /// Whether the poller has taken its starting cursor: lines written from now on reach the
    /// viewers (tests wait for it rather than for a fixed time, which a loaded machine outlasts).
    var isFollowing: Bool { cursor != nil }

    /// A stream of messages for one viewer (all tuners, or one). Ends when `unsubscribe` is called.
    /// Buffers at most `queueLimit` messages per viewer: a viewer that falls further behind (it
    /// does not read) is dropped, its stream ended and `onOverflow` called (which closes its
    /// connection), so it never slows the others nor holds memory; its browser reconnects and
    /// resumes after the last line it got.
    public func subscribe(tunerID: Int64?, onOverflow: @escaping @Sendable () -> Void = {}) -> (id: Int, stream: AsyncStream<LiveMessage>) {
        let (stream, continuation) = AsyncStream<LiveMessage>.makeStream(bufferingPolicy: .bufferingOldest(queueLimit))
        let id = nextID
        nextID += 1
        subscribers[id] = Subscriber(tunerID: tunerID, continuation: continuation, onOverflow: onOverflow)
        if databaseDown { continuation.yield(Self.status(up: false)) }
        if poller == nil {
            poller = Task { [weak self] in await self?.pollLoop() }
        }
        return (id, stream)
    }

    public func unsubscribe(_ id: Int) {
        subscribers.removeValue(forKey: id)?.continuation.finish()
        if subscribers.isEmpty {
            poller?.cancel()
            poller = nil
            cursor = nil
        }
    }

    /// Stops the poller and ends every viewer's stream (server shutdown).
    public func shutdown() {
        poller?.cancel()
        poller = nil
        for s in subscribers.values { s.continuation.finish() }
        subscribers = [:]
    }

    private func pollLoop() async {
        while !Task.isCancelled {
            await pollOnce()
            if ContinuousClock.now - lastKeepAlive >= keepAlive {
                // A comment keeps proxies from closing an idle feed, and reveals viewers that left.
                lastKeepAlive = ContinuousClock.now
                broadcast(LiveMessage(tunerID: nil, event: ByteBuffer(string: ": keep-alive\n\n")))
            }
            try? await Task.sleep(for: interval)
        }
    }

    private func pollOnce() async {
        do {
            let store = try await source.store()
            if cursor == nil {
                // A viewer sees lines decoded from the moment the feed started; the page shows
                // earlier lines itself.
                cursor = try await store.liveCursorNow()
            }
            var page = try await store.liveLines(after: cursor!, tunerID: nil, limit: 500)
            while true {
                if !page.lines.isEmpty { deliver(page.lines) }
                cursor = page.next
                guard page.hasMore, !Task.isCancelled else { break }
                page = try await store.liveLines(after: cursor!, tunerID: nil, limit: 500)
            }
            if databaseDown {
                databaseDown = false
                broadcast(Self.status(up: true))
            }
        } catch {
            if !databaseDown {
                databaseDown = true
                broadcast(Self.status(up: false))
            }
        }
    }

    /// One message per viewer per poll, whatever the number of lines: a viewer's queue counts
    /// polls it is behind, and a page of 500 lines is one write, not 500.
    private func deliver(_ lines: [CaptionLine]) {
        var all = ByteBuffer()
        var byTuner: [Int64: ByteBuffer] = [:]
        let wanted = Set(subscribers.values.compactMap(\.tunerID))
        for line in lines {
            var event = Self.encode(line)
            if wanted.contains(line.tunerID) { _ = byTuner[line.tunerID, default: ByteBuffer()].writeImmutableBuffer(event) }
            all.writeBuffer(&event)
        }
        let everyone = LiveMessage(tunerID: nil, event: all)
        for (id, s) in subscribers {
            if let tuner = s.tunerID {
                if let events = byTuner[tuner] { send(LiveMessage(tunerID: tuner, event: events), to: id, s) }
            } else {
                send(everyone, to: id, s)
            }
        }
    }

    private func broadcast(_ message: LiveMessage) {
        for (id, s) in subscribers { send(message, to: id, s) }
    }

    private func send(_ message: LiveMessage, to id: Int, _ subscriber: Subscriber) {
        if case .dropped = subscriber.continuation.yield(message) {
            droppedViewers += 1
            subscribers.removeValue(forKey: id)
            subscriber.continuation.finish()
            subscriber.onOverflow()
        }
    }

    /// `event: line` with the line as JSON; `id:` lets EventSource resume with Last-Event-ID.
    static func encode(_ line: CaptionLine) -> ByteBuffer {
        let json = JSONText.object([
            ("id", .string(String(line.id))),
            ("tuner", .string(String(line.tunerID))),
            ("program", .string(String(line.programID))),
            ("sequence", .int(Int64(line.sequence))),
            ("start", .string(CaptionTime.format(line.startMs))),
            ("startMs", .int(line.startMs)),
            ("text", .string(line.text)),
            ("capturedAt", .int(line.capturedAt)),
        ])
        return ByteBuffer(string: "id: \(line.id)\nevent: line\ndata: \(json)\n\n")
    }

    static func status(up: Bool) -> LiveMessage {
        LiveMessage(tunerID: nil, event: ByteBuffer(string: "event: status\ndata: {\"database\":\"\(up ? "ok" : "unreachable")\"}\n\n"))
    }
}
