import LeanFoundation
#if canImport(Glibc)
import Glibc
#endif

/// Bytes to ship with their SHA-256, computed once.
///
/// WHY a type of its own: the repository nodes' no-op run compares a 100 MB binary, and hashing
/// it on every run (here and on the target) was most of that run's time. `mapping(file:)` maps the
/// file instead of reading it (pages are read only when an upload really sends them) and takes the
/// digest from `LocalDigestCache` when the file is unchanged since it was last hashed.
public struct Payload: Sendable, Hashable {
    public let bytes: Data
    public let sha256: String

    public init(_ bytes: Data) {
        self.bytes = bytes
        self.sha256 = SHA256Digest.hex(bytes)
    }

    /// The file at `path`, memory-mapped, with its digest from `cache` when still valid.
    public static func mapping(file path: String, cache: LocalDigestCache = .standard) throws -> Payload {
        let url = URL(fileURLWithPath: path)
        let bytes = try Data(contentsOf: url, options: .alwaysMapped)
        return Payload(bytes: bytes, sha256: cache.sha256(ofFile: path, bytes: bytes))
    }

    private init(bytes: Data, sha256: String) { self.bytes = bytes; self.sha256 = sha256 }
}

/// SHA-256 of local files, remembered per path together with the file's identity (inode, size,
/// modification and change times to the nanosecond). Any write, replacement or `touch` changes
/// the identity, so a remembered digest is only used for the very same bytes; the change time
/// cannot be set back by a user, unlike the modification time (rsync's quick check trusts only
/// size and mtime).
public struct LocalDigestCache: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// `$CCRUN_CACHE_DIR`, else `$XDG_CACHE_HOME/ccrun/digests`, else `~/.cache/ccrun/digests`.
    public static var standard: LocalDigestCache {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["CCRUN_CACHE_DIR"], !dir.isEmpty { return LocalDigestCache(directory: dir + "/digests") }
        let base = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (homeDirectory() + "/.cache")
        return LocalDigestCache(directory: base + "/ccrun/digests")
    }

    /// The identity line of a file, or nil when it cannot be stat'ed.
    static func identity(of path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return "\(st.st_dev) \(st.st_ino) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)"
    }

    func entryPath(for path: String) -> String {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        return directory + "/" + SHA256Digest.hex(absolute)
    }

    /// The digest of `bytes` (the content of `path`), from the cache when the file is unchanged.
    /// A cache that cannot be read or written only costs the hashing.
    public func sha256(ofFile path: String, bytes: Data) -> String {
        let entry = entryPath(for: path)
        let before = Self.identity(of: path)
        if let before, let text = try? String(contentsOfFile: entry, encoding: .utf8) {
            let lines = text.split(separator: "\n").map(String.init)
            if lines.count == 2, lines[0] == before, lines[1].count == 64 { return lines[1] }
        }
        let digest = SHA256Digest.hex(bytes)
        // Recorded only when the file did not change while it was hashed.
        if let before, Self.identity(of: path) == before {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try? Data("\(before)\n\(digest)\n".utf8).write(to: URL(fileURLWithPath: entry), options: .atomic)
        }
        return digest
    }
}
