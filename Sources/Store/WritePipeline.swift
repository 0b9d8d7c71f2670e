/// The writer's state: where each write goes (database or spool), the writer key that makes
/// lines idempotent, and each program's line positions. Confined to the writer's
/// `DatabaseThread`, whose FIFO order is the order of writes in the database and in the spool.
final class WritePipeline {
    let spool: Spool?
    let gauge: SpoolGauge
    /// This process's writer id (see `WriterKey`).
    private let writerID = IdentifierGenerator.next()
    private var writeNumber: Int64 = 0
    /// The next line position per program and service: each service's lines are numbered from
    /// 0, so a page of one service is a range of the (program, service, seq) index and a 608
    /// transcript's `#lN` anchors have no gaps where 708 lines came between.
    private var lineSequence: [ProgramService: Int] = [:]
    private struct ProgramService: Hashable {
        var program: Int64
        var service: Int
    }
    private var xdsSequence: [Int64: Int] = [:]
    /// Ended programs, oldest first: their positions are kept a while for late lines, then dropped
    /// so that a server running for months does not grow.
    private var ended: [Int64] = []
    private static let endedProgramsKept = 10_000

    private func nextKey() -> WriterKey {
        writeNumber += 1
        return WriterKey(writer: writerID, number: writeNumber)
    }

    init(spool: Spool?, gauge: SpoolGauge) {
        self.spool = spool
        self.gauge = gauge
        gauge.set(spool?.pendingCount ?? 0)
    }

    func sequencedLines(_ lines: [CaptionLineInput]) -> [SequencedLine] {
        lines.map { line in
            let key = ProgramService(program: line.programID, service: line.service)
            let seq = lineSequence[key, default: 0]
            lineSequence[key] = seq + 1
            return SequencedLine(key: nextKey(), seq: seq, line: line)
        }
    }

    func sequencedXDS(_ items: [XDSItemInput]) -> [SequencedXDS] {
        items.map { item in
            let seq = xdsSequence[item.programID, default: 0]
            xdsSequence[item.programID] = seq + 1
            return SequencedXDS(key: nextKey(), seq: seq, item: item)
        }
    }

    func programEnded(_ programID: Int64) {
        ended.append(programID)
        if ended.count > Self.endedProgramsKept * 2 {
            let dropped = Set(ended.prefix(Self.endedProgramsKept))
            lineSequence = lineSequence.filter { !dropped.contains($0.key.program) }
            for old in dropped { xdsSequence[old] = nil }
            ended.removeFirst(Self.endedProgramsKept)
        }
    }

    /// Releases the spool file (and its lock) for the next process.
    func close() {
        spool?.close()
    }

    /// True when earlier writes wait in the spool (new ones must queue behind them).
    var isSpooling: Bool { (spool?.pendingCount ?? 0) > 0 }

    /// Applies `operation`, or spools it when the database is unreachable or earlier writes are
    /// still spooled. Throws non-transient errors (permissions, schema) to the caller.
    func submit(_ operation: WriteOperation, on thread: DatabaseThread) throws {
        if let spool, spool.pendingCount > 0 {
            try spool.append(operation)
            gauge.set(spool.pendingCount)
            return
        }
        do {
            try applyRetryingStaleConnection(operation, on: thread)
        } catch let error as StoreError where error.isTransient {
            thread.dropConnection()
            guard let spool else { throw error }
            try spool.append(operation)
            gauge.set(spool.pendingCount)
        }
    }

    /// An idle connection may have died with a database restart; one fresh attempt tells that
    /// apart from an outage (applying twice is harmless: operations are idempotent).
    private func applyRetryingStaleConnection(_ operation: WriteOperation, on thread: DatabaseThread) throws {
        let reused = thread.hasConnection
        do {
            let connection = try thread.currentConnection()
            try connection.transaction { try operation.apply(on: connection) }
        } catch let error as StoreError where error.isTransient && reused {
            thread.dropConnection()
            let connection = try thread.currentConnection()
            try connection.transaction { try operation.apply(on: connection) }
        }
    }

    enum DrainResult: Sendable, Equatable {
        case empty
        case progressed
        case failed(StoreError)
    }

    /// Replays up to `batch` spooled writes in one transaction.
    func drainChunk(on thread: DatabaseThread, batch: Int = 500) -> DrainResult {
        guard let spool, spool.pendingCount > 0 else { return .empty }
        do {
            let (operations, end) = try spool.peek(limit: batch)
            guard !operations.isEmpty else { return .empty }
            let connection = try thread.currentConnection()
            try connection.transaction {
                for operation in operations { try operation.apply(on: connection) }
            }
            try spool.markApplied(upTo: end, count: operations.count)
            gauge.set(spool.pendingCount)
            return spool.pendingCount > 0 ? .progressed : .empty
        } catch let error as StoreError {
            if error.isTransient { thread.dropConnection() }
            return .failed(error)
        } catch {
            return .failed(.spool(path: spool.path, reason: "\(error)"))
        }
    }
}

import Synchronization

/// Spool depth, written by the writer thread and read by metrics from anywhere.
final class SpoolGauge: Sendable {
    private let value = Mutex(0)
    func set(_ v: Int) { value.withLock { $0 = v } }
    var current: Int { value.withLock { $0 } }
}
