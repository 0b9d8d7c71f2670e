import HTTPTypes
import Hummingbird
import NIOCore
import Store

/// The web UI and JSON API of the caption repository: routes, and what each one reads.
///
/// Read-only by construction: it only ever calls the store's read methods, and `ccr web` opens the
/// store read-only (cc_ro). Every store failure becomes a "database unreachable" answer (HTTP 503)
/// instead of an error trace.
public struct WebSite: Sendable {
    public let source: StoreSource
    public let feed: LiveFeed
    let archive: ArchiveLocator?
    let keepAliveSeconds: Int

    public init(source: StoreSource, archiveDirectory: String?, livePollMilliseconds: Int = 200, keepAliveSeconds: Int = 15) {
        self.source = source
        self.feed = LiveFeed(source: source, pollMilliseconds: livePollMilliseconds, keepAliveSeconds: keepAliveSeconds)
        self.archive = archiveDirectory.map { ArchiveLocator(root: $0) }
        self.keepAliveSeconds = keepAliveSeconds
    }

    /// Search results per page.
    static let pageSize = 50

    public func buildRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.get("/") { _, _ in await page { try await self.home() } }
        router.get("/style.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(string: Pages.css)))
        }
        router.get("/archive") { request, _ in
            await page {
                try await self.archivePage(date: request.uri.queryParameters.get("date"), tuner: request.uri.queryParameters.get("tuner"))
            }
        }
        router.get("/programs/:id") { _, context in
            await page { try await self.programPage(id: context.parameters.get("id")) }
        }
        router.get("/programs/:id/:format") { request, context in
            await page {
                try await self.download(id: context.parameters.get("id"), format: context.parameters.get("format") ?? "",
                                        source: request.uri.queryParameters.get("source"))
            }
        }
        router.get("/search") { request, _ in
            await page {
                let q = request.uri.queryParameters.get("q") ?? ""
                let offset = request.uri.queryParameters.get("offset").flatMap { Int($0) } ?? 0
                return try await self.searchPage(query: q, offset: max(0, offset))
            }
        }
        router.get("/live/events") { request, _ in
            let tuner = request.uri.queryParameters.get("tuner").flatMap { Int64($0) }
            let resume = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int64($0) }
                ?? request.uri.queryParameters.get("after").flatMap { Int64($0) }
            return self.liveEvents(tunerID: tuner, after: resume)
        }
        let api = API(site: self)
        router.get("/api/tuners") { request, _ in await api.respond { try await api.tuners(all: request.uri.queryParameters.get("all")) } }
        router.get("/api/programs") { request, _ in
            await api.respond {
                try await api.programs(date: request.uri.queryParameters.get("date"), tuner: request.uri.queryParameters.get("tuner"),
                                       limit: request.uri.queryParameters.get("limit"), offset: request.uri.queryParameters.get("offset"))
            }
        }
        router.get("/api/programs/:id") { _, context in await api.respond { try await api.program(id: context.parameters.get("id")) } }
        router.get("/api/search") { request, _ in
            await api.respond {
                try await api.search(query: request.uri.queryParameters.get("q"), tuner: request.uri.queryParameters.get("tuner"),
                                     limit: request.uri.queryParameters.get("limit"), offset: request.uri.queryParameters.get("offset"))
            }
        }
        return router
    }

    // MARK: Pages

    func home() async throws -> Response {
        let store = try await source.store()
        let cursor = try await store.liveCursorNow()
        let tuners = try await store.tuners(includeDisconnected: false)
        var recent: [CaptionLine] = []
        for t in tuners {
            guard let p = t.currentProgram else { continue }
            // The last lines of each current program, so the page is not empty before the feed speaks.
            recent += try await store.lines(programID: p.id).suffix(8).filter { $0.id <= cursor.lastLineID }
        }
        recent.sort { $0.id < $1.id }
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

    func programPage(id: String?) async throws -> Response {
        guard let id = id.flatMap({ Int64($0) }) else { return html(Pages.notFound("No such program."), status: .notFound) }
        let store = try await source.store()
        guard let program = try await store.program(id: id) else { return html(Pages.notFound("No such program."), status: .notFound) }
        let lines = try await store.lines(programID: id)
        return html(Pages.program(program, lines: lines))
    }

    /// `/programs/ID/srt|vtt|txt`. SRT comes from the archive's file when it can be found (the
    /// tuner server's own output, with styling tags); `?source=db` or a missing file uses the
    /// database. The `X-CCR-Source` header says which.
    func download(id: String?, format: String, source requested: String?) async throws -> Response {
        guard let id = id.flatMap({ Int64($0) }) else { return html(Pages.notFound("No such program."), status: .notFound) }
        let kinds: [String: (contentType: String, ext: String)] = [
            "srt": ("application/x-subrip; charset=utf-8", "srt"),
            "vtt": ("text/vtt; charset=utf-8", "vtt"),
            "txt": ("text/plain; charset=utf-8", "txt"),
        ]
        guard let kind = kinds[format] else { return html(Pages.notFound("Downloads are srt, vtt or txt."), status: .notFound) }
        let store = try await self.source.store()
        guard let program = try await store.program(id: id) else { return html(Pages.notFound("No such program."), status: .notFound) }
        let filename = "\(Self.fileStem(program)).\(kind.ext)"
        var headers: HTTPFields = [.contentType: kind.contentType,
                                   .contentDisposition: "attachment; filename=\"\(filename)\""]
        if format == "srt", requested != "db", let archive, let path = archive.file(for: program, extension: "srt"), let bytes = ArchiveLocator.read(path) {
            headers[HTTPField.Name("X-CCR-Source")!] = "archive"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        let lines = try await store.lines(programID: id)
        let text: String
        switch kind.ext {
        case "srt": text = TranscriptRenderer.srt(lines)
        case "vtt": text = TranscriptRenderer.vtt(lines)
        default: text = TranscriptRenderer.txt(lines)
        }
        headers[HTTPField.Name("X-CCR-Source")!] = "database"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    static func fileStem(_ p: ProgramSummary) -> String {
        let date = UTCDate.dateTime(p.startedAt).replacingSpaces()
        let name = p.name.map { String($0.map { $0.isLetter || $0.isNumber ? $0 : "-" }) } ?? "program"
        return "\(name)-\(date)"
    }

    func searchPage(query: String, offset: Int) async throws -> Response {
        let trimmed = query.trimmingSpaces()
        guard !trimmed.isEmpty else { return html(Pages.search(query: "", hits: [], offset: 0, pageSize: Self.pageSize, error: nil)) }
        let store = try await source.store()
        do {
            let hits = try await store.search(SearchQuery(text: trimmed, limit: Self.pageSize, offset: offset))
            return html(Pages.search(query: trimmed, hits: hits, offset: offset, pageSize: Self.pageSize, error: nil))
        } catch StoreError.invalidArgument(let why) {
            return html(Pages.search(query: trimmed, hits: [], offset: 0, pageSize: Self.pageSize, error: "Cannot search for that: \(why)."), status: .badRequest)
        }
    }

    // MARK: Live feed

    /// Server-Sent Events: lines after `after` (the page's cursor, or Last-Event-ID on a
    /// reconnect) first, then every new line as the shared poller finds it.
    func liveEvents(tunerID: Int64?, after: Int64?) -> Response {
        let feed = self.feed
        let source = self.source
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache",
                                   HTTPField.Name("X-Accel-Buffering")!: "no"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let (id, stream) = await feed.subscribe(tunerID: tunerID)
            do {
                try await writer.write(ByteBuffer(string: "retry: 2000\n: live captions\n\n"))
                if let after {
                    // Lines between the page's rendering and this subscription; the page skips repeats.
                    if let page = try? await source.store().liveLines(after: LiveCursor(lastLineID: after), tunerID: tunerID, limit: 500) {
                        for line in page.lines { try await writer.write(LiveFeed.encode(line)) }
                    }
                }
                for await message in stream {
                    try await writer.write(message.event)
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

    /// Runs a page handler; a store failure becomes the 503 page.
    func page(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as StoreError {
            switch error {
            case .unreachable, .authenticationFailed, .permissionDenied, .schemaOutdated, .closed, .database:
                return html(Pages.unavailable(error.description), status: .serviceUnavailable)
            default:
                return html(Pages.failure(error.description), status: .internalServerError)
            }
        } catch {
            return html(Pages.unavailable("\(error)"), status: .serviceUnavailable)
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
