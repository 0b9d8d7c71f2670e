import Foundation
import Logging
import Store
import SupportKit
import Testing
@testable import TunerServer
#if canImport(Glibc)
import Glibc
#endif

/// A tuner for tests: a plain blocking TCP socket to 127.0.0.1, like CCExtractor's client.
final class TestTuner: @unchecked Sendable {
    // @unchecked: one test drives one client from one task; the fd is never shared.
    let fd: Int32

    /// Connects to 127.0.0.1:`port`, from `source` (another loopback address, e.g. 127.0.0.2,
    /// to stand for a second host) when given.
    init(port: Int, from source: String? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSocketError.failed("socket", errno) }
        do {
            if let source { try Self.call("bind \(source)", fd, source, port: 0, bind) }
            try Self.call("connect", fd, "127.0.0.1", port: port, connect)
        } catch {
            close(fd)
            throw error
        }
    }

    /// `bind` or `connect` of `fd` to an IPv4 `address` and `port`.
    private static func call(_ what: String, _ fd: Int32, _ address: String, port: Int,
                             _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32) throws {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        a.sin_addr.s_addr = inet_addr(address)
        let result = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw TestSocketError.failed(what, errno) }
    }

    deinit { close(fd) }

    func send<C: Collection<UInt8>>(_ bytes: C) throws {
        let array = Array(bytes)
        var sent = 0
        while sent < array.count {
            let n = array.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, array.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw TestSocketError.failed("send", errno)
            }
            sent += n
        }
    }

    /// Ends the stream as CCExtractor does at the end of its input.
    func finishSending() { shutdown(fd, Int32(SHUT_WR)) }

    /// Reads what the server sends until it closes the connection (nil on timeout).
    func readUntilClosed(timeout: Double = 10) async -> [UInt8]? {
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 0) > 0 {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 4096, 0) }
                if n <= 0 { return out }
                out += buffer[0..<n]
                continue
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    /// Reads `count` bytes (nil on timeout or close).
    func read(count: Int, timeout: Double = 10) async -> [UInt8]? {
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var buffer = [UInt8](repeating: 0, count: count)
        while Date() < deadline && out.count < count {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 0) > 0 {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, count - out.count, 0) }
                if n <= 0 { return nil }
                out += buffer[0..<n]
                continue
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return out.count == count ? out : nil
    }
}

enum TestSocketError: Error, CustomStringConvertible {
    case failed(String, Int32)
    var description: String {
        switch self { case .failed(let call, let e): "\(call): \(String(cString: strerror(e)))" }
    }
}

/// The blocks of a capture, as the client wrote them, with the stream time of BIN_DATA record headers.
struct CaptureBlock {
    let bytes: ArraySlice<UInt8>
    let command: UInt8
    /// For a 10-byte BIN_DATA block (a record header): its timestamp in ms.
    let timestamp: Int64?
}

func captureBlocks(_ data: [UInt8]) -> [CaptureBlock] {
    var blocks: [CaptureBlock] = []
    var i = 0
    while i + 11 <= data.count {
        let digits = data[(i + 1)..<(i + 11)].prefix { $0 != 0 }
        let length = Int(String(decoding: digits, as: UTF8.self))!
        let end = i + 11 + length + 2
        var timestamp: Int64?
        if data[i] == 6 && length == 10 {
            timestamp = (0..<8).reduce(Int64(0)) { $0 | Int64(data[i + 11 + $1]) << (8 * Int64($1)) }
        }
        blocks.append(CaptureBlock(bytes: data[i..<end], command: data[i], timestamp: timestamp))
        i = end
    }
    precondition(i == data.count, "capture does not end on a block boundary")
    return blocks
}

/// The RCWT stream a capture carries (BIN_HEADER data, then all BIN_DATA data).
func rebuiltStream(_ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    for block in captureBlocks(data) where block.command == 5 || block.command == 6 {
        out += block.bytes.dropFirst(11).dropLast(2)
    }
    return out
}

/// One srt cue, numbering left out (it restarts in each program's file).
struct SRTCue: Equatable, CustomStringConvertible {
    let times: String
    let rows: [String]
    var description: String { "\(times) \(rows)" }
}

func parseSRT(_ text: String) -> [SRTCue] {
    text.components(separatedBy: "\r\n\r\n").compactMap { chunk in
        let lines = chunk.components(separatedBy: "\r\n")
        guard lines.count >= 2, Int(lines[0]) != nil else { return nil }
        return SRTCue(times: lines[1], rows: Array(lines[2...]))
    }
}

/// Files under `root` with `suffix`, in name order (recursively). The CEA-708 service files
/// (`.svcN.srt`) count only when `suffix` names them.
func archivedFiles(_ root: URL, suffix: String, tuner: String? = nil) -> [URL] {
    let e = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)
    var out: [URL] = []
    while let url = e?.nextObject() as? URL {
        guard url.lastPathComponent.hasSuffix(suffix) else { continue }
        if !suffix.contains(".svc"), url.lastPathComponent.range(of: #"\.svc[0-9]+\.srt$"#, options: .regularExpression) != nil { continue }
        if let tuner, url.deletingLastPathComponent().lastPathComponent != tuner { continue }
        out.append(url)
    }
    return out.sorted { $0.path < $1.path }
}

func archivedCues(_ root: URL, tuner: String? = nil) throws -> [SRTCue] {
    try archivedFiles(root, suffix: ".srt", tuner: tuner).flatMap { parseSRT(try String(contentsOf: $0, encoding: .utf8)) }
}

/// A unique temporary folder, removed by the caller.
func makeTemporaryDirectory(_ label: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(timeout: Double = 15, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// Runs `body` against a server on 127.0.0.1 (ports chosen by the system) with its own archive
/// and SQLite database in a temporary folder; the server is stopped and the folder removed
/// whatever happens.
func withServer(
    password: String? = nil, maxTuners: Int = 100, handshakeTimeout: Double = 15, idleTimeout: Double = 120,
    useStore: Bool = false, eventLoopThreads: Int = 2, archiveIO: any ArchiveIO = DirectArchiveIO(),
    _ body: (TunerServer, URL, (any CaptionStore)?) async throws -> Void
) async throws {
    let dir = try makeTemporaryDirectory("serve")
    defer { try? FileManager.default.removeItem(at: dir) }
    var c = ServerConfiguration()
    c.host = "127.0.0.1"
    c.port = 0
    c.metricsHost = "127.0.0.1"
    c.metricsPort = 0
    c.password = password
    c.maxTuners = maxTuners
    c.handshakeTimeout = handshakeTimeout
    c.idleTimeout = idleTimeout
    c.flushInterval = 0.2
    c.wrongPasswordDelay = 0.3
    c.eventLoopThreads = eventLoopThreads
    c.archiveDirectory = dir.appendingPathComponent("archive").path
    c.heartbeatInterval = 0.5
    var store: (any CaptionStore)?
    if useStore {
        c.store = .sqlite(path: dir.appendingPathComponent("ccr.sqlite").path)
        c.spoolDirectory = dir.appendingPathComponent("spool").path
        store = try await openStore(c.store!, options: StoreOptions(spoolDirectory: c.spoolDirectory))
    } else {
        c.store = nil
    }
    var logger = Logger(label: "test.ccr")
    logger.logLevel = .warning
    let server = try await TunerServer.start(configuration: c, store: store, logger: logger, archiveIO: archiveIO)
    do {
        try await body(server, URL(fileURLWithPath: c.archiveDirectory), store)
    } catch {
        await server.shutdown()
        throw error
    }
    await server.shutdown()
}

/// Waits until everything the server queued for its archive threads is on disk, as an operator
/// reads it: `ccr_archive_queue_depth 0` on /metrics. The archive is written off the event loops,
/// so a tuner's last files land shortly after the server counted its connection closed.
func archiveWritten(_ server: TunerServer, timeout: Double = 15) async -> Bool {
    await eventually(timeout: timeout) {
        ((try? await metricsResponse(server)) ?? "").contains("\nccr_archive_queue_depth 0\n")
    }
}

/// The whole HTTP response of `GET /metrics` on the server's metrics port.
func metricsResponse(_ server: TunerServer) async throws -> String {
    let http = try TestTuner(port: try #require(server.metricsPort))
    try http.send(Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
    return String(decoding: await http.readUntilClosed() ?? [], as: UTF8.self)
}

extension ServerMetrics.Snapshot {
    var closedTotal: Int { closedByReason.values.reduce(0, +) }
}
