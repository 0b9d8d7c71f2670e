import ArgumentParser
import Foundation
import ServerFiles
import TunerServer

/// `ccr-bench session-replay`: one tuner's work without the network, for counting instructions
/// per record (`valgrind --tool=callgrind`, `perf stat -e instructions`), which stay repeatable
/// on a loaded machine where seconds do not. Feeds a capture through a `TunerSession` in reads of
/// the server's receive-buffer size, with archive writes discarded, `passes` times (each pass a
/// new session, as a reconnecting tuner). Running it with two pass counts and dividing the
/// difference in instructions by the difference in records gives the cost of one record
/// without the start-up. `--sessions N` feeds N sessions a read each in turn, as a server with N
/// tuners does: each session's state is then cold in the CPU's caches when its next read comes
/// (at 2,000 sessions and reads of 125 bytes, 0.99 us a record against 0.63 us for one session).
struct SessionReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session-replay",
        abstract: "Replay a capture through TunerSession (no network, no disk); prints records and cues."
    )

    @Option(help: "Capture to replay (a *.sendto.bin).")
    var capture = "../shared/fixtures/89.sendto.bin"

    @Option(help: "Times the capture is replayed, each through a new session.")
    var passes = 1

    @Option(help: "Bytes per read (the server's [server] receive buffer).")
    var readSize = ServerConfiguration().receiveBufferSize

    @Option(help: "Sessions fed in turn, a read each (as a server's many tuners; 1: one session at a time).")
    var sessions = 1

    func validate() throws {
        guard sessions >= 1 else { throw ValidationError("--sessions must be at least 1, not \(sessions)") }
    }

    /// One read into a session in place (a copy of a session is hundreds of bytes and a dozen retains).
    private static func feed(_ session: inout TunerSession, _ read: UnsafeRawBufferPointer, _ emit: (SessionEvent) -> Void) throws {
        try session.receive(read, emit)
        if session.flushIsDue { session.flushFull(emit) }
    }

    func run() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: capture)))
        var limits = TunerLimits()
        // A replay runs far above real time on purpose: no budget may close it.
        limits.realTimeFactor = 1_000_000
        limits.burstSeconds = 366 * 86_400
        limits.linesPerSecond = 1_000
        let settings = SessionSettings(password: nil, layout: ArchiveLayout(root: "/nonexistent"), archiveIO: DiscardingArchiveIO(),
                                       limits: limits)
        var records = 0, cues = 0
        let count = { (event: SessionEvent) in
            switch event {
            case .cue, .serviceCue: cues += 1
            default: break
            }
        }
        for pass in 0..<passes {
            // Several sessions are fed a read each in turn: each one's state is cold when its
            // next read comes, as in a server with thousands of connections.
            var group = (0..<sessions).map { TunerSession(tuner: "replay-\(pass)-\($0)", settings: settings, clock: { 1_765_000_000_000 }) }
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + readSize)
                // The server's call: a read's bytes as an UnsafeRawBufferPointer.
                try bytes.withUnsafeBytes { whole in
                    let read = UnsafeRawBufferPointer(rebasing: whole[start..<end])
                    for i in group.indices { try Self.feed(&group[i], read, count) }
                }
                start = end
            }
            for i in group.indices { group[i].finish(count); records += group[i].recordCount }
        }
        print("records \(records) cues \(cues) passes \(passes) sessions \(sessions)")
    }
}

/// Archive writes that go nowhere: the replay measures the session, not the disk.
struct DiscardingArchiveIO: ArchiveIO {
    func append(_ bytes: [UInt8], base: String, kind: ArchiveFileKind, directory: String) throws(ArchiveError) {}
    func rename(base: String, to newBase: String, kinds: [ArchiveFileKind]) throws(ArchiveError) {}
    func exists(base: String) -> Bool { false }
    var isBehind: Bool { false }
}
