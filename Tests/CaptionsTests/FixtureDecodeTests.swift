import Captions
import Foundation
import SupportKit
import Testing

/// Decoding the real recordings must give CCExtractor's reference outputs.
@Suite("Decoding the shared fixtures")
struct FixtureDecodeTests {
    static func decode(_ name: String, _ format: CaptionFormat, xds: Bool = false) throws -> String {
        let bytes = [UInt8](try Fixtures.sharedData(name))
        let text = try CaptionFile.render(bin: bytes, format: format, xds: xds)
        if let dir = ProcessInfo.processInfo.environment["CAPTIONS_DUMP"] {
            let out = URL(fileURLWithPath: dir).appendingPathComponent("\(name).\(format.rawValue)\(xds ? ".xds" : "")")
            try? Data(text.utf8).write(to: out)
        }
        return text
    }

    static func reference(_ name: String) throws -> String {
        String(decoding: try Fixtures.sharedData(name), as: UTF8.self)
    }

    @Test("the.tudors.bin -> srt equals the.tudors.srt byte for byte",
          .enabled(if: Fixtures.shouldRunSharedTests, "shared fixtures needed"))
    func tudorsSRT() throws {
        #expect(try Self.decode("the.tudors.bin", .srt) == Self.reference("the.tudors.srt"))
    }

    @Test("the.tudors.bin -> txt equals the.tudors.txt byte for byte",
          .enabled(if: Fixtures.shouldRunSharedTests, "shared fixtures needed"))
    func tudorsTXT() throws {
        #expect(try Self.decode("the.tudors.bin", .txt) == Self.reference("the.tudors.txt"))
    }

    @Test("the.tudors.bin -> ttxt with XDS equals the.tudors.xds.ttxt byte for byte",
          .enabled(if: Fixtures.shouldRunSharedTests, "shared fixtures needed"))
    func tudorsTTXT() throws {
        #expect(try Self.decode("the.tudors.bin", .ttxt, xds: true) == Self.reference("the.tudors.xds.ttxt"))
    }
}
