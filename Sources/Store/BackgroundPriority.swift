#if canImport(Glibc)
import Glibc
#endif

/// Lowers the CPU priority of threads whose work can wait: archive writes and WAL checkpoints.
///
/// The event loops and the store writer carry each caption from a tuner's bytes to the live feed;
/// on a busy 2-core node a checkpoint or an archive flush that ran between them showed as that
/// much delay in the lines' tail. At nice +10 such a thread gets a tenth of a loop's share while
/// both want the CPU, and still runs whenever a core is free (it is not starved, only deferred).
public enum BackgroundPriority {
    public static let niceIncrement: Int32 = 10

    /// Applies to the calling thread only: on Linux a thread's nice value is its own, and
    /// PRIO_PROCESS with id 0 names the calling thread.
    public static func applyToCurrentThread() {
        #if os(Linux)
        let which = __priority_which_t(PRIO_PROCESS.rawValue)
        errno = 0
        let current = getpriority(which, 0)
        guard errno == 0 else { return }
        _ = setpriority(which, 0, min(19, current + niceIncrement))
        #endif
    }
}
