import Foundation
import Store
import SupportKit

/// `ccr web` as a real process on loopback, for tests that behave like hostile visitors: the
/// built `ccr` binary, its own config file, optionally a lower open-file limit (`ulimit -n`).
/// Its memory and open sockets are read from /proc.
final class WebProcess: @unchecked Sendable {
    // @unchecked: each instance is driven by one test task.
    let process = Process()
    let directory: URL
    let port: Int
    private let errorLog: URL

    static var binary: String? { CCRExecutable.path }

    static var available: Bool { binary != nil || Fixtures.isCI }

    /// Starts `ccr web` over `database` (a path, or a whole `--db` value when it contains ':')
    /// with `[web]` settings `web` (key = value lines).
    init(database: String, archive: String? = nil, web: [String: String] = [:], fileLimit: Int? = nil) async throws {
        guard let binary = Self.binary else { throw WebProcessError.noBinary }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-web-process-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("ccr.conf")
        let lines = web.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }
        try (["[web]"] + lines).joined(separator: "\n").appending("\n").write(to: config, atomically: true, encoding: .utf8)
        let ready = directory.appendingPathComponent("ready").path
        errorLog = directory.appendingPathComponent("stderr.log")
        _ = FileManager.default.createFile(atPath: errorLog.path, contents: nil)
        let db = database.contains(":") ? database : "sqlite:" + database
        var arguments = [binary, "web", "--config", config.path, "--db", db, "--archive", archive ?? directory.appendingPathComponent("archive").path,
                         "--listen", "127.0.0.1:0", "--ready-file", ready]
        if let fileLimit {
            // The shell lowers the limit and then becomes ccr (exec): the pid stays ccr's.
            arguments = ["/bin/sh", "-c", "ulimit -n \(fileLimit) && exec \"$0\" \"$@\""] + arguments
        }
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        process.standardError = try FileHandle(forWritingTo: errorLog)
        try process.run()
        let found = try await CCRExecutable.readyPort(file: ready)
        guard let found else {
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            let log = (try? String(contentsOf: errorLog, encoding: .utf8)) ?? ""
            try? FileManager.default.removeItem(at: directory)
            throw WebProcessError.notReady(log: log)
        }
        port = found
    }

    var pid: Int32 { process.processIdentifier }

    /// Resident memory in bytes (VmRSS).
    func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return 0 }
        return kb * 1024
    }

    /// Open sockets (connections and the listener).
    func openSockets() -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return fds.filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)"))?.hasPrefix("socket:") == true }.count
    }

    /// What ccr web wrote to stderr (its log).
    func log() -> String { (try? String(contentsOf: errorLog, encoding: .utf8)) ?? "" }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

enum WebProcessError: Error, CustomStringConvertible {
    case noBinary
    case notReady(log: String)

    var description: String {
        switch self {
        case .noBinary: "the ccr executable was not found: run `swift build --build-tests` or set CCR_BINARY"
        case .notReady(let log): "ccr web did not write its ready file; its log:\n\(log)"
        }
    }
}

/// A TCP client socket on loopback, in blocking mode with timeouts: what an attacker's script does.
final class LoopbackSocket: @unchecked Sendable {
    // @unchecked: one owner at a time.
    let fd: Int32

    /// `receiveBuffer`: SO_RCVBUF set before connecting (a viewer that wants the server's
    /// buffers to fill fast).
    init(port: Int, receiveBuffer: Int? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SocketFailure(operation: "socket", code: errno) }
        if var size = receiveBuffer.map(Int32.init) {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let code = errno
            close(fd)
            throw SocketFailure(operation: "connect", code: code)
        }
    }

    private var isOpen = true

    deinit { closeNow() }

    /// Closes at once (not when the last reference goes).
    func closeNow() {
        if isOpen { close(fd) }
        isOpen = false
    }

    func send(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw SocketFailure(operation: "send", code: errno) }
            bytes = bytes.dropFirst(n)
        }
    }

    /// What the peer sends within `timeout`, until it closes (`closed` true) or goes quiet.
    func receive(timeout: Duration, until stop: (([UInt8]) -> Bool)? = nil) -> (bytes: [UInt8], closed: Bool) {
        let deadline = ContinuousClock.now + timeout
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            guard poll(&poller, 1, ms) > 0 else { continue }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return (bytes, true) }
            bytes += chunk[0..<n]
            if let stop, stop(bytes) { return (bytes, false) }
        }
        return (bytes, false)
    }

    /// True when the peer has closed (or reset) the connection. Looks at the TCP state, not at
    /// the data: a viewer that never reads has the server's unread data before the close.
    func isClosedByPeer() -> Bool {
        var info = tcp_info()
        var length = socklen_t(MemoryLayout<tcp_info>.size)
        guard getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, &info, &length) == 0 else { return true }
        // TCP_CLOSE_WAIT (8): the peer sent its FIN; TCP_CLOSE (7): reset.
        return info.tcpi_state == 8 || info.tcpi_state == 7
    }
}

struct SocketFailure: Error, CustomStringConvertible {
    let operation: String
    let code: Int32
    var description: String { "\(operation): \(String(cString: strerror(code)))" }
}

/// One HTTP/1.1 exchange over a fresh connection (`Connection: close`), timed.
struct HTTPExchange {
    let status: Int
    let head: String
    let body: [UInt8]
    let seconds: Double

    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        for line in head.split(separator: "\r\n").dropFirst() {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == name.lowercased() { return parts[1].trimmingCharacters(in: .whitespaces) }
        }
        return nil
    }

    /// `getBlocking` on a thread of its own: the tests wait on sockets for seconds, and doing that on
    /// the cooperative pool (two threads here) would starve every other test's tasks.
    static func get(_ path: String, port: Int, timeout: Duration = .seconds(30)) async throws -> HTTPExchange {
        try await offThePool { try getBlocking(path, port: port, timeout: timeout) }
    }

    static func getBlocking(_ path: String, port: Int, timeout: Duration) throws -> HTTPExchange {
        let started = ContinuousClock.now
        let socket = try LoopbackSocket(port: port)
        try socket.send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        // Until the peer closes or, as a browser does, until the body its Content-Length announces is in.
        let (bytes, _) = socket.receive(timeout: timeout, until: Self.isComplete)
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard let split = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else {
            return HTTPExchange(status: 0, head: "", body: bytes, seconds: seconds)
        }
        let head = String(decoding: bytes[..<split.lowerBound], as: UTF8.self)
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        var body = Array(bytes[split.upperBound...])
        if head.lowercased().contains("transfer-encoding: chunked") { body = dechunk(body) }
        return HTTPExchange(status: status, head: head, body: body, seconds: seconds)
    }

    static func isComplete(_ bytes: [UInt8]) -> Bool {
        guard let split = bytes.firstRange(of: Array("\r\n\r\n".utf8)) else { return false }
        let head = String(decoding: bytes[..<split.lowerBound], as: UTF8.self).lowercased()
        guard let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }),
              let length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) else { return false }
        return bytes.count - split.upperBound >= length
    }

    static func dechunk(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var rest = bytes[...]
        while let lineEnd = rest.firstRange(of: Array("\r\n".utf8)),
              let size = Int(String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self), radix: 16), size > 0 {
            let start = lineEnd.upperBound
            guard rest.endIndex - start >= size else { break }
            out += rest[start..<start + size]
            rest = rest[(start + size + 2)...]
        }
        return out
    }
}

/// Runs blocking work (socket waits) on a new thread instead of the cooperative pool.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}
