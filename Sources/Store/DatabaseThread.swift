#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A dedicated OS thread that owns one database connection and runs jobs on it in FIFO order.
///
/// Why a thread: the C client libraries block, and their handles must not be used from two
/// threads at once. Running them here keeps blocking calls off NIO's event loops and Swift's
/// cooperative pool, and the FIFO order is what keeps writes in submission order.
/// `@unchecked Sendable`: the job queue is guarded by `condition`; `connection` is touched only
/// by the thread itself.
final class DatabaseThread: @unchecked Sendable {
    private let condition = ThreadCondition()
    /// Queued jobs; a taken job's slot is set to nil at once so that what it captured (caption
    /// lines, continuations) is released when it has run, not when the queue is compacted.
    private var jobs: [(() -> Void)?] = []
    private var head = 0
    private var stopping = false
    private var finished = false
    private let connect: () throws -> DatabaseConnection
    private var connection: DatabaseConnection?

    /// `connect` runs on the thread whenever a connection is needed (first use, after an outage).
    init(name: String, connect: @escaping @Sendable () throws -> DatabaseConnection) {
        self.connect = connect
        startThread(name: name) { [self] in self.loop() }
    }

    /// The thread's connection, connecting when there is none. Call only inside a job.
    func currentConnection() throws -> DatabaseConnection {
        if let connection { return connection }
        let fresh = try connect()
        connection = fresh
        return fresh
    }

    /// Whether a connection is open (it may have died since). Call only inside a job.
    var hasConnection: Bool { connection != nil }

    /// Drops the connection after an outage; the next job connects again. Call only inside a job.
    func dropConnection() {
        connection?.close()
        connection = nil
    }

    /// Runs `body` (a read: safe to repeat) on the thread with its connection. An outage error
    /// drops the connection; when that connection was an old one (the server restarted since),
    /// `body` is tried once more on a fresh connection before the error is reported.
    func run<T: Sendable>(_ body: @escaping @Sendable (DatabaseConnection) throws -> T) async throws -> T {
        try await perform { thread in
            let reused = thread.hasConnection
            do {
                return try body(try thread.currentConnection())
            } catch let error as StoreError where error.isTransient {
                thread.dropConnection()
                guard reused else { throw error }
                do {
                    return try body(try thread.currentConnection())
                } catch let error as StoreError where error.isTransient {
                    thread.dropConnection()
                    throw error
                }
            }
        }
    }

    /// Runs `body` on the thread; `body` manages the connection itself.
    func perform<T: Sendable>(_ body: @escaping @Sendable (DatabaseThread) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let accepted = enqueue {
                do { continuation.resume(returning: try body(self)) } catch { continuation.resume(throwing: error) }
            }
            if !accepted { continuation.resume(throwing: StoreError.closed) }
        }
    }

    private func enqueue(_ job: @escaping () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    private func requestStop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while head == jobs.count && !stopping { condition.wait() }
            if head == jobs.count && stopping {
                finished = true
                condition.broadcast()
                condition.unlock()
                break
            }
            let job = jobs[head]
            jobs[head] = nil
            head += 1
            if head == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 1024 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job?()
        }
        dropConnection()
    }

    /// Finishes queued jobs, closes the connection and ends the thread.
    func stop() async {
        requestStop()
        // Wait off the cooperative pool for the thread to finish its queue.
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            startThread(name: "ccr-store-stop") { [self] in
                condition.lock()
                while !finished { condition.wait() }
                condition.unlock()
                continuation.resume()
            }
        }
    }
}

/// A value used only from one `DatabaseThread`'s jobs. `@unchecked Sendable` because that
/// confinement, not a lock, is what makes it safe.
final class ThreadConfined<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}
