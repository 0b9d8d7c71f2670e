import ArgumentParser
import Logging
import TunerServer
#if canImport(Glibc)
import Glibc
#endif

/// The start of every long-running ccr service (`serve`, `web`, `watchdog`): logging at the
/// requested level on stderr (journald and the sysv log take it from there) and the environment
/// that supplies passwords. One place, so the services log and read secrets alike.
struct ServiceBootstrap {
    let environment: [String: String]

    static let levelHelp = "trace, debug, info, notice, warning, error or critical."

    /// Bootstraps swift-log once for the process; throws a usage error for an unknown level.
    static func start(logLevel: String) throws -> ServiceBootstrap {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("--log-level: expected \(levelHelp)")
        }
        LoggingSystem.bootstrap { label in
            var handler = EscapingLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        }
        return ServiceBootstrap(environment: currentEnvironment())
    }
}

/// SIGTERM and SIGINT as the process received them from its parent.
enum TerminationSignals {
    /// A parent that spawned ccr from a thread blocking SIGTERM/SIGINT (Dispatch worker threads
    /// and the Swift concurrency pool block them; Foundation's Process and posix_spawn pass the
    /// mask on) would leave them blocked here too, and an inherited SIG_IGN would drop them.
    /// Graceful shutdown must not depend on who started us: unblock both and restore the default
    /// action, on the first thread, before any other thread exists. `ShutdownSignal` then takes
    /// them over.
    static func unblockInheritedMask() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        signal(SIGTERM, SIG_DFL)
        signal(SIGINT, SIG_DFL)
    }
}

func currentEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let pair = String(cString: entry)
        if let eq = pair.firstIndex(of: "=") {
            result[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        pointer += 1
    }
    return result
}

/// Writes a small text file (the ready file: a temporary name renamed into place, so a reader
/// never sees it half written).
func writeSmallFile(_ path: String, _ text: String) {
    let temporary = path + ".tmp"
    guard let file = fopen(temporary, "w") else { return }
    fputs(text, file)
    fclose(file)
    rename(temporary, path)
}
