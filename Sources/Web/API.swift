import Captions
import HTTPTypes
import Hummingbird
import NIOCore
import Store

/// The JSON API beside the pages (documented in docs/web.md). Ids are strings: they are 63-bit
/// and JavaScript numbers stop at 2^53. Wall-clock times are ISO 8601 UTC, stream times both as
/// SRT text and milliseconds.
struct API: Sendable {
    let site: WebSite

    struct Failure: Error {
        let status: HTTPResponse.Status
        let message: String
    }

    /// Runs an endpoint. Failures are answered with a fixed message: what failed, and where (the
    /// database's path, user, host or message), goes to the log only.
    func respond(_ body: () async throws -> JSONText) async -> Response {
        do {
            return json(try await body())
        } catch let failure as Failure {
            return json(.object([("error", .string(failure.message))]), status: failure.status)
        } catch StoreError.invalidArgument(let why) {
            return json(.object([("error", .string(why))]), status: .badRequest)
        } catch StoreError.readLimited(let stop) where stop != .cancelled {
            var response = json(.object([("error", .string(stop.isBusy ? "too many searches at once; try again" : "the query takes too long; try fewer or rarer words"))]),
                                status: .serviceUnavailable)
            response.headers[.retryAfter] = "5"
            return response
        } catch {
            switch site.failures.record(error) {
            case .unavailable, .clientGone:
                return json(.object([("error", .string("database unreachable"))]), status: .serviceUnavailable)
            case .internalError:
                return json(.object([("error", .string("internal error"))]), status: .internalServerError)
            }
        }
    }

    func json(_ value: JSONText, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: value.description)))
    }

    // MARK: Endpoints

    func tuners(all: String?) async throws -> JSONText {
        let store = try await site.source.store()
        let tuners = try await store.tuners(includeDisconnected: all == "1" || all == "true")
        return .object([("tuners", .array(tuners.map(Self.tuner)))])
    }

    func programs(date: String?, tuner: String?, limit: String?, offset: String?) async throws -> JSONText {
        var query = ProgramQuery(limit: try Self.int(limit, "limit", in: 1...1000) ?? 100, offset: try Self.int(offset, "offset", in: 0...Int.max) ?? 0)
        if let tuner, !tuner.isEmpty {
            guard let id = Int64(tuner) else { throw Failure(status: .badRequest, message: "tuner: expected an id") }
            query.tunerID = id
        }
        if let date, !date.isEmpty {
            guard let day = UTCDate(date) else { throw Failure(status: .badRequest, message: "date: expected YYYY-MM-DD") }
            query.startedFrom = day.startMilliseconds
            query.startedBefore = day.nextDayStartMilliseconds
        }
        let store = try await site.source.store()
        let programs = try await store.programs(query)
        return .object([("programs", .array(programs.map(Self.program)))])
    }

    /// One program and a page of the lines of one service (`service`, 608 by default): `limit`
    /// (at most `page_lines`) lines after the sequence `after`; `next` is the URL of the next page,
    /// null on the last. The first page (no `after`) also has the program's `services` (each
    /// with its line count and URLs) and XDS items (at most `page_lines`); later pages have
    /// neither, so paging costs one range read.
    func program(id: String?, service requestedService: String?, after: String?, limit: String?) async throws -> JSONText {
        guard let id = id.flatMap({ Int64($0) }) else { throw Failure(status: .notFound, message: "no such program") }
        guard let service = ServiceChoice.parse(requestedService) else { throw Failure(status: .badRequest, message: ServiceChoice.invalid) }
        let pageLines = site.limits.pageLines
        let pageSize = try Self.int(limit, "limit", in: 1...pageLines) ?? pageLines
        let afterSequence = try Self.int(after, "after", in: -1...Int(Int32.max))
        let store = try await site.source.store()
        guard let program = try await store.program(id: id) else { throw Failure(status: .notFound, message: "no such program") }
        let lines = try await store.lines(programID: id, service: service, afterSequence: afterSequence, limit: pageSize)
        let firstPage = afterSequence == nil
        let services = firstPage ? ServiceChoice.offered(try await store.lineCounts(programID: id)) : []
        if firstPage, !services.contains(where: { $0.service == service }) {
            throw Failure(status: .notFound, message: "this program has no \(ServiceChoice.label(service)) captions")
        }
        let xds = firstPage ? try await store.xdsItems(programID: id, limit: pageLines) : []
        guard case .object(var members) = Self.program(program) else { return .null }
        let nextAfter = lines.count == pageSize ? lines.last.map { Int64($0.sequence) } : nil
        members.append(("service", .int(Int64(service))))
        members.append(("services", .array(services.map { Self.service($0, program: id) })))
        members.append(("nextAfter", .optional(nextAfter)))
        let serviceParameter = service == CaptionService.cea608 ? "" : "&service=\(service)"
        members.append(("next", .optional(nextAfter.map { "/api/programs/\(id)?after=\($0)&limit=\(pageSize)\(serviceParameter)" })))
        members.append(("lines", .array(lines.map(Self.line))))
        members.append(("xds", .array(xds.map { x in
            .object([("at", .string(CaptionTime.format(x.atMs))), ("atMs", .int(x.atMs)), ("kind", .string(x.kind)), ("value", .string(x.value))])
        })))
        return .object(members)
    }

    /// Searches one service's lines (`service`, 608 by default: see `SearchQuery.service`).
    func search(query: String?, tuner: String?, service requestedService: String?, limit: String?, offset: String?) async throws -> JSONText {
        let text = (query ?? "").trimmingSpaces()
        guard !text.isEmpty else { throw Failure(status: .badRequest, message: "q: give words or \"a phrase\" to search for") }
        guard let service = ServiceChoice.parse(requestedService) else { throw Failure(status: .badRequest, message: ServiceChoice.invalid) }
        var q = SearchQuery(text: text, service: service, limit: try Self.int(limit, "limit", in: 1...200) ?? 50,
                            offset: try Self.int(offset, "offset", in: 0...Int.max) ?? 0)
        if let tuner, !tuner.isEmpty {
            guard let id = Int64(tuner) else { throw Failure(status: .badRequest, message: "tuner: expected an id") }
            q.tunerID = id
        }
        let store = try await site.source.store()
        let hits = try await store.search(q)
        return .object([
            ("query", .string(text)),
            ("hits", .array(hits.map { hit in
                .object([
                    ("program", .string(String(hit.line.programID))),
                    ("programName", .optional(hit.programName)),
                    ("programStartedAt", .string(UTCDate.iso(hit.programStartedAt))),
                    ("line", Self.line(hit.line)),
                    ("snippet", .array(hit.snippet.map { .object([("text", .string($0.text)), ("match", .bool($0.isMatch))]) })),
                    ("url", .string(ServiceChoice.lineURL(hit.line))),
                ])
            })),
        ])
    }

    // MARK: Values

    static func int(_ text: String?, _ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text, !text.isEmpty else { return nil }
        guard let v = Int(text), range.contains(v) else {
            throw Failure(status: .badRequest, message: "\(name): expected a number from \(range.lowerBound) to \(range.upperBound)")
        }
        return v
    }

    static func tuner(_ t: TunerStatus) -> JSONText {
        .object([
            ("id", .string(String(t.id))),
            ("node", .string(String(t.nodeID))),
            ("hostname", .optional(t.hostname)),
            ("address", .string(t.address)),
            ("port", .int(Int64(t.port))),
            ("description", .optional(t.description)),
            ("connected", .bool(t.isConnected)),
            ("connectedAt", .string(UTCDate.iso(t.connectedAt))),
            ("disconnectedAt", .optional(t.disconnectedAt.map(UTCDate.iso))),
            ("disconnectReason", .optional(t.disconnectReason)),
            ("currentProgram", t.currentProgram.map(program) ?? .null),
        ])
    }

    static func program(_ p: ProgramSummary) -> JSONText {
        .object([
            ("id", .string(String(p.id))),
            ("tuner", .string(String(p.tunerID))),
            ("tunerDescription", .optional(p.tunerDescription)),
            ("name", .optional(p.name)),
            ("startedAt", .string(UTCDate.iso(p.startedAt))),
            ("endedAt", .optional(p.endedAt.map(UTCDate.iso))),
            ("lineCount", .int(Int64(p.lineCount))),
            ("url", .string("/programs/\(p.id)")),
            ("downloads", downloads(p.id, service: CaptionService.cea608)),
        ])
    }

    static func service(_ s: ServiceLineCount, program: Int64) -> JSONText {
        .object([
            ("service", .int(Int64(s.service))),
            ("name", .string(ServiceChoice.label(s.service))),
            ("lineCount", .int(Int64(s.lines))),
            ("url", .string(ServiceChoice.url("/programs/\(program)", service: s.service))),
            ("downloads", downloads(program, service: s.service)),
        ])
    }

    static func downloads(_ program: Int64, service: Int) -> JSONText {
        .object(TranscriptKind.allCases.map { kind in
            (kind.rawValue, .string(ServiceChoice.url("/programs/\(program)/\(kind.rawValue)", service: service)))
        })
    }

    static func line(_ l: CaptionLine) -> JSONText {
        .object([
            ("id", .string(String(l.id))),
            ("service", .int(Int64(l.service))),
            ("sequence", .int(Int64(l.sequence))),
            ("start", .string(CaptionTime.format(l.startMs))),
            ("end", .string(CaptionTime.format(l.endMs))),
            ("startMs", .int(l.startMs)),
            ("endMs", .int(l.endMs)),
            ("mode", .string(l.mode)),
            ("text", .string(l.text)),
        ])
    }
}
