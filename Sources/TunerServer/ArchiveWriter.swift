import NIOPosix
import Synchronization
import ServerFiles

/// Writes the archive on threads of its own, each file's data in the order the event loops gave it.
///
/// Why not on the event loops: an event loop serves thousands of tuners, and one slow file
/// operation stalls all of them. Creating a file took ~3.5 ms on a journal-less ext4 holding many
/// recently deleted inodes (10,000 tuners: p99 line latency ~0.5 s with the writes on the loops),
/// and on the guide's NFS-mounted /srv/archive every close waits for the server's answer.
///
/// Each tuner folder is written by one of `threads` threads with a FIFO queue, which keeps each
/// file's appends, and a program's rename, in order; several threads keep an NFS server's round
/// trips (a close waits for one) from adding up one after another. A write that fails is kept
/// (up to `maxUnwrittenBytes` per file) and written before that file's next data, so a full disk
/// that frees up loses nothing; each failure is reported to `failed`.
/// Past `maxQueuedBytes` waiting, `isBehind` tells sessions to keep their data until the disk
/// catches up (each session holds at most its own bound), so memory stays bounded.
public final class ArchiveWriter: ArchiveIO {
    private let pools: [NIOThreadPool]
    /// What does the writing, on the writer threads (tests put a stalling one here).
    private let direct: any ArchiveIO
    /// Program bases with operations still queued, so that `exists` sees a program whose files
    /// are not on disk yet (a tuner reconnecting within the second its last program started).
    private let queued = Mutex<[String: Int]>([:])
    private let depth = Atomic<Int>(0)
    private let queuedBytes = Atomic<Int>(0)
    private let maxQueuedBytes: Int
    /// Data whose write failed, per file path (a path only ever by its folder's writer thread).
    private let unwritten = Mutex<[String: [UInt8]]>([:])
    private let maxUnwrittenBytes: Int
    private let failed: @Sendable (ArchiveError) -> Void

    public init(threads: Int = 4, maxUnwrittenBytes: Int = 256 * 1024, maxQueuedBytes: Int = 16 << 20,
                writingWith io: any ArchiveIO = DirectArchiveIO(), failed: @escaping @Sendable (ArchiveError) -> Void) {
        self.direct = io
        self.pools = (0..<max(1, threads)).map { _ in NIOThreadPool(numberOfThreads: 1) }
        self.maxUnwrittenBytes = maxUnwrittenBytes
        self.maxQueuedBytes = maxQueuedBytes
        self.failed = failed
        for pool in pools { pool.start() }
    }

    /// Operations queued and not yet done (a metric).
    public var queueDepth: Int { depth.load(ordering: .relaxed) }

    public var isBehind: Bool { queuedBytes.load(ordering: .relaxed) > maxQueuedBytes }

    public func append(_ bytes: [UInt8], base: String, kind: ArchiveFileKind, directory: String) {
        enqueue(bases: [base], bytes: bytes.count) { [self] in
            let path = base + "." + kind.fileExtension
            let data = (unwritten.withLock { $0.removeValue(forKey: path) } ?? []) + bytes
            do throws(ArchiveError) {
                try direct.append(data, base: base, kind: kind, directory: directory)
            } catch {
                failed(error)
                if data.count <= maxUnwrittenBytes { unwritten.withLock { $0[path] = data } }
            }
        }
    }

    public func rename(base: String, to newBase: String, kinds: [ArchiveFileKind]) {
        enqueue(bases: [base, newBase], bytes: 0) { [self] in
            do throws(ArchiveError) { try direct.rename(base: base, to: newBase, kinds: kinds) } catch { failed(error) }
            unwritten.withLock { kept in
                for kind in kinds {
                    if let data = kept.removeValue(forKey: base + "." + kind.fileExtension) {
                        kept[newBase + "." + kind.fileExtension] = data
                    }
                }
            }
        }
    }

    public func exists(base: String) -> Bool {
        queued.withLock { $0[base] != nil } || direct.exists(base: base)
    }

    /// A claim counts as a queued operation on `base` until it is released, so `exists` and
    /// other claims see it. The disk is looked at before the lock (a slow NFS server must not
    /// hold up the writer threads); claims within this process are decided under the lock.
    public func reserve(base: String) -> Bool {
        if direct.exists(base: base) { return false }
        return queued.withLock { counts in
            guard counts[base] == nil else { return false }
            counts[base] = 1
            return true
        }
    }

    public func release(base: String) {
        queued.withLock { counts in
            let left = (counts[base] ?? 1) - 1
            counts[base] = left > 0 ? left : nil
        }
    }

    /// Waits until everything queued so far is on disk.
    public func drain() async {
        for pool in pools { _ = try? await pool.runIfActive {} }
    }

    /// Writes what is queued, then stops the threads.
    public func finish() async {
        await drain()
        for pool in pools { try? await pool.shutdownGracefully() }
    }

    /// The thread is picked by the folder of `bases[0]` (a tuner's folder: its files stay in order;
    /// a rename stays in its folder).
    private func enqueue(bases: [String], bytes: Int, _ operation: @escaping @Sendable () -> Void) {
        let folder = bases[0].lastIndex(of: "/").map { bases[0][..<$0] } ?? ""
        let pool = pools[Int(UInt(bitPattern: folder.hashValue) % UInt(pools.count))]
        queued.withLock { for base in bases { $0[base, default: 0] += 1 } }
        depth.add(1, ordering: .relaxed)
        queuedBytes.add(bytes, ordering: .relaxed)
        // Run also when the pool was stopped (`.cancelled`): the data must not be lost.
        pool.submit { [self] _ in
            operation()
            depth.subtract(1, ordering: .relaxed)
            queuedBytes.subtract(bytes, ordering: .relaxed)
            queued.withLock { counts in
                for base in bases {
                    let left = (counts[base] ?? 1) - 1
                    counts[base] = left > 0 ? left : nil
                }
            }
        }
    }
}
