#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Glibc

// What ccr used from full Foundation (NSCondition, Thread, Error.localizedDescription), made small
// over pthreads and strerror: FoundationEssentials has none of them, and full Foundation brings
// 34 MB of ICU data into a binary that every host downloads.

/// A mutex with a condition variable, as NSCondition is. `@unchecked Sendable`: pthread mutexes
/// and conditions are made to be shared between threads; they live at fixed addresses here.
final class ThreadCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// Unlocks, waits for a signal, locks again (spurious wake-ups happen: wait in a loop).
    func wait() { pthread_cond_wait(condition, mutex) }
    func signal() { pthread_cond_signal(condition) }
    func broadcast() { pthread_cond_broadcast(condition) }
}

/// Runs `body` on a new detached OS thread named `name` (Linux keeps 15 bytes of it: `top -H`,
/// gdb). The process cannot go on without its database threads, so a failed start stops it.
func startThread(name: String, _ body: @escaping @Sendable () -> Void) {
    final class Start: Sendable {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }
    let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
    var attributes = pthread_attr_t()
    pthread_attr_init(&attributes)
    defer { pthread_attr_destroy(&attributes) }
    pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
    var thread = pthread_t()
    let result = pthread_create(&thread, &attributes, { raw in
        let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
        nameCurrentThread(start.name)
        start.body()
        return nil
    }, start)
    guard result == 0 else {
        Unmanaged<Start>.fromOpaque(start).release()
        fatalError("cannot start the thread \(name): \(String(cString: strerror(result)))")
    }
}

/// What pthread_setname_np does for the calling thread (which Glibc's module does not declare):
/// the name written to /proc/thread-self/comm. Best effort: a name is only for people.
private func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

/// Why a file operation failed, readably: "No such file or directory (/var/spool/ccr)" rather
/// than FoundationEssentials' `CocoaError(code: ..., userInfo: ...)`.
public func fileErrorReason(_ error: any Error) -> String {
    if let cocoa = error as? CocoaError, let posix = cocoa.underlying as? POSIXError {
        let reason = String(cString: strerror(posix.code.rawValue))
        return cocoa.filePath.map { "\(reason) (\($0))" } ?? reason
    }
    if let posix = error as? POSIXError { return String(cString: strerror(posix.code.rawValue)) }
    return "\(error)"
}
