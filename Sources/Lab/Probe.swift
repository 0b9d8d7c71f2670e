import LeanFoundation
#if canImport(Glibc)
import Glibc
#endif

/// Checks services by what they do (a port answers), never by an init script's exit code:
/// in a light host `service X start` can exit 0 without serving anything.
enum Probe {
    /// Connects to `address:port` (IPv4) within `timeout` seconds; returns the first bytes the
    /// server sent within that time (possibly empty), or nil when the connection failed.
    static func connect(_ address: String, _ port: Int, timeout: Double = 1.0, readBanner: Bool = false) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &addr.sin_addr) == 1 else { return nil }
        let result = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        let millis = Int32(timeout * 1000)
        if result != 0 {
            guard errno == EINPROGRESS else { return nil }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&pfd, 1, millis) == 1 else { return nil }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { return nil }
        }
        guard readBanner else { return "" }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, millis) == 1 else { return "" }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = read(fd, &buffer, buffer.count)
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
    }

    /// True when an SSH server answers with its identification string.
    static func sshAnswers(_ address: String, port: Int = 22, timeout: Double = 1.0) -> Bool {
        connect(address, port, timeout: timeout, readBanner: true)?.hasPrefix("SSH-") ?? false
    }

    /// Polls `condition` every 100 ms until it holds or `seconds` pass.
    static func waitUntil(_ what: String, seconds: Double, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return }
            usleep(100_000)
        }
        if condition() { return }
        throw LabError.timeout(what)
    }
}
