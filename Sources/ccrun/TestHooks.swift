import LeanFoundation
import StepKit

/// Where the process-kill tests stop a ccrun process (see `SignalStopObserver`). Compiled in
/// only under `CCRUN_TEST_HOOKS`, which Package.swift defines for debug builds: the shipped
/// (release) ccrun reads no test variable at all.
enum TestHooks {
#if CCRUN_TEST_HOOKS
    /// `CCRUN_TEST_STOP_AT`, read once per process.
    static let stops = SignalStopObserver(ProcessInfo.processInfo.environment["CCRUN_TEST_STOP_AT"] ?? "")
    static var observer: any RunObserver { stops }

    /// The `upload-bytes:N` stop point as an upload progress callback.
    static func uploadProgress() -> (@Sendable (Int) -> Void)? {
        guard let limit = stops.uploadBytes else { return nil }
        let once = OnceFlag()
        return { sent in if sent >= limit && once.take() { SignalStopObserver.stopNow("upload-bytes:\(limit)") } }
    }
#else
    static var observer: any RunObserver { QuietRunObserver() }
    static func uploadProgress() -> (@Sendable (Int) -> Void)? { nil }
#endif
}
