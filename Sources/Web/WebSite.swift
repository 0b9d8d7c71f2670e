import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Store

/// The web UI and JSON API of the caption repository: routes, and what each one reads.
///
/// Read-only by construction: it only ever calls the store's read methods, and `ccr web` opens the
/// store read-only (cc_ro). Every store failure becomes a "database unreachable" answer (HTTP 503)
/// instead of an error trace; what failed, and where, goes to the log only. What one request may
/// cost is bounded by `WebLimits`: pages of lines, not whole programs, are held in memory.
public struct WebSite: Sendable {
    public let source: StoreSource
    public let feed: LiveFeed
    let archive: ArchiveLocator?
    let keepAliveSeconds: Int
    let limits: WebLimits
    let failures: FailureLog
    let fileIO = FileIO()

    public init(source: StoreSource, archiveDirectory: String?, livePollMilliseconds: Int = 200, keepAliveSeconds: Int = 15,
                limits: WebLimits = WebLimits(), logger: Logger = Logger(label: "ccr.web")) {
        self.source = source
        self.feed = LiveFeed(source: source, pollMilliseconds: livePollMilliseconds, keepAliveSeconds: keepAliveSeconds,
                             queueLimit: limits.liveQueue)
        self.archive = archiveDirectory.map { ArchiveLocator(root: $0) }
        self.keepAliveSeconds = keepAliveSeconds
        self.limits = limits
        self.failures = FailureLog(logger: logger)
    }

    /// Search results per page.
    static let pageSize = 50
    /// Lines of each live program shown on the home page before the feed speaks.
    static let homeLinesPerProgram = 8

    public func buildRouter() -> Router<WebRequestContext> {
        let router = Router(context: WebRequestContext.self)
        router.add(middleware: SecurityHeaders<WebRequestContext>())
        router.get("/") { _, _ in await page { try await self.home() } }
        router.get("/style.css") { _, _ in Self.staticFile(Pages.css, type: "text/css; charset=utf-8") }
        router.get(RouterPath(Pages.liveScriptPath)) { _, _ in Self.staticFile(Pages.liveScript, type: "text/javascript; charset=utf-8") }
        router.get("/archive") { request, _ in
            await page {
                try await self.archivePage(date: request.uri.queryParameters.get("date"), tuner: request.uri.queryParameters.get("tuner"))
            }
        }
        router.get("/programs/:id") { request, context in
            await page {
                try await self.programPage(id: context.parameters.get("id"), service: request.uri.queryParameters.get("service"))
            }
        }
        router.get("/programs/:id/:format") { request, context in
            await page {
                try await self.download(id: context.parameters.get("id"), format: context.parameters.get("format") ?? "",
                                        source: request.uri.queryParameters.get("source"),
                                        service: request.uri.queryParameters.get("service"), context: context)
            }
        }
        router.get("/search") { request, context in
            await page {
                let q = request.uri.queryParameters.get("q") ?? ""
                let offset = request.uri.queryParameters.get("offset").flatMap { Int($0) } ?? 0
                let service = request.uri.queryParameters.get("service")
                return try await context.untilClientLeaves { try await self.searchPage(query: q, offset: max(0, offset), service: service) }
            }
        }
        router.get("/live/events") { request, context in
            let tuner = request.uri.queryParameters.get("tuner").flatMap { Int64($0) }
            let resume = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int64($0) }
                ?? request.uri.queryParameters.get("after").flatMap { Int64($0) }
            return self.liveEvents(tunerID: tuner, after: resume, channel: context.channel)
        }
        let api = API(site: self)
        router.get("/api/tuners") { request, _ in await api.respond { try await api.tuners(all: request.uri.queryParameters.get("all")) } }
        router.get("/api/programs") { request, _ in
            await api.respond {
                try await api.programs(date: request.uri.queryParameters.get("date"), tuner: request.uri.queryParameters.get("tuner"),
                                       limit: request.uri.queryParameters.get("limit"), offset: request.uri.queryParameters.get("offset"))
            }
        }
        router.get("/api/programs/:id") { request, context in
            await api.respond {
                try await api.program(id: context.parameters.get("id"), service: request.uri.queryParameters.get("service"),
                                      after: request.uri.queryParameters.get("after"), limit: request.uri.queryParameters.get("limit"))
            }
        }
        router.get("/api/search") { request, context in
            await api.respond {
                try await context.untilClientLeaves {
                    try await api.search(query: request.uri.queryParameters.get("q"), tuner: request.uri.queryParameters.get("tuner"),
                                         service: request.uri.queryParameters.get("service"),
                                         limit: request.uri.queryParameters.get("limit"), offset: request.uri.queryParameters.get("offset"))
                }
            }
        }
        return router
    }

    static func staticFile(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: [.contentType: type, .cacheControl: "max-age=3600"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: Pages

    func home() async throws -> Response {
        let store = try await source.store()
        let cursor = try await store.liveCursorNow()
        let tuners = try await store.tuners(includeDisconnected: false)
        // The last lines of the newest current programs, so the page is not empty before the feed speaks.
        let programs = tuners.compactMap { $0.currentProgram?.id }.prefix(limits.homePrograms)
        let recent = try await store.recentLines(programIDs: Array(programs), perProgram: Self.homeLinesPerProgram, upTo: cursor.lastLineID)
        return html(Pages.home(tuners: tuners, recent: recent, cursor: cursor))
    }

    func archivePage(date: String?, tuner: String?) async throws -> Response {
        let store = try await source.store()
        let tunerID = tuner.flatMap { Int64($0) }
        let day: UTCDate?
        if let date, !date.isEmpty {
            guard let d = UTCDate(date) else { return html(Pages.notFound("`\(date)` is not a date (YYYY-MM-DD)."), status: .badRequest) }
            day = d
        } else {
            day = nil
        }
        let tuners = try await store.tuners(includeDisconnected: true)
        // Days with programs: derived from the newest programs (the store has no per-day index call).
        let recent = try await store.programs(ProgramQuery(tunerID: tunerID, limit: 1000))
        var days: [UTCDate] = []
        for p in recent {
            let d = UTCDate(milliseconds: p.startedAt)
            if days.last != d, !days.contains(d) { days.append(d) }
        }
        let programs: [ProgramSummary]
        if let day {
            programs = try await store.programs(ProgramQuery(tunerID: tunerID, startedFrom: day.startMilliseconds,
                                                             startedBefore: day.nextDayStartMilliseconds, limit: 1000))
        } else {
            programs = Array(recent.prefix(100))
        }
        return html(Pages.archive(day: day, days: Array(days.prefix(60)), tuners: tuners, tunerID: tunerID, programs: programs))
    }

    /// The whole transcript of one service (608 unless `?service=N`), streamed a page of lines
    /// at a time (every line keeps its `#lN` anchor on one page, for links from search results),
    /// under the choice of the program's services.
    func programPage(id: String?, service requested: String?) async throws -> Response {
        guard let id = id.flatMap({ Int64($0) }) else { return html(Pages.notFound("No such program."), status: .notFound) }
        guard let service = ServiceChoice.parse(requested) else { return html(Pages.badRequest(ServiceChoice.invalid), status: .badRequest) }
        let store = try await source.store()
        guard let program = try await store.program(id: id) else { return html(Pages.notFound("No such program."), status: .notFound) }
        let services = ServiceChoice.offered(try await store.lineCounts(programID: id))
        guard services.contains(where: { $0.service == service }) else {
            return html(Pages.notFound("This program has no \(ServiceChoice.label(service)) captions."), status: .notFound)
        }
        let pages = try await ProgramLinePages.start(store: store, programID: id, service: service, pageSize: limits.pageLines)
        let failures = self.failures
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody { writer in
            try await writer.write(ByteBuffer(string: Pages.programHead(program, service: service, services: services)))
            let complete = try await pages.forEach(failures: failures) { lines in
                try await writer.write(ByteBuffer(string: Pages.programLines(lines)))
            }
            try await writer.write(ByteBuffer(string: Pages.programFoot(complete: complete)))
            try await writer.finish(nil)
        })
    }

    /// `/programs/ID/srt|vtt|txt[?service=N]`. SRT comes from the archive's file when it can be
    /// found (the tuner server's own output, with styling tags: `.srt`, or `.svcN.srt` for a 708
    /// service), streamed from the disk; `?source=db` or a missing file uses the database,
    /// streamed a page of lines at a time. The `X-CCR-Source` header says which.
    func download(id: String?, format: String, source requested: String?, service requestedService: String?,
                  context: WebRequestContext) async throws -> Response {
        guard let id = id.flatMap({ Int64($0) }) else { return html(Pages.notFound("No such program."), status: .notFound) }
        guard let kind = TranscriptKind(rawValue: format) else { return html(Pages.notFound("Downloads are srt, vtt or txt."), status: .notFound) }
        guard let service = ServiceChoice.parse(requestedService) else {
            return html(Pages.badRequest(ServiceChoice.invalid), status: .badRequest)
        }
        let store = try await self.source.store()
        guard let program = try await store.program(id: id) else { return html(Pages.notFound("No such program."), status: .notFound) }
        let file = ServiceChoice.archiveFile(service)
        var headers: HTTPFields = [.contentType: kind.contentType,
                                   .contentDisposition: "attachment; filename=\"\(Self.fileStem(program))\(Self.serviceSuffix(service)).\(kind.rawValue)\""]
        let sourceHeader = HTTPField.Name("X-CCR-Source")!
        if kind == .srt, requested != "db", let archive, let path = archive.file(for: program, extension: file.fileExtension),
           let body = try? await fileIO.loadFile(path: path, context: context, chunkLength: 64 * 1024) {
            headers[sourceHeader] = "archive"
            return Response(status: .ok, headers: headers, body: body)
        }
        let pages = try await ProgramLinePages.start(store: store, programID: id, service: service, pageSize: limits.pageLines)
        // A 708 service with neither an archive file nor a line: not one this program has (an
        // empty 608 file stays a 200: the program exists, it has no captions yet).
        if service != CaptionService.cea608, pages.first.isEmpty {
            return html(Pages.notFound("This program has no \(ServiceChoice.label(service)) captions."), status: .notFound)
        }
        let failures = self.failures
        headers[sourceHeader] = "database"
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            var transcript = TranscriptStream(kind, padRows: service == CaptionService.cea608)
            try await writer.write(ByteBuffer(string: transcript.header))
            let complete = try await pages.forEach(failures: failures) { lines in
                try await writer.write(ByteBuffer(string: transcript.render(lines)))
            }
            // A download cut short must not look whole: the connection is closed without the last chunk.
            guard complete else { throw ResponseCutShort() }
            try await writer.finish(nil)
        })
    }

    /// `.svcN` for a 708 service's download, as the archive names its `.svcN.srt`.
    static func serviceSuffix(_ service: Int) -> String {
        service == CaptionService.cea608 ? "" : ".svc\(service)"
    }

    static func fileStem(_ p: ProgramSummary) -> String {
        let date = UTCDate.dateTime(p.startedAt).replacingSpaces()
        let name = p.name.map { String($0.map { $0.isLetter || $0.isNumber ? $0 : "-" }) } ?? "program"
        return "\(name)-\(date)"
    }

    /// Searches one service's captions (608 unless `service` names a 708 one): see `SearchQuery.service`.
    func searchPage(query: String, offset: Int, service requested: String?) async throws -> Response {
        let trimmed = query.trimmingSpaces()
        guard let service = ServiceChoice.parse(requested) else {
            return html(Pages.search(query: trimmed, service: CaptionService.cea608, hits: [], offset: 0, pageSize: Self.pageSize,
                                     error: ServiceChoice.invalid), status: .badRequest)
        }
        guard !trimmed.isEmpty else {
            return html(Pages.search(query: "", service: service, hits: [], offset: 0, pageSize: Self.pageSize, error: nil))
        }
        let store = try await source.store()
        do {
            let hits = try await store.search(SearchQuery(text: trimmed, service: service, limit: Self.pageSize, offset: offset))
            return html(Pages.search(query: trimmed, service: service, hits: hits, offset: offset, pageSize: Self.pageSize, error: nil))
        } catch StoreError.invalidArgument(let why) {
            return html(Pages.search(query: trimmed, service: service, hits: [], offset: 0, pageSize: Self.pageSize,
                                     error: "Cannot search for that: \(why)."), status: .badRequest)
        } catch StoreError.readLimited(let stop) where stop != .cancelled {
            var response = html(Pages.searchLimited(query: trimmed, service: service, busy: stop.isBusy), status: .serviceUnavailable)
            response.headers[.retryAfter] = "5"
            return response
        }
    }

    // MARK: Live feed

    /// Server-Sent Events: lines after `after` (the page's cursor, or Last-Event-ID on a
    /// reconnect) first, then every new line as the shared poller finds it. A viewer that falls
    /// `live_queue` events behind is dropped (its connection closed); every response ends after
    /// `live_max_seconds`, and EventSource reconnects and resumes either way.
    func liveEvents(tunerID: Int64?, after: Int64?, channel: any Channel) -> Response {
        let feed = self.feed
        let source = self.source
        let lifetime = Duration.milliseconds(Int64(limits.liveMaxSeconds * 1000))
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache",
                                   HTTPField.Name("X-Accel-Buffering")!: "no"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let (id, stream) = await feed.subscribe(tunerID: tunerID, onOverflow: { channel.abort() })
            let ends = ContinuousClock.now + lifetime
            do {
                try await writer.write(ByteBuffer(string: "retry: 2000\n: live captions\n\n"))
                if let after {
                    // Lines between the page's rendering and this subscription; the page skips repeats.
                    if let page = try? await source.store().liveLines(after: LiveCursor(lastLineID: after), tunerID: tunerID, limit: 500) {
                        for line in page.lines { try await writer.write(LiveFeed.encode(line)) }
                    }
                }
                // Keep-alive comments arrive every few seconds, so the lifetime is checked often enough.
                for await message in stream {
                    try await writer.write(message.event)
                    if ContinuousClock.now >= ends { break }
                }
            } catch {
                // The viewer went away.
            }
            await feed.unsubscribe(id)
            try? await writer.finish(nil)
        })
    }

    // MARK: Helpers

    func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// Runs a page handler; a failure becomes the 503 page (or 500), with the details logged only.
    func page(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch {
            switch failures.record(error) {
            case .unavailable, .clientGone: return html(Pages.unavailable(), status: .serviceUnavailable)
            case .internalError: return html(Pages.failure(), status: .internalServerError)
            }
        }
    }
}

/// Ends a streamed response without its final chunk, so that the client sees it is incomplete.
struct ResponseCutShort: Error {}

extension ReadStop {
    var isBusy: Bool {
        if case .busy = self { return true }
        return false
    }
}

/// A program's lines of one service read a page at a time (keyset on the sequence), the first
/// page before the response starts so that an unreachable database still gets its 503.
struct ProgramLinePages: Sendable {
    let store: any CaptionStore
    let programID: Int64
    let service: Int
    let pageSize: Int
    let first: [CaptionLine]

    static func start(store: any CaptionStore, programID: Int64, service: Int, pageSize: Int) async throws -> ProgramLinePages {
        let first = try await store.lines(programID: programID, service: service, afterSequence: nil, limit: pageSize)
        return ProgramLinePages(store: store, programID: programID, service: service, pageSize: pageSize, first: first)
    }

    /// Calls `body` with each page in order. False when a later page could not be read (the
    /// failure is logged): the caller ends its response so that it does not look complete.
    func forEach(failures: FailureLog, _ body: ([CaptionLine]) async throws -> Void) async throws -> Bool {
        var page = first
        while true {
            if !page.isEmpty { try await body(page) }
            guard page.count == pageSize, let last = page.last else { return true }
            do {
                page = try await store.lines(programID: programID, service: service, afterSequence: last.sequence, limit: pageSize)
            } catch {
                _ = failures.record(error)
                return false
            }
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        String(drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }

    func replacingSpaces() -> String {
        String(map { $0 == " " ? "T" : ($0 == ":" ? "-" : $0) })
    }
}
