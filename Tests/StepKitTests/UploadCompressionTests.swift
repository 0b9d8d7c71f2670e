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

/// Packed uploads cached on disk between runs (issue 19): the second run reads the packed bytes
/// instead of packing, a damaged entry is found by its digest and packed again, and the cache
/// stays private and within its size.
@Suite(.serialized) struct PackedUploadCacheTests {
    static func codec() throws -> UploadCompression {
        try #require(UploadCompression.allCases.first { UploadCompression.localTools.contains($0.rawValue) },
                     "no zstd, xz or gzip on this machine's PATH")
    }

    static func unpack(_ packed: Data, _ codec: UploadCompression) async throws -> Data {
        try await LocalHost().run(codec.unpackCommand, stdin: packed, timeout: nil).stdout
    }

    @Test func theSecondRunReadsThePackedBytesFromTheCacheAndTheUploadArrives() async throws {
        let codec = try Self.codec()
        let sb = try Sandbox()
        try FileManager.default.createDirectory(atPath: sb.path("/srv"), withIntermediateDirectories: true)
        let cache = PackedUploadCache(directory: sb.path("/cache/ccrun/packed"))
        let bytes = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: ($0 / 5) &* 17) })
        var packers: [UploadPacker] = []
        for run in 1...2 {
            let path = sb.path("/srv/ccr\(run)")
            var options = RunOptions(mode: .apply, runId: RunID.make(), target: sb.target, journal: sb.journal)
            options.packer = UploadPacker(cache: cache)
            packers.append(options.packer)
            let report = await Runner(runbook: Runbook("cached", steps: [Upload(bytes, to: path, mode: "755")]), options: options).run(on: LocalHost())
            defer { try? FileManager.default.removeItem(atPath: FileProbe.digestEntry(path)) }
            #expect(report.error == nil && report.steps.map(\.state) == [.changed], "\(report.steps.map(\.message))")
            #expect(report.steps.first?.actions.contains { $0.contains("\(codec.rawValue)-packed") } == true)
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)
        }
        let (firstPacked, firstHits) = (await packers[0].packedCount, await packers[0].cacheHits)
        let (secondPacked, secondHits) = (await packers[1].packedCount, await packers[1].cacheHits)
        #expect(firstPacked == 1 && firstHits == 0)
        #expect(secondPacked == 0 && secondHits == 1, "the second run packed again")
        let entry = cache.entryPath(sha256: SHA256Digest.hex(bytes), codec: codec)
        #expect(try FileManager.default.attributesOfItem(atPath: entry)[.posixPermissions] as? Int == 0o600)
        #expect(try FileManager.default.attributesOfItem(atPath: cache.directory)[.posixPermissions] as? Int == 0o700)
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache.directory) == [entry.lastPathComponentOfPath])
    }

    @Test func aTruncatedOrAlteredEntryIsDetectedRemovedAndPackedAgain() async throws {
        let codec = try Self.codec()
        let sb = try Sandbox()
        let cache = PackedUploadCache(directory: sb.path("/cache"))
        let bytes = Data((0..<(300 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 7 / 3) })
        let digest = SHA256Digest.hex(bytes)
        let good = try await UploadPacker(cache: cache).pack(bytes, sha256: digest, with: codec)
        let entry = cache.entryPath(sha256: digest, codec: codec)
        let stored = try Data(contentsOf: URL(fileURLWithPath: entry))
        var flipped = stored; flipped[flipped.count - 3] ^= 0x01
        let damages: [(String, Data)] = [("truncated", stored.prefix(stored.count - 10)), ("one bit flipped", flipped),
                                         ("no digest line", stored.suffix(from: 65)), ("empty", Data()), ("digest only", stored.prefix(65))]
        for (what, damaged) in damages {
            try damaged.write(to: URL(fileURLWithPath: entry))
            #expect(cache.lookup(sha256: digest, codec: codec) == .damaged, "\(what)")
            #expect(!FileManager.default.fileExists(atPath: entry), "\(what): the damaged entry is removed")
            try damaged.write(to: URL(fileURLWithPath: entry))
            let packer = UploadPacker(cache: cache)
            let packed = try await packer.pack(bytes, sha256: digest, with: codec)
            #expect(try await Self.unpack(packed, codec) == bytes, "\(what)")
            let counts = (await packer.damagedEntries, await packer.packedCount, await packer.cacheHits)
            #expect(counts == (1, 1, 0), "\(what)")
            #expect(cache.lookup(sha256: digest, codec: codec) != .damaged, "\(what): repacked entry is whole again")
        }
        #expect(try await Self.unpack(good, codec) == bytes)
    }

    @Test func theLeastRecentlyUsedEntriesGoPastTheSizeBound() async throws {
        let sb = try Sandbox()
        let cache = PackedUploadCache(directory: sb.path("/cache"), maxBytes: 3 * (1000 + 65))
        let digests = (0..<4).map { SHA256Digest.hex("payload \($0)") }
        for (i, d) in digests.prefix(3).enumerated() {
            cache.store(Data(repeating: UInt8(i), count: 1000), sha256: d, codec: .gzip)
            try await Task.sleep(for: .milliseconds(20))
        }
        // Using the oldest makes the second the least recently used.
        #expect(cache.lookup(sha256: digests[0], codec: .gzip) == .hit(Data(repeating: 0, count: 1000)))
        try await Task.sleep(for: .milliseconds(20))
        cache.store(Data(repeating: 3, count: 1000), sha256: digests[3], codec: .gzip)
        #expect(cache.lookup(sha256: digests[1], codec: .gzip) == .miss)
        for i in [0, 2, 3] { #expect(cache.lookup(sha256: digests[i], codec: .gzip) == .hit(Data(repeating: UInt8(i), count: 1000)), "\(i)") }
        // Larger than the whole cache: not stored; a name that is not a digest: not stored.
        cache.store(Data(count: 4000), sha256: digests[1], codec: .gzip)
        cache.store(Data(count: 10), sha256: "../escape", codec: .gzip)
        #expect(try FileManager.default.contentsOfDirectory(atPath: sb.path("/cache")).count == 3)
    }
}

private extension String {
    var lastPathComponentOfPath: String { String(split(separator: "/").last ?? "") }
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
