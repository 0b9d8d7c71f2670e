import LeanFoundation
#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock(2)` on a file, held until `release()` or deinit.
///
/// Two lab instances (main and scratch) share the caches, and a crashed `ccrun` must never leave a
/// lock behind: flock locks vanish with the process, unlike lock files.
final class FileLock: @unchecked Sendable {  // the descriptor is only touched in init/release
    private var descriptor: Int32

    init(path: String) throws {
        try FileManager.default.createDirectory(atPath: path.deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ShellError(command: "open \(path)", status: errno, stderr: String(cString: strerror(errno)))
        }
        guard flock(descriptor, LOCK_EX) == 0 else {
            throw ShellError(command: "flock \(path)", status: errno, stderr: String(cString: strerror(errno)))
        }
    }

    func release() {
        if descriptor >= 0 { close(descriptor); descriptor = -1 }
    }

    deinit { release() }
}

/// The shared, read-only lower layer of every host: `debootstrap --variant=minbase bookworm` plus the
/// lab's customization, built once and reused until the package list or customization changes.
struct RootfsCache {
    let spec: LabSpec
    let shell: Shell
    let log: @Sendable (String) -> Void

    var packages: [String] { LabPackages.rootfs(for: spec.hostInit) }
    /// The sysv stamp keeps its earlier form, so existing sysv caches stay current.
    var stamp: String {
        "rev=\(HostFiles.rootfsRevision)" + (spec.hostInit == .sysv ? "" : " init=\(spec.hostInit.rawValue)")
            + " include=\(packages.joined(separator: ","))"
    }
    var stampPath: String { "\(spec.rootfsPath)/etc/ccrun-lab-rootfs" }
    /// A random token written at each build. A host's writable layer records the build it was made
    /// on: an overlay whose lower layer was rebuilt under it fails in odd ways (ENOENT on create),
    /// so `up` gives such a host a fresh layer instead (see `Lab.ensureFilesystem`).
    var buildPath: String { "\(spec.rootfsPath)/etc/ccrun-lab-rootfs-build" }

    var build: String? {
        (try? String(contentsOfFile: buildPath, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    var isCurrent: Bool {
        (try? String(contentsOfFile: stampPath, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) == stamp && build != nil
    }

    func ensure() throws {
        if isCurrent { return }
        guard shell.succeeds("which", ["debootstrap"]) else { throw LabError.missingTool("debootstrap", package: "debootstrap") }
        let mirror = try DebianMirror.find()
        log("building the \(spec.hostInit.rawValue) root filesystem cache (debootstrap minbase bookworm from \(mirror), about a minute)")
        let partial = spec.rootfsPath + ".partial"
        try shell.run("rm", ["-rf", partial])
        try shell.run("mkdir", ["-p", spec.cacheDirectory])
        try shell.run("debootstrap", ["--variant=minbase", "--include=" + packages.joined(separator: ","),
                                      "bookworm", partial, mirror])
        try customize(partial)
        try shell.run("rm", ["-rf", spec.rootfsPath])
        try shell.run("mv", [partial, spec.rootfsPath])
    }

    /// Host-independent changes: no shared host keys, the `deploy` sudo user, init and sshd config.
    private func customize(_ root: String) throws {
        try shell.bash("""
            rm -f \(root)/etc/ssh/ssh_host_*
            chroot \(root) useradd -m -s /bin/bash deploy
            chroot \(root) usermod -p '*' deploy
            chroot \(root) apt-get clean
            rm -rf \(root)/var/lib/apt/lists/* \(root)/etc/apt/sources.list.d/*
            mkdir -p \(root)/etc/ccrun-lab \(root)/etc/sudoers.d \(root)/etc/ssh/sshd_config.d
            ln -sf /proc/self/mounts \(root)/etc/mtab
            """, label: "customize root filesystem \(root)")
        switch spec.hostInit {
        case .sysv:
            try shell.run("ln", ["-sf", "ccrun-lab-init", "\(root)/sbin/init"])
            try write(HostFiles.initScript + "\n", to: "\(root)/sbin/ccrun-lab-init", mode: 0o755)
            try write(HostFiles.runlevelScript + "\n", to: "\(root)/sbin/runlevel", mode: 0o755)
            try write(HostFiles.ganeshaInitScript + "\n", to: "\(root)/etc/init.d/nfs-ganesha", mode: 0o755)
        case .systemd:
            // systemd-sysv's /sbin/init stays; each host gets its own machine-id at provisioning
            // and its masked units with the lab-wide files (`Lab.writeCommonFiles`).
            try shell.run("truncate", ["-s", "0", "\(root)/etc/machine-id"])
        }
        try write(HostFiles.sshdConfig + "\n", to: "\(root)/etc/ssh/sshd_config.d/ccrun-lab.conf", mode: 0o644)
        try write(HostFiles.sudoers, to: "\(root)/etc/sudoers.d/ccrun-lab-deploy", mode: 0o440)
        try write(randomToken(16) + "\n", to: "\(root)/etc/ccrun-lab-rootfs-build", mode: 0o644)
        try write(stamp + "\n", to: "\(root)/etc/ccrun-lab-rootfs", mode: 0o644)
    }
}

/// The lab's local apt repository: the packages of `LabPackages.repository` and their dependency
/// closure, downloaded once with the machine's apt and indexed with dpkg-scanpackages.
struct PackageRepositoryCache {
    let spec: LabSpec
    let shell: Shell
    let log: @Sendable (String) -> Void

    var stamp: String { LabPackages.repository.sorted().joined(separator: " ") }
    var stampPath: String { "\(spec.debsPath)/.ccrun-lab-packages" }

    func ensure() throws {
        let current = (try? String(contentsOfFile: stampPath, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if current == stamp, FileManager.default.fileExists(atPath: "\(spec.debsPath)/Packages.gz") { return }
        guard shell.succeeds("which", ["dpkg-scanpackages"]) else {
            throw LabError.missingTool("dpkg-scanpackages", package: "dpkg-dev")
        }
        log("fetching \(LabPackages.repository.count) packages and their dependencies into \(spec.debsPath)")
        let closure = try shell.run("apt-cache", ["depends", "--recurse", "--no-recommends", "--no-suggests",
                                                  "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances"]
                                    + LabPackages.repository)
        let names = Set(closure.stdout.split(separator: "\n").map(String.init)
            .filter { $0.first.map { $0.isLetter || $0.isNumber } ?? false })
        try shell.run("mkdir", ["-p", spec.debsPath])
        try shell.bash("cd \(shellQuote(spec.debsPath)) && apt-get download \(names.sorted().joined(separator: " "))",
                       label: "apt-get download (\(names.count) packages into \(spec.debsPath))")
        try shell.bash("""
            cd \(shellQuote(spec.debsPath))
            dpkg-scanpackages --multiversion . /dev/null > Packages.tmp 2>/dev/null
            gzip -9c Packages.tmp > Packages.gz.tmp
            mv Packages.tmp Packages
            mv Packages.gz.tmp Packages.gz
            """, label: "dpkg-scanpackages in \(spec.debsPath)")
        try write(stamp + "\n", to: stampPath, mode: 0o644)
    }
}

/// Finds the machine's configured Debian mirror (deb822 `.sources` or one-line `.list` files).
enum DebianMirror {
    static func find() throws -> String {
        var files = ["/etc/apt/sources.list"]
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/etc/apt/sources.list.d") {
            files += entries.sorted().filter { $0.hasSuffix(".sources") || $0.hasSuffix(".list") }
                .map { "/etc/apt/sources.list.d/\($0)" }
        }
        for file in files {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            if let uri = file.hasSuffix(".sources") ? fromDeb822(text) : fromOneLine(text) { return uri }
        }
        throw LabError.noDebianMirror("no enabled 'bookworm' main suite found")
    }

    static func fromDeb822(_ text: String) -> String? {
        for stanza in text.components(separatedBy: "\n\n") {
            var fields: [String: String] = [:]
            for line in stanza.split(separator: "\n") where !line.hasPrefix("#") {
                let parts = line.split(separator: ":", maxSplits: 1)
                if parts.count == 2 {
                    fields[parts[0].trimmingCharacters(in: .whitespaces).lowercased()] =
                        parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
            guard fields["enabled"]?.lowercased() != "no",
                  (fields["types"] ?? "").split(separator: " ").contains("deb"),
                  (fields["suites"] ?? "").split(separator: " ").contains("bookworm"),
                  let uri = fields["uris"]?.split(separator: " ").first else { continue }
            return String(uri)
        }
        return nil
    }

    static func fromOneLine(_ text: String) -> String? {
        for line in text.split(separator: "\n") {
            var words = line.split(separator: " ").map(String.init)
            guard words.first == "deb" else { continue }
            words.removeFirst()
            if words.first?.hasPrefix("[") == true {
                while let word = words.first, !word.hasSuffix("]") { words.removeFirst() }
                if !words.isEmpty { words.removeFirst() }
            }
            if words.count >= 2, words[1] == "bookworm" { return words[0] }
        }
        return nil
    }
}

/// Writes `text` atomically with `mode`, creating the parent directory.
func write(_ text: String, to path: String, mode: Int) throws {
    let directory = path.deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let temp = path + ".tmp-ccrun"
    let descriptor = open(temp, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, mode_t(mode))
    guard descriptor >= 0 else {
        throw ShellError(command: "create \(temp)", status: errno, stderr: String(cString: strerror(errno)))
    }
    let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    try handle.write(contentsOf: Data(text.utf8))
    try handle.close()
    _ = chmod(temp, mode_t(mode))
    if rename(temp, path) != 0 {
        throw ShellError(command: "rename \(temp) \(path)", status: errno, stderr: String(cString: strerror(errno)))
    }
}
