import LeanFoundation
#if canImport(Glibc)
import Glibc
#endif

/// Whole files from /proc. WHY not `String(contentsOfFile:)`: Foundation sizes its read by the
/// file's reported size, which is 0 for /proc files, and returns only the first 4 KB; a busy
/// machine's mountinfo is longer, and the lab then missed its own mounts (mounting twice).
enum ProcFile {
    static func data(_ path: String) -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { return result }
            result.append(contentsOf: buffer[0..<n])
        }
    }

    static func text(_ path: String) -> String? { data(path).map { String(decoding: $0, as: UTF8.self) } }
}

/// Reads /proc to find the lab's processes without relying on pid files, so that state left by a
/// crashed run (pid files lost, processes alive) is still found and cleaned up.
enum Processes {
    static func allPIDs() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
    }

    static func commandLine(_ pid: Int32) -> [String] {
        guard let data = ProcFile.data("/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The PID-namespace ids of `pid` (`NSpid:` line): one entry when it lives in the machine's
    /// namespace, two when it is in a host's namespace (the last being its PID there).
    static func namespacePIDs(_ pid: Int32) -> [Int32] {
        guard let text = ProcFile.text("/proc/\(pid)/status"),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return [] }
        return line.dropFirst("NSpid:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Int32($0) }
    }

    static func namespaceLink(_ pid: Int32, _ kind: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/\(kind)")
    }

    static func isAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 || errno == EPERM }

    /// PIDs whose command line satisfies `matches`.
    static func matching(_ matches: ([String]) -> Bool) -> [Int32] {
        allPIDs().filter { $0 != getpid() && matches(commandLine($0)) }
    }

    /// Sends SIGKILL to `pids` and waits (up to `seconds`) until they are gone.
    static func killAndWait(_ pids: [Int32], seconds: Double = 10) throws {
        for pid in pids { kill(pid, SIGKILL) }
        try Probe.waitUntil("processes \(pids) to exit", seconds: seconds) {
            pids.allSatisfy { !isAlive($0) || isZombie($0) }
        }
    }

    static func isZombie(_ pid: Int32) -> Bool {
        guard let text = ProcFile.text("/proc/\(pid)/stat"),
              let close = text.lastIndex(of: ")") else { return false }
        return text[text.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }
}
