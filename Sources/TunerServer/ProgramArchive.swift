#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Captions
import ServerFiles

/// Why archiving failed; the message names the file and the system's reason.
public struct ArchiveError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let errno: Int32

    public var description: String {
        "archive: cannot \(operation) \(path): \(String(cString: strerror(errno)))"
    }
}

/// How archive files reach the disk: `DirectArchiveIO` writes on the caller's thread (tests,
/// tools); `ccr serve` uses an `ArchiveWriter`, which writes on threads of its own so that a
/// slow disk or NFS server (the guide's /srv/archive is an NFS mount, where every close waits for
/// the server) never stalls the event loops that read the tuners.
public protocol ArchiveIO: Sendable {
    /// Appends `bytes` to the program file `base`.`kind`, making `directory` first if missing.
    func append(_ bytes: [UInt8], base: String, kind: ArchiveFileKind, directory: String) throws(ArchiveError)
    /// Renames the files of `kinds` of a program that exist at `base` to `newBase` (same extensions).
    func rename(base: String, to newBase: String, kinds: [ArchiveFileKind]) throws(ArchiveError)
    /// True when any file of a program at `base` exists or is about to be written.
    func exists(base: String) -> Bool
    /// Claims `base` for a new program: false when it exists, is about to be written or is
    /// claimed already. Two tuners with one description whose programs start in one second must
    /// never share files, so the check and the claim are one step.
    func reserve(base: String) -> Bool
    /// Gives up a claim once the program's files are written or queued (`exists` sees them).
    func release(base: String)
    /// True when writes wait in memory beyond the writer's bound: sessions keep their data
    /// buffered instead of queueing more.
    var isBehind: Bool { get }
}

extension ArchiveIO {
    /// One caller at a time (tests, tools): nothing else can claim the base between the two.
    public func reserve(base: String) -> Bool { !exists(base: base) }
    public func release(base: String) {}
}

/// Writes archive files immediately, on the calling thread.
public struct DirectArchiveIO: ArchiveIO {
    public init() {}

    public func append(_ bytes: [UInt8], base: String, kind: ArchiveFileKind, directory: String) throws(ArchiveError) {
        try appendToFile(base + "." + kind.fileExtension, bytes, directory: directory)
    }

    public func rename(base: String, to newBase: String, kinds: [ArchiveFileKind]) throws(ArchiveError) {
        for kind in kinds {
            let from = base + "." + kind.fileExtension, target = newBase + "." + kind.fileExtension
            if Glibc.rename(from, target) != 0 && errno != ENOENT {
                throw ArchiveError(path: target, operation: "rename to", errno: errno)
            }
        }
    }

    public func exists(base: String) -> Bool {
        ArchiveFileKind.standard.contains { access(base + "." + $0.fileExtension, F_OK) == 0 }
    }

    public var isBehind: Bool { false }
}

/// One program's archive files, written append-only.
///
/// Files are open only while a flush writes to them (open, write, close): with 10,000 tuners and
/// four files each, keeping them open would exhaust the descriptor limit. Data waits in small
/// per-file buffers until `flush()`; a `kill -9` therefore loses at most what was not flushed
/// yet, and every file on disk is a prefix of what it would have become (whole cues, whole records).
/// Each file is written when its own buffer is full or the server's interval has passed: the
/// `.bin` fills every few seconds, the transcripts in minutes, and each write costs the disk an
/// open and a close (10,000 tuners: the most expensive thing the server did).
public struct ProgramFiles: Sendable {
    public private(set) var basePath: String
    public let directory: String
    /// Each file's waiting bytes: the standard four, then each 708 service from its first cue.
    private var pending: [(kind: ArchiveFileKind, bytes: [UInt8])] = ArchiveFileKind.standard.map { ($0, []) }
    /// Bytes appended since the program began (what `[limits] program_bytes` bounds).
    public private(set) var bytesAppended = 0
    /// The fullest buffer's size, kept as bytes are appended: the server asks after every read
    /// whether a flush is due, and reading the sizes of four to twelve buffers took five cache
    /// misses a read at 10,000 tuners (5% of a session's work), where this field is beside the rest.
    public private(set) var largestPendingByteCount = 0

    public init(basePath: String, directory: String) {
        self.basePath = basePath
        self.directory = directory
    }

    /// Appends bytes as they are (an RCWT record goes to the `.bin` file unchanged: the wire layout
    /// of a record is the file's).
    public mutating func append<C: Collection<UInt8>>(_ kind: ArchiveFileKind, _ bytes: C) {
        let i = index(kind)
        pending[i].bytes.append(contentsOf: bytes)
        bytesAppended += bytes.count
        largestPendingByteCount = Swift.max(largestPendingByteCount, pending[i].bytes.count)
    }

    public mutating func append(_ kind: ArchiveFileKind, _ text: String) {
        append(kind, text.utf8)
    }

    /// Lets `write` append to the file's waiting bytes in place: a caption writer's output goes
    /// straight into the buffer, not through an array and a String of its own per event.
    public mutating func append(_ kind: ArchiveFileKind, writing write: (inout [UInt8]) -> Void) {
        let i = index(kind)
        let before = pending[i].bytes.count
        write(&pending[i].bytes)
        bytesAppended += pending[i].bytes.count - before
        largestPendingByteCount = Swift.max(largestPendingByteCount, pending[i].bytes.count)
    }

    private mutating func index(_ kind: ArchiveFileKind) -> Int {
        if let i = pending.firstIndex(where: { $0.kind == kind }) { return i }
        pending.append((kind, []))
        return pending.count - 1
    }

    /// The kinds of file this program has written or will write.
    public var kinds: [ArchiveFileKind] { pending.map(\.kind) }

    /// Bytes waiting to be written.
    public var pendingByteCount: Int { pending.reduce(0) { $0 + $1.bytes.count } }

    /// Hands the waiting buffers holding at least `minimumBytes` (all of them by default) to `io`.
    /// On error the unwritten data stays pending.
    public mutating func flush(minimumBytes: Int = 1, to io: any ArchiveIO) throws(ArchiveError) {
        defer { largestPendingByteCount = pending.reduce(0) { Swift.max($0, $1.bytes.count) } }
        for i in pending.indices where pending[i].bytes.count >= Swift.max(1, minimumBytes) {
            try io.append(pending[i].bytes, base: basePath, kind: pending[i].kind, directory: directory)
            // Release the buffer's memory: a tuner's next cue may be minutes away.
            pending[i].bytes = []
        }
    }

    /// Moves the files written so far to a new base path (the program got its name).
    public mutating func rename(to newBase: String, io: any ArchiveIO) throws(ArchiveError) {
        guard newBase != basePath else { return }
        try io.rename(base: basePath, to: newBase, kinds: kinds)
        basePath = newBase
    }
}

/// Appends with one open/write/close; makes the directory when the open finds it missing.
func appendToFile(_ path: String, _ bytes: [UInt8], directory: String) throws(ArchiveError) {
    var fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    if fd < 0 && errno == ENOENT {
        try makeDirectories(directory)
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    }
    guard fd >= 0 else { throw ArchiveError(path: path, operation: "open", errno: errno) }
    defer { close(fd) }
    var written = 0
    var failure: Int32 = 0
    bytes.withUnsafeBytes { raw in
        while written < raw.count {
            let n = write(fd, raw.baseAddress! + written, raw.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                failure = errno
                return
            }
            written += n
        }
    }
    if failure != 0 { throw ArchiveError(path: path, operation: "write", errno: failure) }
}

/// `mkdir -p`.
func makeDirectories(_ path: String) throws(ArchiveError) {
    if path.isEmpty { return }
    var st = stat()
    if stat(path, &st) == 0 { return }
    if let slash = path.lastIndex(of: "/"), slash != path.startIndex {
        try makeDirectories(String(path[..<slash]))
    }
    if mkdir(path, 0o755) != 0 && errno != EEXIST {
        throw ArchiveError(path: path, operation: "create directory", errno: errno)
    }
}
