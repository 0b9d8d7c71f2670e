import LeanFoundation

/// An OpenSSH `known_hosts` file: which host keys are trusted for which hosts.
///
/// Understands plain patterns (`host`, `[host]:port`, wildcards, `!negation`, comma lists), hashed
/// names (`|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, written by `HashKnownHosts yes`) and the
/// `@revoked` marker; `@cert-authority` lines are ignored (certificates are not supported).
public struct KnownHosts: Sendable {
    /// The outcome of checking a server's key.
    public enum Verdict: Sendable, Equatable {
        /// A listed key for this host equals the offered one.
        case match
        /// The host has a listed key of this type, and it differs (or the offered key is revoked).
        case mismatch(expectedFingerprint: String)
        /// Nothing is listed for this host and key type.
        case unknown
    }

    /// One usable line of the file.
    public struct Entry: Sendable, Equatable {
        public enum Marker: Sendable, Equatable { case none, revoked, certAuthority }
        public var marker: Marker
        /// The host field as written (comma list of patterns or one hashed name).
        public var hostField: String
        public var keyType: String
        public var key: Data
        public var lineNumber: Int
    }

    public private(set) var entries: [Entry]

    /// Parses the text of a known_hosts file; malformed lines are skipped like OpenSSH does.
    public init(contents: String) {
        var entries: [Entry] = []
        for (index, rawLine) in contents.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            var fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            var marker = Entry.Marker.none
            if let first = fields.first, first.hasPrefix("@") {
                switch first {
                case "@revoked": marker = .revoked
                case "@cert-authority": marker = .certAuthority
                default: continue
                }
                fields.removeFirst()
            }
            guard fields.count >= 3, let key = Data(base64Encoded: fields[2]) else { continue }
            entries.append(Entry(marker: marker, hostField: fields[0], keyType: fields[1], key: key,
                                 lineNumber: index + 1))
        }
        self.entries = entries
    }

    /// Loads `path`; a missing file is an empty list (every host unknown).
    public static func load(path: String) throws -> KnownHosts {
        guard FileManager.default.fileExists(atPath: path) else { return KnownHosts(contents: "") }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return KnownHosts(contents: String(decoding: data, as: UTF8.self))
        } catch {
            throw TransportError.knownHostsFile(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
    }

    /// Checks the key a server offered for `host:port`.
    public func verify(host: String, port: Int, keyType: String, key: Data) -> Verdict {
        let name = Self.hostPattern(host: host, port: port)
        let forHost = entries.filter { $0.marker != .certAuthority && Self.entry($0, matches: name) }
        if forHost.contains(where: { $0.marker == .revoked && $0.key == key }) {
            return .mismatch(expectedFingerprint: "(offered key is marked @revoked)")
        }
        let sameType = forHost.filter { $0.marker == .none && $0.keyType == keyType }
        if sameType.contains(where: { $0.key == key }) { return .match }
        if let listed = sameType.first { return .mismatch(expectedFingerprint: Self.fingerprint(listed.key)) }
        return .unknown
    }

    /// The key types listed for `host:port`, in file order; used to ask the server for a key type
    /// we can verify, as OpenSSH does.
    public func keyTypes(host: String, port: Int) -> [String] {
        let name = Self.hostPattern(host: host, port: port)
        var types: [String] = []
        for entry in entries where entry.marker == .none && Self.entry(entry, matches: name) {
            if !types.contains(entry.keyType) { types.append(entry.keyType) }
        }
        return types
    }

    /// Appends a line for `host:port` to `path` (creating it and its directory, mode 0600/0700).
    /// With `hashed`, the host name is written as a `|1|salt|hash` entry.
    public static func append(host: String, port: Int, keyType: String, key: Data, to path: String,
                              hashed: Bool = false) throws {
        let name = hostPattern(host: host, port: port)
        let hostField: String
        if hashed {
            var salt = [UInt8](repeating: 0, count: 20)
            for i in salt.indices { salt[i] = UInt8.random(in: 0...255) }
            let hash = Digest.hmacSHA1(key: Data(salt), data: Data(name.utf8))
            hostField = "|1|\(Data(salt).base64EncodedString())|\(hash.base64EncodedString())"
        } else {
            hostField = name
        }
        let line = "\(hostField) \(keyType) \(key.base64EncodedString())\n"
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true,
                                   attributes: [.posixPermissions: 0o700])
            if !fm.fileExists(atPath: path) {
                guard fm.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                    throw TransportError.knownHostsFile(path: path, reason: "cannot create")
                }
            }
            let handle = try FileHandle(forUpdating: url)
            defer { try? handle.close() }
            let end = try handle.seekToEnd()
            if end > 0 {
                // Keep one entry per line even when the file lacks a final newline.
                try handle.seek(toOffset: end - 1)
                let last = try handle.read(upToCount: 1)
                try handle.seekToEnd()
                if last != Data("\n".utf8) { try handle.write(contentsOf: Data("\n".utf8)) }
            }
            try handle.write(contentsOf: Data(line.utf8))
        } catch let error as TransportError {
            throw error
        } catch {
            throw TransportError.knownHostsFile(path: path, reason: "cannot append: \(error.localizedDescription)")
        }
    }

    /// OpenSSH's fingerprint text: `SHA256:` and the unpadded base64 of the key blob's SHA-256.
    public static func fingerprint(_ key: Data) -> String {
        var text = Digest.sha256(key).base64EncodedString()
        while text.hasSuffix("=") { text.removeLast() }
        return "SHA256:" + text
    }

    /// The name known_hosts stores for a host: `host` on port 22, `[host]:port` otherwise.
    public static func hostPattern(host: String, port: Int) -> String {
        port == 22 ? host : "[\(host)]:\(port)"
    }

    // MARK: matching

    static func entry(_ entry: Entry, matches name: String) -> Bool {
        if entry.hostField.hasPrefix("|1|") { return hashedField(entry.hostField, matches: name) }
        var matched = false
        for pattern in entry.hostField.split(separator: ",").map(String.init) {
            if pattern.hasPrefix("!") {
                if Glob.matches(pattern: String(pattern.dropFirst()).lowercased(), name.lowercased()) {
                    return false
                }
            } else if Glob.matches(pattern: pattern.lowercased(), name.lowercased()) {
                matched = true
            }
        }
        return matched
    }

    static func hashedField(_ field: String, matches name: String) -> Bool {
        let parts = field.split(separator: "|", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[0] == "1",
              let salt = Data(base64Encoded: String(parts[1])),
              let hash = Data(base64Encoded: String(parts[2])) else { return false }
        // Hashed names are of the lower-cased host, as OpenSSH writes them.
        return Digest.hmacSHA1(key: salt, data: Data(name.lowercased().utf8)) == hash
    }
}

/// OpenSSH-style wildcard patterns: `*` any run of characters, `?` exactly one.
enum Glob {
    static func matches(pattern: String, _ text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var pi = 0, ti = 0, starP = -1, starT = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
                pi += 1; ti += 1
            } else if pi < p.count, p[pi] == "*" {
                starP = pi; starT = ti; pi += 1
            } else if starP >= 0 {
                pi = starP + 1; starT += 1; ti = starT
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}
