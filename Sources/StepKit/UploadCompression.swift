import LeanFoundation

/// How an upload travels compressed: packed on the controller, sent, unpacked on the target
/// before its SHA-256 is checked (so a damaged or wrongly unpacked copy is never installed).
/// A 31 MB ccr is about a third of that in zstd: every bare host downloads it.
public enum UploadCompression: String, Sendable, Hashable, CaseIterable {
    // In order of preference: zstd packs and unpacks fastest at a ratio close to xz's; gzip -1
    // packs a 31 MB binary in about a second and is everywhere; xz packs smallest but took 35 s
    // at its fastest level on a loaded 2-core controller, longer than it saves on most links.
    case zstd, gzip, xz

    /// Payloads smaller than this go as they are: packing would save less than it costs.
    public static let minimumBytes = 64 << 10

    /// The first codec both ends have (the target's tools from the batched system probe, the
    /// controller's from its PATH), for a payload of `size` bytes; nil: send it as it is.
    public static func choose(targetTools: Set<String>, localTools: Set<String>, size: Int) -> UploadCompression? {
        guard size >= minimumBytes else { return nil }
        return allCases.first { targetTools.contains($0.rawValue) && localTools.contains($0.rawValue) }
    }

    /// The codecs whose program is on this controller's PATH, looked up once per process.
    public static let localTools: Set<String> = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let directories = path.split(separator: ":").map(String.init)
        return Set(allCases.map(\.rawValue).filter { tool in
            directories.contains { FileManager.default.isExecutableFile(atPath: $0 + "/" + tool) }
        })
    }()

    /// The controller's command packing stdin to stdout. The fastest levels that still pack well:
    /// a run packs a payload once for all its hosts, but xz's usual levels took minutes for the
    /// 31.6 MB ccr on the loaded 2-core machine (bench/RESULTS.md "## package").
    var packCommand: String {
        switch self {
        case .zstd: "zstd -q -c -3 -T0"
        case .xz: "xz -q -c -0 -T0"
        case .gzip: "gzip -q -c -1"
        }
    }

    /// The target's command unpacking stdin to stdout.
    var unpackCommand: String { "\(rawValue) -d -q -c" }

    /// The name suffix of the packed copy on the target.
    var fileSuffix: String {
        switch self {
        case .zstd: ".zst"
        case .xz: ".xz"
        case .gzip: ".gz"
        }
    }

    /// `bytes` packed on the controller.
    func pack(_ bytes: Data) async throws -> Data {
        let out = try await LocalHost(name: "controller").run(packCommand, stdin: bytes, timeout: nil)
        guard out.exitStatus == 0, !out.stdout.isEmpty else {
            throw UploadCompressionError.packFailed(command: packCommand, status: out.exitStatus, stderr: out.stderrText)
        }
        return out.stdout
    }
}

/// Packs one run's uploads: each payload once per codec, however many hosts send it, even when
/// they reach the upload at the same moment (the hosts of a run apply in parallel). One per
/// `RunOptions`, shared by the run's hosts. Packed bytes outlive the run in `cache` (on disk,
/// checked by digest), so the next run that ships the same payload does not pack it again.
public actor UploadPacker {
    private var packing: [String: Task<Data, any Error>] = [:]
    private let cache: PackedUploadCache?
    /// Payloads packed by this packer, read from the cache, and cache entries found damaged
    /// (then packed again): what a run did, for its tests.
    public private(set) var packedCount = 0
    public private(set) var cacheHits = 0
    public private(set) var damagedEntries = 0

    public init(cache: PackedUploadCache? = .standard) { self.cache = cache }

    func pack(_ bytes: Data, sha256: String, with codec: UploadCompression) async throws -> Data {
        let key = "\(codec.rawValue):\(sha256)"
        if let task = packing[key] { return try await task.value }
        switch cache?.lookup(sha256: sha256, codec: codec) {
        case .hit(let packed)?:
            cacheHits += 1
            packing[key] = Task { packed }
            return packed
        case .damaged?: damagedEntries += 1
        case .miss?, nil: break
        }
        let cache = self.cache
        let task = Task {
            let packed = try await codec.pack(bytes)
            cache?.store(packed, sha256: sha256, codec: codec)
            return packed
        }
        packing[key] = task
        packedCount += 1
        return try await task.value
    }
}

public enum UploadCompressionError: Error, CustomStringConvertible, Sendable {
    case packFailed(command: String, status: Int32, stderr: String)
    public var description: String {
        switch self {
        case let .packFailed(command, status, stderr):
            "packing an upload on this machine with `\(command)` failed (exit \(status)): "
                + stderr.trimmingCharacters(in: .whitespacesAndNewlines)
                + ". Fix or remove that program from PATH (ccrun then sends uploads unpacked)."
        }
    }
}
