import Foundation
import Store
import SupportKit
import Synchronization
import Testing
import TunerBench
@testable import TunerServer
import ServerFiles

/// The archive is written off the event loops (`ArchiveWriter`): a disk or NFS server that stops
/// answering must not stop the captions of the tuners, and a write that fails must not lose data.
@Suite struct ArchiveWriterTests {
    /// Writes like `DirectArchiveIO`, except that writes into a folder named `stalled` wait until
    /// `release()` (an NFS server that does not answer), and the first `failures` writes fail.
    final class TestDisk: ArchiveIO {
        private let direct = DirectArchiveIO()
        private let state = Mutex((stalled: 0, released: false, failuresLeft: 0))

        init(failures: Int = 0) { state.withLock { $0.failuresLeft = failures } }

        var stalledWrites: Int { state.withLock { $0.stalled } }
        func release() { state.withLock { $0.released = true } }

        func append(_ bytes: [UInt8], base: String, kind: ArchiveFileKind, directory: String) throws(ArchiveError) {
            if directory.hasSuffix("/stalled") {
                state.withLock { $0.stalled += 1 }
                while !state.withLock({ $0.released }) { usleep(10_000) }
            }
            let fail = state.withLock { s -> Bool in
                guard s.failuresLeft > 0 else { return false }
                s.failuresLeft -= 1
                return true
            }
            if fail { throw ArchiveError(path: base, operation: "write", errno: ENOSPC) }
            try direct.append(bytes, base: base, kind: kind, directory: directory)
        }

        func rename(base: String, to newBase: String, kinds: [ArchiveFileKind]) throws(ArchiveError) {
            try direct.rename(base: base, to: newBase, kinds: kinds)
        }
        func exists(base: String) -> Bool { direct.exists(base: base) }
        var isBehind: Bool { false }
    }

    @Test("a tuner whose archive folder stalls (NFS not answering) does not hold up another tuner's captions on the same event loop")
    func stalledArchiveDoesNotStopOtherTuners() async throws {
        let disk = TestDisk()
        try await withServer(useStore: true, eventLoopThreads: 1, archiveIO: disk) { server, archive, store in
            // Before the server stops (it waits for its archive writes), whatever happens here.
            defer { disk.release() }
            let store = try #require(store)
            let stalled = try TestTuner(port: server.port)
            try stalled.send(ClientBytes.preamble(description: "stalled"))
            for k in 0..<3 { try stalled.send(LatencyProbe.caption(id: 1_000_000 + k, at: Int64(k) * 1000)) }
            #expect(await eventually(timeout: 10) { disk.stalledWrites > 0 }, "the stalled tuner's archive write started (and hangs)")

            // The flush interval (0.2 s) has passed several times since: with the archive written
            // on the event loop, the loop would now hang in that write and decode nothing.
            try await Task.sleep(for: .milliseconds(500))
            let healthy = try TestTuner(port: server.port)
            try healthy.send(ClientBytes.preamble(description: "healthy"))
            for k in 0..<3 { try healthy.send(LatencyProbe.caption(id: 2_000_000 + k, at: Int64(k) * 1000)) }
            let stored = await eventually(timeout: 10) {
                let page = try? await store.liveLines(after: .start, tunerID: nil, limit: 100)
                let ids = Set((page?.lines ?? []).compactMap { LatencyProbe.id(in: $0.text) })
                return ids.isSuperset(of: [2_000_000, 2_000_001])
            }
            #expect(stored, "the healthy tuner's lines reached the store while the other tuner's archive was stalled")

            disk.release()
            healthy.finishSending()
            stalled.finishSending()
            let written = await eventually(timeout: 10) {
                let files = (FileManager.default.enumerator(atPath: archive.path)?.allObjects as? [String]) ?? []
                return files.contains { $0.contains("/stalled/") && $0.hasSuffix(".txt") }
                    && files.contains { $0.contains("/healthy/") && $0.hasSuffix(".txt") }
            }
            #expect(written, "once the disk answers again, both tuners' archives are written")
        }
    }

    @Test("writes that fail (a full disk) are kept and written first, in order, when the disk recovers")
    func failedWritesAreKeptInOrder() async throws {
        let root = try makeTemporaryDirectory("archive-writer")
        defer { try? FileManager.default.removeItem(at: root) }
        let failures = Mutex(0)
        let writer = ArchiveWriter(threads: 2, writingWith: TestDisk(failures: 2)) { _ in failures.withLock { $0 += 1 } }
        let directory = root.path + "/2026/12/06/t1"
        let base = directory + "/120000-news"
        for chunk in ["one ", "two ", "three"] {
            writer.append(Array(chunk.utf8), base: base, kind: .txt, directory: directory)
        }
        await writer.drain()
        #expect(failures.withLock { $0 } == 2, "both failures were reported")
        #expect(try String(contentsOfFile: base + ".txt", encoding: .utf8) == "one two three")
        // A rename moves the files; later data follows them.
        writer.rename(base: base, to: directory + "/120000-news-2", kinds: ArchiveFileKind.standard)
        writer.append(Array(" four".utf8), base: directory + "/120000-news-2", kind: .txt, directory: directory)
        await writer.finish()
        #expect(!FileManager.default.fileExists(atPath: base + ".txt"))
        #expect(try String(contentsOfFile: directory + "/120000-news-2.txt", encoding: .utf8) == "one two three four")
    }
}

/// `ProgramFiles` keeps its fullest buffer's size as bytes come (the server asks after every read
/// whether a flush is due): after any run of appends and flushes, failing ones included, it must
/// be what the buffers hold, and every byte must reach the disk once, in order, per file.
@Suite struct ProgramFilesBookkeepingTests {
    /// Records what it is given; fails when told to, as a full disk would.
    final class RecordingDisk: ArchiveIO, @unchecked Sendable {
        var written: [ArchiveFileKind: [UInt8]] = [:]
        var failNext = false
        func append(_ bytes: [UInt8], base: String, kind: ArchiveFileKind, directory: String) throws(ArchiveError) {
            if failNext { failNext = false; throw ArchiveError(path: base, operation: "write", errno: ENOSPC) }
            written[kind, default: []] += bytes
        }
        func rename(base: String, to newBase: String, kinds: [ArchiveFileKind]) throws(ArchiveError) {}
        func exists(base: String) -> Bool { false }
        var isBehind: Bool { false }
    }

    @Test("the largest pending buffer's size follows 200 random appends and flushes, with failing writes, in 20 runs; every byte is written once, in order")
    func largestPendingFollowsAppendsAndFlushes() {
        var rng = SplitMix64(state: 0xF11E5)
        for _ in 0..<20 {
            var files = ProgramFiles(basePath: "/archive/p", directory: "/archive")
            let disk = RecordingDisk()
            // The model: each file's waiting bytes, in the order the files were first used.
            var order = ArchiveFileKind.standard
            var waiting: [ArchiveFileKind: [UInt8]] = [:]
            var appended: [ArchiveFileKind: [UInt8]] = [:]
            let kinds = ArchiveFileKind.standard + [.service(1), .service(Int.random(in: 2...63, using: &rng))]
            for _ in 0..<200 {
                let kind = kinds.randomElement(using: &rng)!
                let bytes = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0x20...0x7E, using: &rng) }
                let operation = Int.random(in: 0..<6, using: &rng)
                if operation < 3 {
                    switch operation {
                    case 0: files.append(kind, bytes)
                    case 1: files.append(kind, String(decoding: bytes, as: UTF8.self))
                    default: files.append(kind) { $0 += bytes }
                    }
                    if !order.contains(kind) { order.append(kind) }
                    waiting[kind, default: []] += bytes
                    appended[kind, default: []] += bytes
                } else {
                    let minimum = Int.random(in: 1...600, using: &rng)
                    let fails = Bool.random(using: &rng)
                    disk.failNext = fails
                    // The disk fails the flush's first write (the first file due), which stops
                    // the flush with nothing written; otherwise every file due is written.
                    if !fails {
                        for k in order where waiting[k, default: []].count >= minimum { waiting[k] = [] }
                    }
                    do { try files.flush(minimumBytes: minimum, to: disk) } catch {}
                    disk.failNext = false
                }
                let sizes = waiting.values.map(\.count)
                #expect(files.largestPendingByteCount == (sizes.max() ?? 0), "after operation \(operation) on \(kind)")
                #expect(files.pendingByteCount == sizes.reduce(0, +))
            }
            try? files.flush(to: disk)
            #expect(files.largestPendingByteCount == 0 && files.pendingByteCount == 0)
            for kind in kinds { #expect(disk.written[kind, default: []] == appended[kind, default: []], "\(kind)") }
        }
    }
}
