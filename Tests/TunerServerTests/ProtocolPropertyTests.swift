import Captions
import Foundation
import PropertyBased
import SupportKit
import Testing
@testable import TunerServer
import ServerFiles

/// Property-based tests of the tuner protocol parser (issue 8, fault suite): `BlockFramer` and
/// `TunerSession` on random bytes, on mutated valid `-sendto` streams and on valid streams cut
/// at random points. What a tuner sends must never crash the server, never make it hold more
/// than a block's bounded state, and never depend on how TCP cut the bytes into reads.
@Suite("Protocol properties")
struct ProtocolPropertyTests {
    /// A valid `-sendto` stream as CCExtractor writes it: PASSWORD, CC_DESC, BIN_HEADER, then
    /// each record as two BIN_DATA blocks (header, triplets), a PING now and then. The records
    /// come from the committed synthetic recording (two programs named by XDS), so this runs in
    /// CI without the shared fixtures.
    static let validStream: [UInt8] = {
        let url = Fixtures.projectDirectory.appendingPathComponent("captions/program-change.bin")
        let bin = (try? Data(contentsOf: url)).map { [UInt8]($0) } ?? []
        let records = (try? RCWTFileReader(bytes: bin).records()) ?? []
        var out = BlockCommand.password.block(Array(password.utf8))
            + BlockCommand.ccDescription.block(Array("prop-tuner".utf8))
            + BlockCommand.binHeader.block(RCWTHeader.bytes)
        for (i, record) in records.enumerated() {
            let bytes = record.bytes
            out += BlockCommand.binData.block(Array(bytes.prefix(10)))
            out += BlockCommand.binData.block(Array(bytes.dropFirst(10)))
            if i % 50 == 0 { out += BlockCommand.ping.block() }
        }
        return out
    }()

    static let password = "pr0p"

    /// The streams mutations start from: the synthetic one, and the real client's capture of
    /// the.tudors when the shared fixtures are there (a password-less stream).
    static func baseStreams() -> [(bytes: [UInt8], password: String?)] {
        var streams: [(bytes: [UInt8], password: String?)] = [(validStream, password)]
        if Fixtures.shouldRunSharedTests, let real = try? Fixtures.sharedData("the.tudors.sendto.bin") {
            streams.append(([UInt8](real), nil))
        }
        return streams
    }

    static let mutations = zip(Gen.int(in: 0...2), Gen.int(in: 0...Int(Int32.max)), Gen.uint8())
        .map { ByteMutation(kind: $0, position: $1, byte: $2) }
        .array(of: 1...16)

    static let chunkSizes = Gen.int(in: 1...4096).array(of: 1...60)

    // MARK: framer

    @Test("random bytes: the framer never crashes, never believes a length over its limit, never over-delivers")
    func framerOnRandomBytes() async {
        // Bias the first bytes to valid commands and digits so random input gets past the first check.
        let start = zip(Gen.element(of: [2, 4, 5, 6, 7, 55] as [UInt8]), Gen.element(of: Array("0123456789\0".utf8)).array(of: 0...12))
            .map { [$0!] + $1.map { $0! } }
        await propertyCheck(count: 400, input: start, Gen.uint8().array(of: 0...2000), Self.chunkSizes) { head, tail, cuts in
            Self.checkFramer(head + tail, cuts: cuts)
        }
    }

    @Test("mutated valid streams: framer events stay within declared lengths")
    func framerOnMutatedStreams() async {
        let bases = Self.baseStreams()
        await propertyCheck(count: 150, input: Gen.int(in: 0...(bases.count - 1)), Self.mutations, Self.chunkSizes) { which, mutations, cuts in
            var bytes = Array(bases[which].bytes.prefix(60_000))
            for m in mutations { m.apply(&bytes) }
            Self.checkFramer(bytes, cuts: cuts)
        }
    }

    /// Feeds `bytes` to a framer in pieces of `cuts` (cycled) and checks every event against the
    /// block it belongs to; returns the blocks seen and the error, if any.
    @discardableResult
    static func checkFramer(_ bytes: [UInt8], cuts: [Int]) -> (blocks: [String], error: FramingError?) {
        var framer = BlockFramer()
        var blocks: [String] = []
        var open: (command: BlockCommand, length: Int, received: Int)?
        var index = 0, k = 0
        while index < bytes.count {
            let end = min(bytes.count, index + cuts[k % cuts.count])
            k += 1
            do {
                try framer.feed(bytes[index..<end]) { event in
                    switch event {
                    case .begin(let command, let length):
                        #expect(open == nil)
                        #expect(length <= command.maximumClientLength ?? -1)
                        open = (command, length, 0)
                    case .payload(let command, let piece):
                        #expect(open?.command == command)
                        open?.received += piece.count
                        #expect((open?.received ?? .max) <= (open?.length ?? -1))
                    case .end(let command):
                        #expect(open?.command == command && open?.received == open?.length)
                        blocks.append("\(command)/\(open?.length ?? -1)")
                        open = nil
                    }
                }
            } catch {
                // A failed framer stays failed: the next byte throws the same error.
                #expect(throws: FramingError.self) { try framer.feed([0x37]) { _ in } }
                return (blocks, error as? FramingError)
            }
            index = end
        }
        if framer.isAtBlockBoundary { #expect(open == nil) }
        return (blocks, nil)
    }

    // MARK: session

    /// Everything a session reported, as comparable text (times pinned by a fixed clock).
    struct SessionRun {
        var events: [String] = []
        var close: SessionClose.Kind?
        var wrongPassword = false
    }

    static func runSession(_ bytes: [UInt8], password: String?, cuts: [Int], layout: ArchiveLayout) -> SessionRun {
        var session = TunerSession(tuner: "prop", settings: SessionSettings(password: password, layout: layout), clock: { 1_700_000_000_000 })
        var run = SessionRun()
        var index = 0, k = 0
        while index < bytes.count {
            let end = min(bytes.count, index + cuts[k % cuts.count])
            k += 1
            do throws(SessionClose) {
                try session.receive(bytes[index..<end]) { event in
                    switch event {
                    case .cue(let cue, _):
                        for row in cue.rows { #expect(Cue.visibleColumns(row) <= 32, "row \(row.debugDescription)") }
                        #expect(cue.rows.count <= 15)
                    case .wrongPassword:
                        run.wrongPassword = true
                    default:
                        break
                    }
                    run.events.append("\(event)")
                }
            } catch {
                run.close = error.kind
                return run
            }
            // Nothing but caption output is kept between reads, and that is flushed by the server.
            if session.recordCount == 0 { #expect(session.pendingArchiveBytes <= RCWTHeader.count) }
            index = end
        }
        return run
    }

    @Test("random bytes into a session: closes with a reason or keeps going, never crashes")
    func sessionOnRandomBytes() async throws {
        // A program named by XDS renames its (not yet written) files, which creates folders.
        let root = try makeTemporaryDirectory("prop")
        defer { try? FileManager.default.removeItem(at: root) }
        let layout = ArchiveLayout(root: root.path)
        await propertyCheck(count: 300, input: Gen.uint8().array(of: 0...3000), Self.chunkSizes, Gen.bool) { bytes, cuts, withPassword in
            let run = Self.runSession(bytes, password: withPassword ? Self.password : nil, cuts: cuts, layout: layout)
            if run.wrongPassword { #expect(run.close == .password) }
        }
    }

    @Test("mutated valid streams into a session: no crash, rows fit 32 columns, the same outcome in any split")
    func sessionOnMutatedStreams() async throws {
        let root = try makeTemporaryDirectory("prop")
        defer { try? FileManager.default.removeItem(at: root) }
        let layout = ArchiveLayout(root: root.path)
        let bases = Self.baseStreams()
        await propertyCheck(count: 80, input: Gen.int(in: 0...(bases.count - 1)), Self.mutations, Self.chunkSizes) { which, mutations, cuts in
            let base = bases[which]
            var bytes = Array(base.bytes.prefix(80_000))
            for m in mutations { m.apply(&bytes) }
            let whole = Self.runSession(bytes, password: base.password, cuts: [bytes.count + 1], layout: layout)
            let split = Self.runSession(bytes, password: base.password, cuts: cuts, layout: layout)
            #expect(split.close == whole.close)
            #expect(split.events == whole.events)
        }
    }

    @Test("a valid prefix split at any points gives the same events as the prefix whole")
    func validPrefixSplitAnywhere() async throws {
        let root = try makeTemporaryDirectory("prop")
        defer { try? FileManager.default.removeItem(at: root) }
        let layout = ArchiveLayout(root: root.path)
        let bases = Self.baseStreams()
        await propertyCheck(count: 60, input: Gen.int(in: 0...(bases.count - 1)), Gen.int(in: 0...Int(Int32.max)), Self.chunkSizes) { which, cut, cuts in
            let base = bases[which]
            let bytes = Array(base.bytes.prefix(cut % (base.bytes.count + 1)))
            let whole = Self.runSession(bytes, password: base.password, cuts: [bytes.count + 1], layout: layout)
            #expect(whole.close == nil, "a valid prefix must not close the connection")
            let split = Self.runSession(bytes, password: base.password, cuts: cuts, layout: layout)
            #expect(split.close == nil)
            #expect(split.events == whole.events)
        }
    }

    @Test("huge EPG_DATA and PING traffic is streamed through: the session holds nothing")
    func nonCaptionBlocksAreNotBuffered() async throws {
        let root = try makeTemporaryDirectory("prop")
        defer { try? FileManager.default.removeItem(at: root) }
        let layout = ArchiveLayout(root: root.path)
        await propertyCheck(count: 20, input: Gen.int(in: 0...(1 << 18)), Self.chunkSizes) { length, cuts in
            let bytes = BlockCommand.ping.block() + BlockCommand.epgData.block([UInt8](repeating: 0x41, count: length))
                + BlockCommand.ping.block()
            let run = Self.runSession(bytes, password: nil, cuts: cuts, layout: layout)
            #expect(run.close == nil)
            #expect(run.events == Array(repeating: "\(SessionEvent.reply([0x37]))", count: 2))
        }
    }
}
