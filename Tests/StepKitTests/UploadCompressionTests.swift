import Foundation
import Testing
@testable import StepKit
import SupportKit

/// Uploads travel packed when both ends have a codec (issue 19), and the digest checked on the
/// target is the unpacked file's: a copy that unpacks to other bytes is never installed.
@Suite(.serialized) struct UploadCompressionTests {
    static let big = UploadCompression.minimumBytes

    @Test func theFirstCodecBothEndsHaveIsChosenInPreferenceOrder() {
        let all: Set<String> = ["zstd", "xz", "gzip"]
        #expect(UploadCompression.choose(targetTools: all, localTools: all, size: Self.big) == .zstd)
        #expect(UploadCompression.choose(targetTools: ["xz", "gzip"], localTools: all, size: Self.big) == .gzip)
        #expect(UploadCompression.choose(targetTools: all, localTools: ["gzip", "xz"], size: Self.big) == .gzip)
        #expect(UploadCompression.choose(targetTools: ["xz"], localTools: all, size: Self.big) == .xz)
        #expect(UploadCompression.choose(targetTools: ["zstd", "xz"], localTools: ["xz", "gzip"], size: Self.big) == .xz)
        // Nothing in common, or a payload too small to be worth packing: sent as it is.
        #expect(UploadCompression.choose(targetTools: ["zstd"], localTools: ["gzip"], size: Self.big) == nil)
        #expect(UploadCompression.choose(targetTools: [], localTools: all, size: Self.big) == nil)
        #expect(UploadCompression.choose(targetTools: all, localTools: all, size: Self.big - 1) == nil)
    }

    @Test func thePlanPacksOnlyForATargetWithADecompressorAndSaysSo() throws {
        let local = try #require(UploadCompression.localTools.first, "no zstd, xz or gzip on this machine's PATH")
        let upload = Upload(Data(count: Self.big), to: "/usr/local/bin/ccr", mode: "755")
        func action(targetTools: Set<String>) throws -> UploadAction? {
            var f = FactFixtures(system: SystemFacts(distribution: "debian", version: "12", tools: targetTools, initSystem: .sysv))
            f.file("/usr/local/bin/ccr", nil, content: false)
            guard case let .upload(u)? = try upload.plan(f.set, context: PlanContext(backupDirectory: "/tmp")).change?.actions.last else { return nil }
            return u
        }
        let packed = try #require(try action(targetTools: [local, "sha256sum"]))
        #expect(packed.packing?.rawValue == local)
        #expect(packed.wirePath.hasPrefix(packed.temporaryPath) && packed.wirePath != packed.temporaryPath)
        #expect(Action.upload(packed).commands[0].contains("\(local)-packed to \(packed.wirePath)"))
        #expect(packed.finishScript.contains("\(local) -d -q -c < \(packed.wirePath)"))
        let plain = try #require(try action(targetTools: ["sha256sum"]))
        #expect(plain.packing == nil && plain.wirePath == plain.temporaryPath)
        #expect(!plain.finishScript.contains(" -d -q -c"))
    }

    @Test func aPackedUploadArrivesByteForByteAndLeavesNoPackedCopy() async throws {
        let codec = try #require(UploadCompression.allCases.first { UploadCompression.localTools.contains($0.rawValue) },
                                 "no zstd, xz or gzip on this machine's PATH")
        let sb = try Sandbox()
        try FileManager.default.createDirectory(atPath: sb.path("/srv"), withIntermediateDirectories: true)
        let path = sb.path("/srv/ccr")
        // Compressible, and large enough to be packed.
        let bytes = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: ($0 / 7) &* 31) })
        let report = await Runner(runbook: Runbook("packed", steps: [Upload(bytes, to: path, mode: "755")]),
                                  options: RunOptions(mode: .apply, runId: RunID.make(), target: sb.target, journal: sb.journal)).run(on: LocalHost())
        defer { try? FileManager.default.removeItem(atPath: FileProbe.digestEntry(path)) }
        #expect(report.error == nil && report.steps.map(\.state) == [.changed], "\(report.steps.map(\.message))")
        #expect(report.steps.first?.actions.contains { $0.contains("\(codec.rawValue)-packed") } == true, "\(report.steps.map(\.actions))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)
        let left = try FileManager.default.contentsOfDirectory(atPath: sb.path("/srv"))
        #expect(left == ["ccr"], "the packed and unpacked temporary copies are gone")
    }

    @Test func aCopyThatUnpacksToOtherBytesIsRefusedAndNothingIsReplaced() async throws {
        let codec = try #require(UploadCompression.allCases.first { UploadCompression.localTools.contains($0.rawValue) },
                                 "no zstd, xz or gzip on this machine's PATH")
        let sb = try Sandbox()
        try FileManager.default.createDirectory(atPath: sb.path("/srv"), withIntermediateDirectories: true)
        let path = sb.path("/srv/ccr")
        try Data("the old ccr".utf8).write(to: URL(fileURLWithPath: path))
        let bytes = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13) })
        // A well-formed archive of other bytes: unpacking succeeds, only the digest can tell.
        var other = bytes; other[1000] ^= 0xff
        let forged = try await codec.pack(other)
        let host = SwappingHost(forged: forged)
        let report = await Runner(runbook: Runbook("forged", steps: [Upload(bytes, to: path, mode: "755")]),
                                  options: RunOptions(mode: .apply, runId: RunID.make(), target: sb.target, journal: sb.journal)).run(on: host)
        #expect(host.swapped.value == 1, "the upload travelled packed")
        #expect(report.failed)
        #expect("\(report.steps.map(\.message)) \(report.error ?? "")".contains("has a different SHA-256 than the one sent; nothing was replaced"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data("the old ccr".utf8))
    }
}

/// This machine as the target, except that a packed upload's bytes are replaced by `forged`.
private struct SwappingHost: RemoteHost {
    let forged: Data
    let swapped = Counter()
    var name: String { "swapping-localhost" }
    func run(_ script: String, stdin: Data?, timeout: Duration?) async throws -> ScriptResult {
        try await LocalHost().run(script, stdin: stdin, timeout: timeout)
    }
    func upload(_ data: Data, to path: String, mode: UInt16) async throws {
        let packed = UploadCompression.allCases.contains { path.hasSuffix($0.fileSuffix) }
        if packed { swapped.add() }
        try await LocalHost().upload(packed ? forged : data, to: path, mode: mode)
    }
    func readFile(_ path: String) async throws -> Data { try await LocalHost().readFile(path) }
}

/// A count that the uploads of parallel tasks may raise.
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
