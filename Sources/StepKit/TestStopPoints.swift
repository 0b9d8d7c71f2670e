import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Test hook: named points where `ccrun` stops itself with SIGSTOP, so a test can SIGKILL a
/// separate ccrun process at an exact place (a step boundary, the middle of an upload, between
/// a remote change and its journal record) instead of racing a timer.
///
/// Set only by tests, through `CCRUN_TEST_STOP_AT` (comma-separated points), read once when the
/// process first needs it. Never set it in production: a stopped ccrun holds the target's lock
/// until it is continued or killed (a killed run's lock is then taken over by `ccrun resume`).
///
/// Points:
/// - `before-step:N`: before step N (0-based) is planned, i.e. after step N-1 finished.
/// - `after-change:N`: after step N changed the host, before its `done` journal record is
///   written anywhere (the remote record is then written by a separate command).
/// - `upload-bytes:N`: once an upload has sent at least N bytes (the engine's own temporary
///   file: the target file is untouched).
public struct TestStopPoints: Sendable, Hashable {
    public static let environmentVariable = "CCRUN_TEST_STOP_AT"

    /// The points named in the environment, read once per process.
    public static let fromEnvironment = TestStopPoints(ProcessInfo.processInfo.environment[environmentVariable] ?? "")

    public let points: Set<String>

    public init(_ list: String) {
        points = Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    public static let none = TestStopPoints("")
    public var isEmpty: Bool { points.isEmpty }

    public func contains(_ point: String) -> Bool { points.contains(point) }

    /// The byte count of the `upload-bytes:N` point, if any.
    public var uploadBytes: Int? {
        points.lazy.compactMap { $0.hasPrefix("upload-bytes:") ? Int($0.dropFirst("upload-bytes:".count)) : nil }.first
    }

    /// Stops this process when `point` is one of the named points. Says so on stderr first, so a
    /// test log shows where the run stood when it was killed.
    public func stop(at point: String) {
        guard points.contains(point) else { return }
        Self.stopNow(point)
    }

    /// Stops unconditionally (the caller matched the point itself, e.g. a byte threshold).
    public static func stopNow(_ point: String) {
        FileHandle.standardError.write(Data("ccrun: test stop point \(point) reached, stopping (SIGSTOP)\n".utf8))
        raise(SIGSTOP)
    }
}
