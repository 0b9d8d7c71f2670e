import LeanFoundation
#if canImport(Glibc)
import Glibc
#endif

/// A point of a run where an observer is told where the run stands. The engine's journaling is
/// the same with any observer: the points sit between what the run does anyway.
public enum RunPoint: Sendable, Hashable, CustomStringConvertible {
    /// Before step N (0-based) is planned, i.e. after step N-1 finished.
    case beforeStep(Int)
    /// After step N changed the host and the host's journal holds its `done` record, before this
    /// controller's journal does (a crash here leaves the two journals apart).
    case afterChange(Int)
    /// After call N (1-based) of an engine's step made of several calls (CloudAPI's resources)
    /// ran, before the next call's undo is journalled: a crash here leaves a step half made.
    case afterCall(step: String, call: Int)

    public var description: String {
        switch self {
        case .beforeStep(let n): "before-step:\(n)"
        case .afterChange(let n): "after-change:\(n)"
        case let .afterCall(step, n): "after-call:\(step):\(n)"
        }
    }
}

/// Told at each `RunPoint` of an apply. Production runs use `QuietRunObserver`; the process-kill
/// tests use `SignalStopObserver`, which only a test build of ccrun can switch on.
public protocol RunObserver: Sendable {
    func reached(_ point: RunPoint)
}

/// Does nothing: every run's observer unless a test build names stop points.
public struct QuietRunObserver: RunObserver {
    public init() {}
    public func reached(_ point: RunPoint) {}
}

/// Test hook: named points where a ccrun process stops itself with SIGSTOP, so a test can SIGKILL
/// it at an exact place (a step boundary, the middle of an upload, between a remote change and
/// its local journal record) instead of racing a timer. A stopped ccrun holds the target's lock
/// until it is continued or killed (a killed run's lock is then taken over by `ccrun resume`).
///
/// Points (comma-separated): `before-step:N`, `after-change:N`, `after-call:STEP:N` (see `RunPoint`), and
/// `upload-bytes:N`, once an upload has sent at least N bytes (the engine's own temporary file:
/// the target file is untouched).
///
/// Only a debug build of ccrun reads them (from `CCRUN_TEST_STOP_AT`, compiled in under
/// `CCRUN_TEST_HOOKS`): no environment variable can stop a release binary.
public struct SignalStopObserver: RunObserver, Hashable {
    public let points: Set<String>

    public init(_ list: String) {
        points = Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    public var isEmpty: Bool { points.isEmpty }

    public func contains(_ point: String) -> Bool { points.contains(point) }

    /// The byte count of the `upload-bytes:N` point, if any.
    public var uploadBytes: Int? {
        points.lazy.compactMap { $0.hasPrefix("upload-bytes:") ? Int($0.dropFirst("upload-bytes:".count)) : nil }.first
    }

    public func reached(_ point: RunPoint) {
        guard points.contains(point.description) else { return }
        Self.stopNow(point.description)
    }

    /// Stops unconditionally (the caller matched the point itself, e.g. a byte threshold). Says
    /// so on stderr first, so a test log shows where the run stood when it was killed.
    public static func stopNow(_ point: String) {
        FileHandle.standardError.write(Data("ccrun: test stop point \(point) reached, stopping (SIGSTOP)\n".utf8))
        raise(SIGSTOP)
    }
}
