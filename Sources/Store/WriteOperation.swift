/// One write, as applied to the database and as recorded in the spool.
///
/// Every operation is idempotent, so a replay after a crash or a half-applied batch never
/// duplicates anything: rows carry ids chosen by ccr (nodes, tuners, programs) or a unique
/// (writer, write number) key (lines, XDS items), inserted with INSERT IGNORE; updates only move
/// forward (e.g. a program is ended only once).
enum WriteOperation: Codable, Sendable, Equatable {
    case registerNode(id: Int64, hostname: String, startedAt: Int64)
    case tunerConnected(id: Int64, connection: TunerConnection)
    case tunerDisconnected(id: Int64, at: Int64)
    case programStarted(id: Int64, tunerID: Int64, startedAt: Int64, name: String?)
    case programRenamed(id: Int64, name: String)
    case programEnded(id: Int64, at: Int64)
    case lines([SequencedLine])
    case xds([SequencedXDS])
}

/// The writer key: a random id per ccr process (store instance) and a counter of its writes.
struct WriterKey: Codable, Sendable, Equatable {
    var writer: Int64
    var number: Int64
}

struct SequencedLine: Codable, Sendable, Equatable {
    var key: WriterKey
    /// Position in the program's lines of its service.
    var seq: Int
    var line: CaptionLineInput
}

struct SequencedXDS: Codable, Sendable, Equatable {
    var key: WriterKey
    var seq: Int
    var item: XDSItemInput
}

extension WriteOperation {
    /// Applies the operation on `connection` (the caller wraps it in a transaction).
    func apply(on connection: DatabaseConnection) throws {
        let now = connection.nowMillisecondsSQL
        let insertIgnore = connection.insertIgnore
        switch self {
        case .registerNode(let id, let hostname, let startedAt):
            try connection.execute(
                "\(insertIgnore) INTO nodes (id, hostname, started_at, last_heartbeat) VALUES (?, ?, ?, \(now))",
                [.int(id), .text(hostname), .int(startedAt)])
        case .tunerConnected(let id, let c):
            try connection.execute(
                "\(insertIgnore) INTO tuners (id, node_id, address, port, description, connected_at) VALUES (?, ?, ?, ?, ?, ?)",
                [.int(id), .int(c.nodeID), .text(c.address), .int(Int64(c.port)), c.description.sql, .int(c.connectedAt)])
        case .tunerDisconnected(let id, let at):
            // A watchdog mark is replaced by the real close time.
            try connection.execute(
                "UPDATE tuners SET disconnected_at = ?, disconnect_reason = 'closed' WHERE id = ? AND (disconnected_at IS NULL OR disconnect_reason = 'watchdog')",
                [.int(at), .int(id)])
        case .programStarted(let id, let tunerID, let startedAt, let name):
            try connection.execute(
                "\(insertIgnore) INTO programs (id, tuner_id, started_at, name) VALUES (?, ?, ?, ?)",
                [.int(id), .int(tunerID), .int(startedAt), name.sql])
        case .programRenamed(let id, let name):
            try connection.execute("UPDATE programs SET name = ? WHERE id = ?", [.text(name), .int(id)])
        case .programEnded(let id, let at):
            try connection.execute("UPDATE programs SET ended_at = ? WHERE id = ? AND ended_at IS NULL", [.int(at), .int(id)])
        case .lines(let lines):
            for chunk in lines.batchShaped() {
                let rows = Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?, \(now), ?, ?)", count: chunk.count).joined(separator: ", ")
                var parameters: [SQLValue] = []
                parameters.reserveCapacity(chunk.count * 11)
                for s in chunk {
                    parameters += [.int(s.line.programID), .int(s.line.tunerID), .int(Int64(s.line.service)), .int(Int64(s.seq)),
                                   .int(s.line.startMs), .int(s.line.endMs), .text(s.line.mode), .text(s.line.text),
                                   .int(s.line.capturedAt), .int(s.key.writer), .int(s.key.number)]
                }
                try connection.execute(
                    "\(insertIgnore) INTO caption_lines (program_id, tuner_id, service, seq, start_ms, end_ms, mode, text, captured_at, received_at, writer_id, writer_seq) VALUES \(rows)",
                    parameters)
            }
        case .xds(let items):
            for chunk in items.batchShaped() {
                let rows = Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
                var parameters: [SQLValue] = []
                for s in chunk {
                    parameters += [.int(s.item.programID), .int(s.item.tunerID), .int(Int64(s.seq)), .int(s.item.atMs),
                                   .text(s.item.kind), .text(s.item.value), .int(s.key.writer), .int(s.key.number)]
                }
                try connection.execute(
                    "\(insertIgnore) INTO xds_items (program_id, tuner_id, seq, at_ms, kind, value, writer_id, writer_seq) VALUES \(rows)",
                    parameters)
            }
        }
    }
}

extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }

    /// Multi-row INSERT batches of 128 rows, the rest split into powers of two (64, 32, ..., 1).
    /// Why: each batch size is a different SQL text; with sizes limited to 8 shapes, SQLite's
    /// prepared statements are reused instead of one being prepared (and kept) per size.
    func batchShaped() -> [ArraySlice<Element>] {
        var chunks: [ArraySlice<Element>] = []
        var start = 0
        while count - start >= 128 {
            chunks.append(self[start..<start + 128])
            start += 128
        }
        var size = 64
        while start < count {
            if count - start >= size {
                chunks.append(self[start..<start + size])
                start += size
            }
            size /= 2
        }
        return chunks
    }
}
