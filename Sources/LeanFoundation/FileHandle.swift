/// An open file descriptor with the few FileHandle calls ccrun makes (FoundationEssentials has no
/// FileHandle): append to known_hosts and journals, read an ELF header, write stdout/stderr.
/// Errors are `POSIXError`s naming the failing call's errno.
public final class FileHandle: @unchecked Sendable {
    public let fileDescriptor: Int32
    private let closeOnDealloc: Bool
    private var closed = false

    public init(fileDescriptor: Int32, closeOnDealloc: Bool) {
        self.fileDescriptor = fileDescriptor
        self.closeOnDealloc = closeOnDealloc
    }

    public convenience init(fileDescriptor: Int32) { self.init(fileDescriptor: fileDescriptor, closeOnDealloc: false) }

    public static let standardOutput = FileHandle(fileDescriptor: 1)
    public static let standardError = FileHandle(fileDescriptor: 2)

    public convenience init(forReadingFrom url: URL) throws { try self.init(path: url.path, flags: O_RDONLY) }
    public convenience init(forWritingTo url: URL) throws { try self.init(path: url.path, flags: O_WRONLY) }
    public convenience init(forUpdating url: URL) throws { try self.init(path: url.path, flags: O_RDWR) }
    public convenience init?(forReadingAtPath path: String) { try? self.init(path: path, flags: O_RDONLY) }

    private convenience init(path: String, flags: Int32) throws {
        let fd = open(path, flags | O_CLOEXEC)
        guard fd >= 0 else { throw Self.error() }
        self.init(fileDescriptor: fd, closeOnDealloc: true)
    }

    deinit { if closeOnDealloc && !closed { Glibc.close(fileDescriptor) } }

    /// Writes all of `data`, retrying short writes and EINTR.
    public func write<D: DataProtocol>(contentsOf data: D) throws {
        var bytes = Array(data)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { Glibc.write(fileDescriptor, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Self.error()
            }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Writes `data`, ignoring failure (a closed stderr must not stop ccrun), as FileHandle.write(_:).
    public func write(_ data: Data) { try? write(contentsOf: data) }

    /// Up to `count` bytes from the current offset; nil at end of file.
    public func read(upToCount count: Int) throws -> Data? {
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = buffer[filled...].withUnsafeMutableBytes { Glibc.read(fileDescriptor, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Self.error()
            }
            if n == 0 { break }
            filled += n
        }
        return filled == 0 && count > 0 ? nil : Data(buffer[..<filled])
    }

    /// Everything from the current offset to the end.
    public func readToEnd() throws -> Data? {
        var out = Data()
        while let chunk = try read(upToCount: 65536) { out.append(chunk) }
        return out.isEmpty ? nil : out
    }

    @discardableResult
    public func seekToEnd() throws -> UInt64 {
        let offset = lseek(fileDescriptor, 0, SEEK_END)
        guard offset >= 0 else { throw Self.error() }
        return UInt64(offset)
    }

    public func seek(toOffset offset: UInt64) throws {
        guard lseek(fileDescriptor, off_t(offset), SEEK_SET) >= 0 else { throw Self.error() }
    }

    public func synchronize() throws {
        guard fsync(fileDescriptor) == 0 else { throw Self.error() }
    }

    public func close() throws {
        guard !closed else { return }
        closed = true
        guard Glibc.close(fileDescriptor) == 0 else { throw Self.error() }
    }

    private static func error() -> POSIXError { POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
}

/// A mutex for small critical sections shared with threads outside Swift concurrency (libssh2
/// callbacks, cancellation handlers), with NSLock's `lock()`, `unlock()` and `withLock`.
public final class ThreadLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init() { pthread_mutex_init(mutex, nil) }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// The user's home directory: $HOME when set and non-empty, else the password database's entry.
public func homeDirectory() -> String {
    if let home = ProcessInfo.processInfo.environment["HOME"], !home.isEmpty { return home }
    if let entry = getpwuid(getuid()), let dir = entry.pointee.pw_dir { return String(cString: dir) }
    return "/"
}

/// The login name of the current user from the password database ("uid N" when it has none).
public func currentUserName() -> String {
    if let entry = getpwuid(getuid()), let name = entry.pointee.pw_name { return String(cString: name) }
    return "uid \(getuid())"
}
