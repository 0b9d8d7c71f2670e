import LeanFoundation
#if canImport(Glibc)
import Glibc
#endif

/// Opens the TCP socket under a deadline: non-blocking connect + poll, so an unreachable or
/// filtered host costs at most the connect timeout.
enum SocketConnector {
    /// A connected, non-blocking socket with TCP_NODELAY (small SSH packets must not wait for
    /// delayed ACKs) and TCP_USER_TIMEOUT (unacknowledged data for longer than `linkTimeout`
    /// aborts the connection, which turns a cut link into an error instead of a hang).
    static func connect(host: String, port: Int, timeout: Duration, deadline: ContinuousClock.Instant,
                        linkTimeout: Duration, cancel: CancelFlag) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw TransportError.nameResolution(host: host, reason: String(cString: gai_strerror(rc)))
        }
        defer { freeaddrinfo(list) }

        var lastError: TransportError = .unreachable(host: host, port: port, reason: "no address")
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let info = node {
            node = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd < 0 { lastError = .unreachable(host: host, port: port, reason: errnoText()); continue }
            do {
                try connectOne(fd: fd, address: info.pointee.ai_addr, length: info.pointee.ai_addrlen,
                               host: host, port: port, timeout: timeout, deadline: deadline, cancel: cancel)
                configure(fd: fd, linkTimeout: linkTimeout)
                return fd
            } catch let error as TransportError {
                Glibc.close(fd)
                lastError = error
                if case .connectTimeout = error { throw error }
            } catch {
                Glibc.close(fd)
                throw error
            }
        }
        throw lastError
    }

    private static func connectOne(fd: Int32, address: UnsafeMutablePointer<sockaddr>?, length: socklen_t,
                                   host: String, port: Int, timeout: Duration, deadline: ContinuousClock.Instant,
                                   cancel: CancelFlag) throws {
        let flags = fcntl(fd, F_GETFL, 0)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        if Glibc.connect(fd, address, length) == 0 { return }
        guard errno == EINPROGRESS else {
            throw TransportError.unreachable(host: host, port: port, reason: errnoText())
        }
        while true {
            try cancel.check()
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero {
                throw TransportError.connectTimeout(host: host, port: port, stage: "TCP connect",
                                                    after: timeout)
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&pfd, 1, Int32(min(remaining.milliseconds, 250)))
            if ready < 0 && errno != EINTR {
                throw TransportError.unreachable(host: host, port: port, reason: errnoText())
            }
            if ready > 0 { break }
        }
        var soError: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len)
        if soError != 0 {
            throw TransportError.unreachable(host: host, port: port, reason: String(cString: strerror(soError)))
        }
    }

    private static func configure(fd: Int32, linkTimeout: Duration) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
        var userTimeout = UInt32(clamping: linkTimeout.milliseconds)
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_USER_TIMEOUT, &userTimeout, socklen_t(MemoryLayout<UInt32>.size))
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

extension Duration {
    /// Whole milliseconds, rounded up so a short wait is never zero.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }
}

/// Set from a task's cancellation handler, read by the connection's thread between waits.
final class CancelFlag: @unchecked Sendable {
    // A lock-protected Bool: written from any thread (cancellation handler), read on the
    // connection's queue.
    private let lock = ThreadLock()
    private var cancelled = false

    func cancel() { lock.lock(); cancelled = true; lock.unlock() }

    var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }

    func check() throws { if isCancelled { throw CancellationError() } }
}
