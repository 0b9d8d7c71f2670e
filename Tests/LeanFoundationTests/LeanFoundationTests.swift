import Foundation
import LeanFoundation
import PropertyBased
import Testing

typealias LeanFileHandle = LeanFoundation.FileHandle

/// LeanFoundation's stand-ins against full Foundation's own calls as the oracle (this file imports
/// both; `LeanFoundation.` and `PrintfFormat` name ours), on random inputs.
@Suite("LeanFoundation")
struct LeanFoundationTests {
    static let textCharacters = Array(" \t\n\r\u{0B}\u{0C}\u{85}\u{A0}\u{2028}\u{3000}ab-/.'`é😀")
    static let text = Gen.int(in: 0...(textCharacters.count - 1)).array(of: 0...16).map { String($0.map { textCharacters[$0] }) }

    @Test("trimming by whitespaces, newlines and explicit sets as Foundation trims")
    func trimming() async {
        await propertyCheck(count: 400, input: Self.text) { s in
            #expect(s.trimmingCharacters(in: LeanFoundation.CharacterSet.whitespaces) == s.trimmingCharacters(in: Foundation.CharacterSet.whitespaces), "\(Array(s.unicodeScalars))")
            #expect(s.trimmingCharacters(in: LeanFoundation.CharacterSet.newlines) == s.trimmingCharacters(in: Foundation.CharacterSet.newlines), "\(Array(s.unicodeScalars))")
            #expect(s.trimmingCharacters(in: LeanFoundation.CharacterSet.whitespacesAndNewlines) == s.trimmingCharacters(in: Foundation.CharacterSet.whitespacesAndNewlines), "\(Array(s.unicodeScalars))")
            #expect(s.trimmingCharacters(in: LeanFoundation.CharacterSet(charactersIn: "`a ")) == s.trimmingCharacters(in: Foundation.CharacterSet(charactersIn: "`a ")))
            #expect(s.dropFirst().trimmingCharacters(in: LeanFoundation.CharacterSet.whitespaces) == s.dropFirst().trimmingCharacters(in: Foundation.CharacterSet.whitespaces))
        }
    }

    @Test("replacing, padding, range(of:) and percent-encoding as Foundation does")
    func textCalls() async {
        await propertyCheck(count: 400, input: Self.text, Self.text, Gen.int(in: 0...20), Gen.int(in: 0...1)) { s, t, length, start in
            let target = String(t.prefix(2))
            #expect(PlainCalls.replace(s, target, "<>") == s.replacingOccurrences(of: target, with: "<>"))
            // Foundation pads and cuts UTF-16 units (an emoji cut in half); ours whole characters. Report columns are ASCII.
            let ascii = String(String.UnicodeScalarView(s.unicodeScalars.filter { $0.isASCII && $0 != "\r" }))
            #expect(PlainCalls.pad(ascii, length, ".-", start) == ascii.padding(toLength: length, withPad: ".-", startingAt: start), "\(Array(ascii.unicodeScalars)) \(length) \(start)")
            #expect(PlainCalls.range(s, target).map { s[$0] } == s.range(of: target).map { s[$0] })
            let allowed = "abcXYZ019-_.~ "
            #expect(PlainCalls.percent(s, allowed) == s.addingPercentEncoding(withAllowedCharacters: Foundation.CharacterSet(charactersIn: allowed)))
        }
    }

    @Test("path components as NSString's")
    func pathComponents() {
        let cases: [(path: String, parent: String, last: String)] = [
            ("/a/b", "/a", "b"), ("/a/b/", "/a", "b"), ("/a", "/", "a"), ("/", "/", "/"), ("a", "", "a"),
            ("a/b", "a", "b"), ("", "", ""), ("/var/lib/ccr/ccr.conf", "/var/lib/ccr", "ccr.conf"), ("/a//b", "/a", "b"),
        ]
        for c in cases {
            #expect(PlainCalls.parent(c.path) == c.parent, "\(c.path)")
            #expect(PlainCalls.last(c.path) == c.last, "\(c.path)")
        }
    }

    @Test("String(format:) for the conversions ccrun uses, as Foundation formats them")
    func format() async {
        let formats = ["%.1f s", "%6.0f ms", "%.3f", "%.2f", "%f", "%8.2f|", "%-8.2f|", "%08.3f", "%.0f"]
        await propertyCheck(count: 300, input: Gen.int(in: -2_000_000...2_000_000), Gen.int(in: 0...10_000), Gen.int(in: 0...8)) { whole, thousandths, which in
            let value = Double(whole) / 1000 + Double(thousandths) / 10_000_000
            let format = formats[which]
            #expect(PrintfFormat.render(format, [value]) == String(format: format, value), "\(format) \(value)")
        }
        await propertyCheck(count: 300, input: Gen.int(in: -70_000...70_000), Gen.int(in: 0...255)) { n, byte in
            #expect(PrintfFormat.render("%d %5d %-5d| %05d %i", [n, n, n, n, Int32(truncatingIfNeeded: n)]) == String(format: "%d %5d %-5d| %05d %i", n, n, n, n, Int32(truncatingIfNeeded: n)))
            #expect(PrintfFormat.render("%02x%02X %04X %x", [UInt8(byte), UInt8(byte), UInt16(truncatingIfNeeded: n), UInt32(byte)]) == String(format: "%02x%02X %04X %x", UInt8(byte), UInt8(byte), UInt16(truncatingIfNeeded: n), UInt32(byte)))
        }
        #expect(PrintfFormat.render(" in %.3f s (%d round trip%@, run %@) 100%%", [1.5, 3, "s", "r-1"]) == " in 1.500 s (3 round trips, run r-1) 100%")
        #expect(PrintfFormat.render("%.1f %.1f %.2f", [-0.04, Double.nan, -Double.infinity]) == "-0.0 nan -inf")
        #expect(PrintfFormat.render("%.1f %.1f %.0f %.0f %.2f", [0.25, 0.35, 2.5, 3.5, 1.005]) == "0.2 0.3 2 4 1.00")  // ties to even; 0.35 and 1.005 are not ties in binary
        #expect(PrintfFormat.render("%q %", [1]) == "%q %")
        #expect(PrintfFormat.render("%.2f", [1e300]).hasSuffix(".00"))
    }

    @Test("FileHandle: append at the end, read back, seek, errors name errno")
    func fileHandle() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lean-\(UUID().uuidString)").path
        defer { unlink(path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data("ab".utf8)))
        let handle = try LeanFileHandle(forUpdating: URL(fileURLWithPath: path))
        #expect(try handle.seekToEnd() == 2)
        try handle.seek(toOffset: 1)
        #expect(try handle.read(upToCount: 5) == Data("b".utf8))
        #expect(try handle.read(upToCount: 5) == nil)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(repeating: 7, count: 200_000))
        try handle.synchronize()
        try handle.close()
        try handle.close()  // twice is harmless
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == 200_002)
        let reader = try #require(LeanFileHandle(forReadingAtPath: path))
        #expect(try reader.readToEnd()?.count == 200_002)
        #expect(LeanFileHandle(forReadingAtPath: path + ".missing") == nil)
        #expect(throws: POSIXError(.ENOENT)) { try LeanFileHandle(forWritingTo: URL(fileURLWithPath: path + ".missing")) }
    }

    @Test("ThreadLock excludes: threads adding under it lose no update")
    func lock() async {
        let lock = ThreadLock()
        nonisolated(unsafe) var counter = 0
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<10_000 { lock.withLock { counter += 1 } } }
            }
        }
        #expect(lock.withLock { counter } == 80_000)
    }
}

/// LeanFoundation's implementations by their own names.
enum PlainCalls {
    static func replace(_ s: String, _ t: String, _ r: String) -> String { PlainText.replacingOccurrences(in: s, of: t, with: r) }
    static func pad(_ s: String, _ n: Int, _ p: String, _ start: Int) -> String { PlainText.padding(s, toLength: n, withPad: p, startingAt: start) }
    static func range(_ s: String, _ t: String) -> Range<String.Index>? { t.isEmpty ? nil : s.firstRange(of: t) }
    static func percent(_ s: String, _ allowed: String) -> String? { PlainText.percentEncoding(s, allowed: LeanFoundation.CharacterSet(charactersIn: allowed)) }
    static func parent(_ s: String) -> String { PlainText.deletingLastPathComponent(s) }
    static func last(_ s: String) -> String { PlainText.lastPathComponent(s) }
}
