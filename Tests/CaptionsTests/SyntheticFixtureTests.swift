import Captions
import Foundation
import SupportKit
import Testing

/// `Fixtures/captions/program-change.bin`: a small synthetic recording for server tests, with
/// two programs told apart by their XDS program name ("Morning News" in roll-up, then
/// "Evening Movie" in pop-on). Rebuilt here so the file stays reproducible: run the tests with
/// `CAPTIONS_WRITE_FIXTURES=1` to rewrite it.
@Suite("Synthetic fixtures")
struct SyntheticFixtureTests {
    static let url = Fixtures.projectDirectory.appendingPathComponent("captions/program-change.bin")

    static func programChange() -> StreamBuilder {
        var b = StreamBuilder(start: 36_000_000) // 10:00:00
        b.xds(class: 0x01, type: 0x03, data: Array("Morning News".utf8))
        b.rollUp(2)
        b.pac(row: 15)
        for line in ["GOOD MORNING.", "HERE IS THE NEWS.", "THAT WAS THE NEWS."] {
            b.text(line)
            b.carriageReturn()
            b.idle(20)
        }
        b.xds(class: 0x01, type: 0x03, data: Array("Morning News".utf8))
        b.eraseDisplayed()
        b.idle(30)
        b.xds(class: 0x01, type: 0x03, data: Array("Evening Movie".utf8))
        for line in ["IT WAS A DARK NIGHT.", "[THUNDER]"] {
            b.resumeCaptionLoading()
            b.pac(row: 14, indent: 4)
            b.text(line)
            b.endOfCaption()
            b.idle(40)
        }
        b.eraseDisplayed()
        b.xds(class: 0x01, type: 0x03, data: Array("Evening Movie".utf8))
        return b
    }

    @Test("program-change.bin is the committed, reproducible synthetic stream")
    func reproducible() throws {
        let bytes = Self.programChange().binFile
        if ProcessInfo.processInfo.environment["CAPTIONS_WRITE_FIXTURES"] == "1" {
            try FileManager.default.createDirectory(at: Self.url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: Self.url)
        }
        #expect([UInt8](try Data(contentsOf: Self.url)) == bytes)
    }

    @Test("program-change.bin: names in order, each program's lines")
    func content() throws {
        var decoder = CaptionDecoder(options: DecoderOptions(xds: true))
        var program = ""
        var names: [String] = []
        var lines: [String: [String]] = [:]
        try RCWTFileReader(bytes: [UInt8](try Data(contentsOf: Self.url))).forEachRecord { r in
            for e in decoder.decode(r) {
                switch e {
                case .xds(let x):
                    if let n = x.programName, n != program { program = n; names.append(n) }
                case .cue(let c):
                    lines[program, default: []] += c.lines.map(\.text)
                }
            }
        }
        for case .cue(let c) in decoder.finish() { lines[program, default: []] += c.lines.map(\.text) }
        #expect(names == ["Morning News", "Evening Movie"])
        #expect(lines["Morning News"] == ["GOOD MORNING.", "HERE IS THE NEWS.", "THAT WAS THE NEWS."])
        #expect(lines["Evening Movie"] == ["    IT WAS A DARK NIGHT.", "    [THUNDER]"])
    }
}
