import LeanFoundation

public enum PackageManager: String, Codable, Sendable, CaseIterable { case apt, dnf, yum }
public enum InitSystem: String, Codable, Sendable { case systemd, sysv }

/// Distribution, package manager, init system and tools present: probed once per host per run.
public struct SystemFacts: Sendable, Hashable {
    public var distribution: String
    public var version: String
    public var tools: Set<String>
    public var initSystem: InitSystem
    public var bootID: String

    public init(distribution: String, version: String, tools: Set<String>, initSystem: InitSystem, bootID: String = "") {
        self.distribution = distribution; self.version = version; self.tools = tools
        self.initSystem = initSystem; self.bootID = bootID
    }

    /// apt on Debian-likes; dnf before yum on RPM systems.
    public var packageManager: PackageManager? {
        if tools.contains("apt-get") { return .apt }
        if tools.contains("dnf") { return .dnf }
        if tools.contains("yum") { return .yum }
        return nil
    }

    public static func debian(init initSystem: InitSystem = .sysv) -> SystemFacts {
        SystemFacts(distribution: "debian", version: "12", tools: Set(["apt-get", "dpkg-query", "update-rc.d", "service", "blkid", "mkfs.ext4", "sha256sum", "bash"]).union(initSystem == .systemd ? ["systemctl"] : []), initSystem: initSystem)
    }
    public static func centos(_ pm: PackageManager = .yum, init initSystem: InitSystem = .sysv) -> SystemFacts {
        SystemFacts(distribution: "centos", version: pm == .yum ? "6" : "8", tools: Set([pm.rawValue, "rpm", "chkconfig", "service", "blkid", "mkfs.ext4", "sha256sum", "bash"]).union(initSystem == .systemd ? ["systemctl"] : []), initSystem: initSystem)
    }
}

public enum SystemProbe {
    public static let key = "system"
    static let tools = ["apt-get", "dpkg-query", "dnf", "yum", "rpm", "systemctl", "chkconfig", "update-rc.d", "service", "bash", "blkid", "mkfs.ext4", "sha256sum", "base64"]
        + UploadCompression.allCases.map(\.rawValue)
    public static let probe = Probe<SystemFacts>(FactQuery(key: key, script: """
        if [ -r /etc/os-release ]; then . /etc/os-release; fi
        echo "id=${ID:-unknown}"; echo "version=${VERSION_ID:-}"
        for t in \(tools.joined(separator: " ")); do command -v "$t" >/dev/null 2>&1 && echo "has=$t"; done
        if [ -d /run/systemd/system ]; then echo init=systemd; else echo init=sysv; fi
        b=; read -r b < /proc/sys/kernel/random/boot_id 2>/dev/null; echo "boot=$b"
        """)) { out in
        var f = SystemFacts(distribution: "unknown", version: "", tools: [], initSystem: .sysv)
        for line in out.lines {
            guard let eq = line.firstIndex(of: "=") else { continue }
            let k = line[..<eq], v = String(line[line.index(after: eq)...])
            switch k {
            case "id": f.distribution = v
            case "version": f.version = v
            case "has": f.tools.insert(v)
            case "init": f.initSystem = v == "systemd" ? .systemd : .sysv
            case "boot": f.bootID = v
            default: break
            }
        }
        return f
    }
}

/// What is at a path.
public struct FileState: Sendable, Hashable {
    public enum Kind: String, Sendable, Codable { case file, directory, symlink, other }
    public var kind: Kind
    public var mode: String      // octal, e.g. "644"
    public var owner: String
    public var group: String
    public var size: Int
    public var sha256: String?
    /// Contents (only for regular files within the probe's size limit).
    public var content: Data?

    public init(kind: Kind, mode: String, owner: String, group: String, size: Int = 0, sha256: String? = nil, content: Data? = nil) {
        self.kind = kind; self.mode = mode; self.owner = owner; self.group = group
        self.size = size; self.sha256 = sha256; self.content = content
    }
    public static func file(_ content: String, mode: String = "644", owner: String = "root", group: String = "root") -> FileState {
        let d = Data(content.utf8)
        return FileState(kind: .file, mode: mode, owner: owner, group: group, size: d.count, sha256: SHA256Digest.hex(d), content: d)
    }
    public static func directory(mode: String = "755", owner: String = "root", group: String = "root") -> FileState {
        FileState(kind: .directory, mode: mode, owner: owner, group: group)
    }
}

public enum FileProbe {
    /// Largest file whose content is read back for diffs and undo (bigger files: hash only).
    public static let contentLimit = 1 << 20

    public static func key(_ path: String, content: Bool) -> String { (content ? "file+content:" : "file:") + path }
    public static func existsKey(_ path: String) -> String { "file-exists:" + path }

    /// Whether anything (a symlink included) is at `path`: shell builtins, nothing hashed.
    public static func exists(_ path: String) -> Probe<Bool> {
        let p = Shell.quote(path)
        return Probe(FactQuery(key: existsKey(path), script: "if [ -e \(p) ] || [ -L \(p) ]; then echo yes; else echo no; fi", isolation: .inline)) {
            $0.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "yes"
        }
    }

    /// Where the target remembers digests of files ccrun uploaded (see `UploadAction`).
    public static let digestCacheDirectory = "/var/lib/ccrun/digests"

    /// The file's identity on the target: device, inode, size, modification and change times
    /// (nanoseconds). Any write, replacement, chmod or touch changes it; the change time cannot
    /// be set back without root changing the clock.
    /// The identity part of `FactBatch.statFields`.
    static let identityFormat = "%d %i %s %y %z"
    static func identityCommand(_ quotedPath: String) -> String { "stat -c '\(identityFormat)' \(quotedPath)" }

    /// Printed by a probe that hashed a file it could not record (no lock held, or the file
    /// changed while hashed): a run seeing it takes the lock so the digest gets recorded.
    static let unrecordedMarker = "digest-unrecorded"
    static func digestUnrecorded(_ out: FactOutput) -> Bool { out.lines.contains { $0 == unrecordedMarker } }

    static func digestEntry(_ path: String) -> String { digestCacheDirectory + "/" + SHA256Digest.hex(path) }

    /// Records the digest `sha256` (a shell word, e.g. `"$s"`) of `path` under its identity
    /// `identity` (a shell word; by default the file's identity as it is now); never fails the caller.
    public static func recordDigestScript(path: String, sha256: String, identity: String? = nil) -> String {
        let e = Shell.quote(digestEntry(path))
        let id = identity ?? "\"$(\(identityCommand(Shell.quote(path))))\""
        return "{ mkdir -p \(digestCacheDirectory) && { echo \(id); echo \(sha256); } > \(e); } 2>/dev/null || rm -f \(e); true"
    }

    /// `content: true` reads small files back (diffs, undo) and hashes them; `content: false`
    /// (binaries) takes the digest the last upload recorded when the file is unchanged since, so
    /// an audit of a 100 MB binary costs a `stat`, not a full read.
    public static func probe(_ path: String, content: Bool = true) -> Probe<FileState?> {
        let p = Shell.quote(path)
        let hash = "set -- $(sha256sum < \(p)); printf 'sha256 %s\\n' \"$1\""
        let digestPart: String
        if content {
            // Small files come back whole and are hashed on the controller (see `parse`).
            digestPart = """
                if [ "${st##*|}" -le \(contentLimit) ]; then printf 'content '; base64 -w0 \(p); echo; else \(hash); fi
                """
        } else {
            // A file ccrun did not upload (placed by hand or by another tool) is hashed once and,
            // in an apply run holding the host's lock (never in a dry-run), recorded when it did not
            // change while being hashed, so the next runs only stat it.
            let e = Shell.quote(digestEntry(path))
            digestPart = """
                ccrun_d1=; ccrun_d2=; [ -r \(e) ] && { IFS= read -r ccrun_d1; IFS= read -r ccrun_d2; } < \(e)
                if [ -n "$ccrun_d2" ] && [ "$ccrun_d1" = "$k" ]; then printf 'sha256 %s\\n' "$ccrun_d2"
                else \(hash)
                if [ "${ccrun_locked:-0}" = 1 ] && [ -n "$1" ] && [ "$(\(identityCommand(p)))" = "$k" ]; then \(recordDigestScript(path: path, sha256: "\"$1\"", identity: "\"$k\"")); else echo \(unrecordedMarker); fi
                fi
                """
        }
        // The batch's shared `stat` (`FactBatch.statTable`) gives the state and the identity (`k`,
        // after the `/`, which no field before it can contain); a path with a newline or a `|`,
        // which the table's lines cannot hold, gets a `stat` of its own.
        let lookup: String, shared: String?
        if path.contains("\n") || path.contains("|") {
            shared = nil
            lookup = """
                if [ -L \(p) ] || [ -e \(p) ]; then
                st=$(stat -c '\(FactBatch.statFields)' \(p))
                """
        } else {
            shared = path
            lookup = """
                st=${\(FactBatch.statVariable(for: path)):-}
                if [ -n "$st" ]; then
                """
        }
        return Probe(FactQuery(key: key(path, content: content), script: """
            \(lookup)
            k=${st#*/}; st=${st%%/*}; printf 'stat %s\\n' "$st"
            if [ -f \(p) ] && [ ! -L \(p) ]; then
            \(digestPart)
            fi
            else echo absent; fi
            """, isolation: .inline, statPath: shared)) { out in try parse(out, key: key(path, content: content)) }
    }

    static func parse(_ out: FactOutput, key: String) throws -> FileState? {
        var state: FileState?
        for line in out.lines {
            if line == "absent" { return nil }
            if line.hasPrefix("stat ") {
                let f = line.dropFirst(5).split(separator: "|", omittingEmptySubsequences: false).map(String.init)
                guard f.count == 5 else { throw FactError.unparsable(key: key, detail: String(line)) }
                let kind: FileState.Kind = f[0].hasPrefix("regular") ? .file : f[0] == "directory" ? .directory : f[0] == "symbolic link" ? .symlink : .other
                state = FileState(kind: kind, mode: f[1], owner: f[2], group: f[3], size: Int(f[4]) ?? 0)
            } else if line.hasPrefix("sha256 ") {
                state?.sha256 = String(line.dropFirst(7))
            } else if line.hasPrefix("content ") {
                state?.content = Data(base64Encoded: String(line.dropFirst(8))) ?? Data()
            } else if line == "content" {
                state?.content = Data()
            }
        }
        guard var state else { throw FactError.unparsable(key: key, detail: "no stat line") }
        if state.sha256 == nil, let content = state.content { state.sha256 = SHA256Digest.hex(content) }
        return state
    }
}

/// Installed package names, per package database present on the host.
public struct InstalledPackages: Sendable, Hashable {
    public var dpkg: Set<String>?
    public var rpm: Set<String>?
    public init(dpkg: Set<String>? = nil, rpm: Set<String>? = nil) { self.dpkg = dpkg; self.rpm = rpm }
    public func names(for manager: PackageManager) -> Set<String> {
        (manager == .apt ? dpkg : rpm) ?? []
    }
}

public enum PackagesProbe {
    public static let key = "packages"
    static let installed = "install ok installed|"
    /// What `dpkg-query -W` reads: the status file, and the journal of changes dpkg has not yet
    /// merged into it (a file appears in `updates/` per change). Not on hosts with rpm, whose
    /// database the list also holds.
    static let dpkgDatabase = AnswerSource(paths: ["/var/lib/dpkg/status", "/var/lib/dpkg/updates"], onlyIf: "! command -v rpm")
    public static let probe = Probe<InstalledPackages>(FactQuery(key: key, script: """
        if command -v dpkg-query >/dev/null 2>&1; then echo '[dpkg]'; dpkg-query -W -f='${Status}|${Package}\\n'; fi
        if command -v rpm >/dev/null 2>&1; then echo '[rpm]'; rpm -qa --qf '%{NAME}\\n' 2>/dev/null; fi
        """, isolation: .inline, source: dpkgDatabase)) { out in
        var result = InstalledPackages()
        var section = ""
        for line in out.lines {
            if line == "[dpkg]" { section = "dpkg"; result.dpkg = result.dpkg ?? [] ; continue }
            if line == "[rpm]" { section = "rpm"; result.rpm = result.rpm ?? []; continue }
            // dpkg lists every package it knows (removed ones keep their conffiles): only
            // "install ok installed" counts. Filtered here rather than by a `sed` on the host.
            if section == "dpkg" {
                if line.hasPrefix(installed) { result.dpkg?.insert(String(line.dropFirst(installed.count))) }
            } else if section == "rpm" { result.rpm?.insert(String(line)) }
        }
        return result
    }
}

/// A mounted file system, from /proc/mounts.
public struct MountEntry: Sendable, Hashable {
    public var device: String, mountPoint: String, type: String
    public init(device: String, mountPoint: String, type: String) { self.device = device; self.mountPoint = mountPoint; self.type = type }
}

public enum MountsProbe {
    public static let key = "mounts"
    public static let probe = Probe<[MountEntry]>(FactQuery(key: key, script: "cat /proc/mounts", isolation: .inline)) { out in
        out.lines.compactMap { line in
            let f = line.split(separator: " ")
            guard f.count >= 3 else { return nil }
            return MountEntry(device: unescapeOctal(String(f[0])), mountPoint: unescapeOctal(String(f[1])), type: String(f[2]))
        }
    }
    /// /proc/mounts and fstab escape spaces as \040.
    static func unescapeOctal(_ s: String) -> String {
        s.replacingOccurrences(of: "\\040", with: " ").replacingOccurrences(of: "\\011", with: "\t")
    }
}

/// What a block device holds.
public enum BlockDeviceState: Sendable, Hashable {
    case missing
    case filesystem(String)
    /// No recognised file system but non-zero bytes at its start (partition table, data...).
    case unknownData
    case blank
}

public enum BlockDeviceProbe {
    public static func probe(_ device: String) -> Probe<BlockDeviceState> {
        let d = Shell.quote(device)
        return Probe(FactQuery(key: "blockdev:" + device, script: """
            if [ ! -e \(d) ]; then echo missing; exit 0; fi
            t=$(blkid -p -o value -s TYPE \(d) 2>/dev/null)
            if [ -n "$t" ]; then echo "fs $t"; exit 0; fi
            n=$(head -c 1048576 \(d) | tr -d '\\000' | wc -c)
            if [ "$n" -gt 0 ]; then echo data; else echo blank; fi
            """)) { out in
            let line = out.lines.first.map(String.init) ?? ""
            if line == "missing" { return .missing }
            if line.hasPrefix("fs ") { return .filesystem(String(line.dropFirst(3))) }
            if line == "data" { return .unknownData }
            if line == "blank" { return .blank }
            throw FactError.unparsable(key: "blockdev:" + device, detail: line)
        }
    }
}

/// Exit status of a read-only condition command (for guarded commands' `unless`).
public enum ConditionProbe {
    public static func probe(_ command: String) -> Probe<Bool> {
        Probe(FactQuery(key: "cond:" + command, script: command)) { $0.status == 0 }
    }
}
