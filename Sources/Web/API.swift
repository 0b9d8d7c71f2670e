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

    /// One program and a page of its lines: `limit` (at most `page_lines`) lines after the
    /// sequence `after`; `next` is the URL of the next page, null on the last. XDS items (at most
    /// `page_lines`) come with the first page only.
    func program(id: String?, after: String?, limit: String?) async throws -> JSONText {
        guard let id = id.flatMap({ Int64($0) }) else { throw Failure(status: .notFound, message: "no such program") }
        let pageLines = site.limits.pageLines
        let pageSize = try Self.int(limit, "limit", in: 1...pageLines) ?? pageLines
        let afterSequence = try Self.int(after, "after", in: -1...Int(Int32.max))
        let store = try await site.source.store()
        guard let program = try await store.program(id: id) else { throw Failure(status: .notFound, message: "no such program") }
        let lines = try await store.lines(programID: id, afterSequence: afterSequence, limit: pageSize)
        let xds = afterSequence == nil ? try await store.xdsItems(programID: id, limit: pageLines) : []
        guard case .object(var members) = Self.program(program) else { return .null }
        let nextAfter = lines.count == pageSize ? lines.last.map { Int64($0.sequence) } : nil
        members.append(("nextAfter", .optional(nextAfter)))
        members.append(("next", .optional(nextAfter.map { "/api/programs/\(id)?after=\($0)&limit=\(pageSize)" })))
        members.append(("lines", .array(lines.map(Self.line))))
        members.append(("xds", .array(xds.map { x in
            .object([("at", .string(CaptionTime.format(x.atMs))), ("atMs", .int(x.atMs)), ("kind", .string(x.kind)), ("value", .string(x.value))])
        })))
        return .object(members)
    }

    func search(query: String?, tuner: String?, limit: String?, offset: String?) async throws -> JSONText {
        let text = (query ?? "").trimmingSpaces()
        guard !text.isEmpty else { throw Failure(status: .badRequest, message: "q: give words or \"a phrase\" to search for") }
        var q = SearchQuery(text: text, limit: try Self.int(limit, "limit", in: 1...200) ?? 50, offset: try Self.int(offset, "offset", in: 0...Int.max) ?? 0)
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
                    ("url", .string("/programs/\(hit.line.programID)#l\(hit.line.sequence)")),
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
            ("downloads", .object([
                ("srt", .string("/programs/\(p.id)/srt")), ("vtt", .string("/programs/\(p.id)/vtt")), ("txt", .string("/programs/\(p.id)/txt")),
            ])),
        ])
    }

    static func line(_ l: CaptionLine) -> JSONText {
        .object([
            ("id", .string(String(l.id))),
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
