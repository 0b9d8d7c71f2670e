import Foundation

/// Where the tests find their data.
///
/// The real recordings and CCExtractor's reference transcripts live in `../shared/fixtures`
/// (their provenance keeps them out of this repository). Tests that need them are skipped with
/// a reason when they are absent, except under `CI=true`, where their absence is a failure.
public enum Fixtures {
    /// The package root, found from this file's location (Tests/SupportKit/Fixtures.swift).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared/fixtures` beside the checkout, or `$CCR_FIXTURES` when set.
    public static let sharedDirectory: URL = {
        if let dir = ProcessInfo.processInfo.environment["CCR_FIXTURES"], !dir.isEmpty {
            return URL(fileURLWithPath: dir)
        }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }()

    /// The project's own test data (synthetic streams, sample inventories).
    public static let projectDirectory: URL = packageRoot.appendingPathComponent("Fixtures")

    /// True when running under CI, where missing prerequisites fail instead of skipping.
    public static let isCI: Bool = ProcessInfo.processInfo.environment["CI"] == "true"

    /// True when the shared recordings are present.
    public static var sharedAvailable: Bool {
        FileManager.default.fileExists(atPath: sharedDirectory.appendingPathComponent("the.tudors.bin").path)
    }

    /// Whether tests needing the shared fixtures should run: present, or required (CI) so that
    /// their absence shows up as a failure.
    public static var shouldRunSharedTests: Bool { sharedAvailable || isCI }

    public static let skipReason = "shared fixtures not found at ../shared/fixtures (set CCR_FIXTURES)"

    public struct Missing: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "fixture missing: \(path) (\(Fixtures.skipReason))" }
    }

    /// URL of a shared fixture; throws (fails the test) when it is missing.
    public static func shared(_ name: String) throws -> URL {
        let url = sharedDirectory.appendingPathComponent(name)
        guard FileManager.default.fileExists(atPath: url.path) else { throw Missing(path: url.path) }
        return url
    }

    /// Contents of a shared fixture.
    public static func sharedData(_ name: String) throws -> Data {
        try Data(contentsOf: shared(name))
    }
}
