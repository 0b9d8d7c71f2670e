import Store
import ServerFiles

/// Every bound `ccr web` puts on what a visitor may cost it, each with its `[web]` key (the table
/// in docs/web.md, "Limits", lists them with their defaults).
///
/// Why: the site is public. Without these, 500 half-sent requests or 500 live viewers that never
/// read held their connections for good, a few searches stalled every page for minutes, and one
/// long program's page took hundreds of megabytes.
public struct WebLimits: Sendable, Hashable {
    /// `max_connections`: open connections; the next one is answered 503 and closed. Lowered at
    /// start to what the process's file limit (`ulimit -n`) leaves room for.
    public var maxConnections = 4096
    /// `header_timeout` (s): from connecting (or starting a request) to the end of the request.
    public var headerTimeoutSeconds: Double = 10
    /// `idle_timeout` (s): a kept-alive connection with no request in progress.
    public var idleTimeoutSeconds: Double = 60
    /// `write_timeout` (s): a response the client stops reading (its socket takes no data).
    public var writeTimeoutSeconds: Double = 30
    /// `live_queue` (feed updates, one per poll with all its new lines): a live viewer this far
    /// behind is dropped; its browser reconnects and resumes from the last line it got.
    public var liveQueue = 100
    /// `live_max_seconds` (s): a live feed response ends after this long, so that no proxy worker
    /// is held by one viewer for hours; EventSource reconnects and resumes.
    public var liveMaxSeconds: Double = 900
    /// `page_lines`: lines per page of `/api/programs/ID`, and per database read when a
    /// transcript or download is streamed.
    public var pageLines = 1000
    /// `home_programs`: live programs whose last lines the home page shows (8 lines each).
    public var homePrograms = 32
    /// `search_words`: words (all terms together) one search may have.
    public var searchWords = 32
    /// `search_readers`: database connections for searches (apart from those for pages).
    public var searchReaders = 2
    /// `search_queue`: searches that may wait for a search connection; more get 503 at once.
    public var searchQueue = 16
    /// `readers`: database connections for pages, the live feed and downloads.
    public var readers = 2
    /// `query_timeout` (s): how long one database statement may run.
    public var queryTimeoutSeconds: Double = 3

    public init() {}

    /// File descriptors kept for everything but visitors' sockets: database connections, archive
    /// files being served, the listening socket, logs.
    public static let reservedFileDescriptors = 64

    /// `maxConnections`, lowered so that connections and `reservedFileDescriptors` fit in
    /// `fileLimit` (the soft RLIMIT_NOFILE): a visitor past the cap gets 503 instead of the
    /// server failing to accept (or to open its database) for want of descriptors.
    public func connectionCap(fileLimit: Int) -> Int {
        max(1, min(maxConnections, fileLimit - Self.reservedFileDescriptors))
    }

    /// The store's read bounds.
    public var reads: ReadLimits {
        ReadLimits(readers: readers, searchReaders: searchReaders, searchQueue: searchQueue, searchWords: searchWords,
                   statementSeconds: queryTimeoutSeconds)
    }

    /// The `[web]` keys of the limits.
    static let keys: Set<String> = Set(settings.map(\.key))

    /// Each key, its range, and where it goes: one table, read by `load` and listed in the docs.
    private static let settings: [(key: String, range: ClosedRange<Double>, set: @Sendable (inout WebLimits, Double) -> Void)] = [
        ("max_connections", 1...1_000_000, { $0.maxConnections = Int($1) }),
        ("header_timeout", 0.1...3600, { $0.headerTimeoutSeconds = $1 }),
        ("idle_timeout", 0.1...3600, { $0.idleTimeoutSeconds = $1 }),
        ("write_timeout", 0.1...3600, { $0.writeTimeoutSeconds = $1 }),
        ("live_queue", 4...100_000, { $0.liveQueue = Int($1) }),
        ("live_max_seconds", 1...86_400, { $0.liveMaxSeconds = $1 }),
        ("page_lines", 10...100_000, { $0.pageLines = Int($1) }),
        ("home_programs", 0...10_000, { $0.homePrograms = Int($1) }),
        ("search_words", 1...100_000, { $0.searchWords = Int($1) }),
        ("search_readers", 0...64, { $0.searchReaders = Int($1) }),
        ("search_queue", 0...100_000, { $0.searchQueue = Int($1) }),
        ("readers", 1...64, { $0.readers = Int($1) }),
        ("query_timeout", 0.05...3600, { $0.queryTimeoutSeconds = $1 }),
    ]

    /// Reads the limits set in `[web]`; the others keep their defaults.
    static func load(_ ini: IniFile, source: String) throws -> WebLimits {
        var limits = WebLimits()
        for setting in settings {
            guard let entry = ini.entry("web", setting.key) else { continue }
            guard let value = Double(entry.value), setting.range.contains(value) else {
                throw IniError.badValue(source: source, line: entry.line, key: "web.\(setting.key)",
                                        "expected a number from \(setting.range.lowerBound) to \(setting.range.upperBound)")
            }
            setting.set(&limits, value)
        }
        return limits
    }
}
