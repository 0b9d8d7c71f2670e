import LeanFoundation

/// Packed uploads kept on disk between runs, so an apply that ships the 31 MB ccr packs it once
/// per ccr build, not once per run (gzip took seconds of every such apply; bench/RESULTS.md
/// "## package").
///
/// One file per payload and codec, named by the payload's SHA-256 and the codec: the first line
/// is the SHA-256 of the packed bytes that follow. An entry whose bytes do not match that line
/// (truncated, damaged, a half-written file from another tool) is never used: it is removed and
/// the payload packed again. The target checks the unpacked file's digest too, so even a cache
/// that lied could not install other bytes. Entries are written to a temporary file and renamed
/// into place (0600 in a 0700 directory: the payloads may be private); past `maxBytes` the
/// least recently used entries go. A cache that cannot be read or written only costs the packing.
public struct PackedUploadCache: Sendable {
    public let directory: String
    public let maxBytes: Int

    public init(directory: String, maxBytes: Int = 512 << 20) {
        self.directory = directory
        self.maxBytes = maxBytes
    }

    /// `$CCRUN_CACHE_DIR/packed`, else `$XDG_CACHE_HOME/ccrun/packed`, else `~/.cache/ccrun/packed`
    /// (beside `LocalDigestCache`'s digests).
    public static var standard: PackedUploadCache {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["CCRUN_CACHE_DIR"], !dir.isEmpty { return PackedUploadCache(directory: dir + "/packed") }
        let base = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (homeDirectory() + "/.cache")
        return PackedUploadCache(directory: base + "/ccrun/packed")
    }

    /// What a lookup found.
    public enum Lookup: Equatable, Sendable {
        case hit(Data)
        case miss
        /// An entry was there but its bytes did not match its digest: removed.
        case damaged
    }

    func entryPath(sha256: String, codec: UploadCompression) -> String {
        directory + "/" + sha256 + "." + codec.rawValue
    }

    /// The packed bytes of the payload with digest `sha256`, checked against the entry's own digest.
    public func lookup(sha256: String, codec: UploadCompression) -> Lookup {
        let path = entryPath(sha256: sha256, codec: codec)
        guard let entry = FileManager.default.contents(atPath: path) else { return .miss }
        guard let newline = entry.firstIndex(of: UInt8(ascii: "\n")) else {
            unlink(path)
            return .damaged
        }
        let recorded = String(decoding: entry[..<newline], as: UTF8.self)
        let packed = Data(entry[(newline + 1)...])
        guard !packed.isEmpty, recorded.count == 64, SHA256Digest.hex(packed) == recorded else {
            unlink(path)
            return .damaged
        }
        // Used now: the eviction keeps recently used entries.
        _ = utimensat(AT_FDCWD, path, nil, 0)
        return .hit(packed)
    }

    /// Stores `packed` for the payload `sha256`, atomically, then evicts the oldest past `maxBytes`.
    public func store(_ packed: Data, sha256: String, codec: UploadCompression) {
        guard Self.isDigest(sha256), packed.count + 65 <= maxBytes else { return }
        guard (try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                         attributes: [.posixPermissions: 0o700])) != nil else { return }
        _ = chmod(directory, 0o700)
        let path = entryPath(sha256: sha256, codec: codec)
        var template = Array((path + ".tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return }
        let temporary = String(cString: template)
        _ = fchmod(fd, 0o600)
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: Data((SHA256Digest.hex(packed) + "\n").utf8))
            try handle.write(contentsOf: packed)
            try handle.close()
        } catch {
            unlink(temporary)
            return
        }
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            return
        }
        evict()
    }

    /// Removes the least recently used entries (and temporary files older than a minute, left by
    /// a killed run) until the entries fit in `maxBytes`.
    func evict() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        struct Entry { let path: String; let size: Int; let used: Int }
        var entries: [Entry] = []
        let now = Int(time(nil))
        for name in names {
            let path = directory + "/" + name
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            if name.contains(".tmp-") {
                if now - Int(st.st_mtim.tv_sec) > 60 { unlink(path) }
                continue
            }
            entries.append(Entry(path: path, size: Int(st.st_size), used: Int(st.st_mtim.tv_sec) * 1_000_000_000 + Int(st.st_mtim.tv_nsec)))
        }
        var total = entries.reduce(0) { $0 + $1.size }
        for entry in entries.sorted(by: { $0.used < $1.used }) where total > maxBytes {
            if unlink(entry.path) == 0 { total -= entry.size }
        }
    }

    static func isDigest(_ text: String) -> Bool {
        text.count == 64 && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }
}
