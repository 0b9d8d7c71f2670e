import Captions
import Foundation
import Store
import SupportKit
@testable import Web

/// A temporary SQLite caption repository filled through the Store's write API with what
/// `ccr serve` would store for a fixture: one tuner, one program, one line per decoded cue
/// (the cue's transcript text), XDS program names.
final class TestRepository: Sendable {
    let directory: URL
    let databasePath: String
    let writer: any CaptionStore
    let nodeID: Int64

    struct Program: Sendable {
        let tunerID: Int64
        let programID: Int64
        let lines: [CaptionLineInput]
    }

    /// 2026-11-20 10:00:00 UTC.
    static let day: Int64 = 1_795_168_800_000

    init() async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-web-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        databasePath = directory.appendingPathComponent("ccr.sqlite").path
        writer = try await openStore(.sqlite(path: databasePath), options: StoreOptions())
        nodeID = try await writer.registerNode(hostname: "repo-test")
    }

    /// A read-only store on the same file, as `ccr web` opens it.
    func readOnlySource() -> StoreSource {
        StoreSource(configuration: .sqlite(path: databasePath), timeoutSeconds: 2, retrySeconds: 0)
    }

    /// Decodes `binName` and stores it as tuner `description`'s program starting at `startedAt`.
    func add(bin binName: String, description: String, startedAt: Int64, connected: Bool = true) async throws -> Program {
        let bytes = [UInt8](try Fixtures.sharedData(binName))
        let tuner = try await writer.tunerConnected(TunerConnection(nodeID: nodeID, address: "127.0.0.1", port: 40_000 + Int.random(in: 0..<1000),
                                                                    description: description, connectedAt: startedAt - 1000))
        let program = try await writer.programStarted(tunerID: tuner, startedAt: startedAt, name: nil)
        var decoder = CaptionDecoder(options: DecoderOptions(channel: .cc1, xds: true))
        var events: [CaptionEvent] = []
        try RCWTFileReader(bytes: bytes).forEachRecord { record in events += decoder.decode(record) }
        events += decoder.finish()
        var lines: [CaptionLineInput] = []
        var named = false
        for event in events {
            switch event {
            case .cue(let cue) where !cue.lines.isEmpty:
                lines.append(CaptionLineInput(programID: program, tunerID: tuner, startMs: cue.start, endMs: cue.end,
                                              mode: Self.mode(cue.mode), text: cue.plainText, capturedAt: startedAt + cue.start))
            case .xds(let x):
                if let name = x.programName, !named {
                    named = true
                    try await writer.programRenamed(programID: program, name: name)
                    try await writer.recordXDS([XDSItemInput(programID: program, tunerID: tuner, atMs: x.start, kind: "program-name", value: name)])
                }
            default:
                break
            }
        }
        try await writer.appendLines(lines)
        if !connected {
            try await writer.programEnded(programID: program, endedAt: startedAt + 3_600_000)
            try await writer.tunerDisconnected(tunerID: tuner, at: startedAt + 3_600_000)
        }
        return Program(tunerID: tuner, programID: program, lines: lines)
    }

    static func mode(_ mode: CaptionMode) -> String {
        switch mode {
        case .popOn: "pop-on"
        case .rollUp2, .rollUp3, .rollUp4: "roll-up"
        case .paintOn: "paint-on"
        case .text: "text"
        }
    }

    func close() async {
        await writer.close()
        try? FileManager.default.removeItem(at: directory)
    }
}

extension TestRepository {
    /// A connected tuner with one open program.
    func program(description: String?, name: String, startedAt: Int64 = TestRepository.day) async throws -> (tuner: Int64, program: Int64) {
        let tuner = try await writer.tunerConnected(TunerConnection(nodeID: nodeID, address: "127.0.0.1", port: 40_000,
                                                                    description: description, connectedAt: startedAt - 1000))
        return (tuner, try await writer.programStarted(tunerID: tuner, startedAt: startedAt, name: name))
    }

    /// `count` synthetic lines (`text(i)`, one a second), written in batches of `batch`, with
    /// `pause` between batches (a live flood) or none (an archive).
    func lines(_ count: Int, program: (tuner: Int64, program: Int64), text: @escaping (Int) -> String,
               batch: Int = 2000, pause: Duration? = nil) async throws {
        var written = 0
        while written < count {
            let n = min(batch, count - written)
            try await writer.appendLines((written..<written + n).map { i in
                CaptionLineInput(programID: program.program, tunerID: program.tuner, startMs: Int64(i) * 1000, endMs: Int64(i) * 1000 + 900,
                                 mode: "pop-on", text: text(i), capturedAt: Int64(i))
            })
            written += n
            if let pause { try await Task.sleep(for: pause) }
        }
    }
}

/// A TCP port on loopback that nothing listens on (bound, then closed).
func closedLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// SRT cues as (times line, text rows) for comparing files whose styling differs.
func srtCues(_ text: String) -> [(times: String, rows: [String])] {
    var cues: [(String, [String])] = []
    for block in text.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n\n") where !block.isEmpty {
        let rows = block.components(separatedBy: "\n")
        guard rows.count >= 2 else { continue }
        cues.append((rows[1], Array(rows.dropFirst(2))))
    }
    return cues
}

/// WebVTT cues as (times line with ',' for '.', text rows).
func vttCues(_ text: String) -> [(times: String, rows: [String])] {
    var cues: [(String, [String])] = []
    for block in text.components(separatedBy: "\n\n").dropFirst() where !block.isEmpty {
        let rows = block.components(separatedBy: "\n")
        guard let timeIndex = rows.firstIndex(where: { $0.contains(" --> ") }) else { continue }
        cues.append((rows[timeIndex].replacingOccurrences(of: ".", with: ","), Array(rows[(timeIndex + 1)...])))
    }
    return cues
}

func stripTags(_ s: String) -> String {
    s.replacingOccurrences(of: "<[^>]*>", with: "", options: .regularExpression)
}
