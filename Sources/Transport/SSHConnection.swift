import LeanFoundation

/// One SSH session to one host: commands on channels, files over SFTP.
///
/// All libssh2 work for a connection happens on the connection's own serial dispatch queue, never
/// on Swift's cooperative pool, and every wait is bounded by a deadline, so a dead host or link
/// ends in a ``TransportError`` instead of a hang. Calls on one connection run one after another
/// (batch work into one script where round trips matter).
public final class SSHConnection: @unchecked Sendable {
    // @unchecked Sendable: the only mutable state, `session`, is touched exclusively on `queue`
    // (a serial queue), which is the lock for this C handle.
    public let target: SSHTarget
    /// Time for TCP connect + key exchange + host key check, and for authentication (measured).
    public let connectDuration: Duration
    public let authDuration: Duration
    /// The negotiated key exchange (e.g. `curve25519-sha256`) and host key algorithm.
    public let keyExchangeMethod: String
    public let hostKeyMethod: String

    private let queue: DispatchQueue
    private let session: LibSSH2Session

    private init(target: SSHTarget, queue: DispatchQueue, session: LibSSH2Session,
                 info: LibSSH2Session.ConnectInfo) {
        self.target = target
        self.queue = queue
        self.session = session
        self.connectDuration = info.connect
        self.authDuration = info.auth
        self.keyExchangeMethod = info.keyExchange
        self.hostKeyMethod = info.hostKeyType
    }

    /// Connects, verifies the host key against known_hosts (before any authentication), and
    /// authenticates with the agent and/or identity files, all within `target.connectTimeout`.
    public static func connect(_ target: SSHTarget) async throws -> SSHConnection {
        let queue = DispatchQueue(label: "ccrun.ssh.\(target.name)")
        let cancel = CancelFlag()
        let box = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<SessionBox, Error>) in
                queue.async {
                    let session = LibSSH2Session(target: target)
                    session.cancel = cancel
                    do {
                        let info = try session.connect()
                        continuation.resume(returning: SessionBox(session: session, info: info))
                    } catch {
                        session.shutdown()
                        continuation.resume(throwing: error)
                    }
                }
            }
        } onCancel: {
            cancel.cancel()
        }
        return SSHConnection(target: target, queue: queue, session: box.session, info: box.info)
    }

    /// Runs `script` on a new channel (through the login shell's `-c`, or `sudo -n -- sh -c` when
    /// the target uses sudo), feeding `stdin` and collecting stdout, stderr and the exit status.
    /// Secrets belong in `stdin`, never in `script` (command lines are visible in process lists).
    /// A non-zero exit status is returned, not thrown; `sudo -n` refusing is thrown.
    public func run(_ script: String, stdin: Data? = nil, timeout: Duration? = nil) async throws -> CommandOutput {
        let body = target.usesSudo ? "sudo -n -- sh -c \(ShellQuote.quote(script))" : script
        let command = CommandPID.announce + body
        let limit = timeout ?? target.commandTimeout
        let display = Self.summary(of: script)
        let output: CommandOutput
        do {
            output = try await onQueue { session in
                try session.run(command, stdin: stdin, timeout: limit, display: display)
            }
        } catch TransportError.commandTimeout(let host, let command, let after) {
            await stopTimedOutCommand()
            throw TransportError.commandTimeout(host: host, command: command, after: after)
        }
        if target.usesSudo, output.exitStatus == 1, let reason = Self.sudoRefusal(output.stderrText) {
            throw TransportError.sudoFailed(user: target.user, host: target.name, detail: reason)
        }
        return output
    }

    /// Ends what a timed-out command left running on the host (its whole process group, which
    /// sshd made the command's own), so a hung `apt-get` does not keep holding its lock. Best effort.
    private func stopTimedOutCommand() async {
        guard let pid = try? await onQueue({ session in session.timedOutCommandPID }) else { return }
        _ = try? await run("kill -TERM -- -\(pid) 2>/dev/null || kill -TERM \(pid) 2>/dev/null; true",
                           timeout: .seconds(3))
    }

    /// Writes `data` to `path` with permission bits `mode` (e.g. 0o644).
    ///
    /// With `atomic`, the data goes to a temporary name in the same directory, which is then renamed
    /// over `path` (rename(2) is atomic within a file system), so readers never see a partial file.
    /// Under sudo the data is first written over SFTP to a private (0600) file in /tmp, then moved
    /// into place by a privileged command (the file then belongs to root).
    /// `progress` sees the bytes sent so far after each SFTP write (on the connection's queue).
    /// A failed write removes what it wrote under a temporary or staging name.
    public func upload(_ data: Data, to path: String, mode: UInt32, atomic: Bool = true,
                       progress: (@Sendable (Int) -> Void)? = nil) async throws {
        let timeout = target.commandTimeout
        let permissions = mode & 0o7777
        let directory = path.deletingLastPathComponent
        let base = path.lastPathComponent
        let token = UUID().uuidString.prefix(8).lowercased()
        if target.usesSudo {
            let staging = "/tmp/.ccrun-upload-\(token)"
            do {
                try await onQueue { session in
                    try session.sftpWrite(data, to: staging, mode: 0o600, exclusive: true, timeout: timeout, progress: progress)
                }
            } catch {
                try? await onQueue { session in session.sftpUnlink(staging, timeout: .seconds(2)) }
                throw error
            }
            let octal = String(permissions, radix: 8)
            let q = ShellQuote.quote
            // `s` (staging) and `t` (temporary beside the target) are removed on any exit.
            let script = atomic
                ? "set -e; s=\(q(staging)); t=; trap 'rm -f -- \"$s\" ${t:+\"$t\"}' EXIT; "
                    + "t=$(mktemp \(q(directory.isEmpty ? "." : directory))/.ccrun-tmp-XXXXXX); "
                    + "cat -- \"$s\" > \"$t\"; chmod \(octal) \"$t\"; mv -f -- \"$t\" \(q(path))"
                : "set -e; s=\(q(staging)); trap 'rm -f -- \"$s\"' EXIT; "
                    + "cat -- \"$s\" > \(q(path)); chmod \(octal) \(q(path))"
            let result = try await run(script, timeout: timeout)
            guard result.succeeded else {
                throw TransportError.sftp(host: target.name, operation: "upload", path: path,
                                          detail: "privileged move failed: \(result.stderrText.trimmed)")
            }
            return
        }
        guard atomic else {
            try await onQueue { session in
                try session.sftpWrite(data, to: path, mode: permissions, exclusive: false, timeout: timeout, progress: progress)
            }
            return
        }
        let temporary = (directory.isEmpty ? "" : directory + "/") + ".\(base).ccrun-\(token)"
        do {
            try await onQueue { session in
                try session.sftpWrite(data, to: temporary, mode: permissions, exclusive: true, timeout: timeout, progress: progress)
            }
        } catch {
            try? await onQueue { session in session.sftpUnlink(temporary, timeout: .seconds(2)) }
            throw error
        }
        // SFTP v3 rename refuses to replace an existing file (and libssh2 1.10 lacks OpenSSH's
        // posix-rename extension), so the atomic replace is a `mv -f`, i.e. rename(2), on the host.
        let q = ShellQuote.quote
        let result: CommandOutput
        do {
            result = try await run("mv -f -- \(q(temporary)) \(q(path))", timeout: timeout)
        } catch {
            try? await onQueue { session in session.sftpUnlink(temporary, timeout: .seconds(2)) }
            throw error
        }
        guard result.succeeded else {
            try? await onQueue { session in session.sftpUnlink(temporary, timeout: .seconds(2)) }
            throw TransportError.sftp(host: target.name, operation: "rename", path: path,
                                      detail: result.stderrText.trimmed)
        }
    }

    /// The contents of `path`, or nil when it does not exist. Under sudo the file is read by a
    /// privileged `cat`, so root-only files are readable.
    public func readFile(_ path: String) async throws -> Data? {
        if target.usesSudo {
            let q = ShellQuote.quote(path)
            let result = try await run("if [ -e \(q) ]; then exec cat -- \(q); else exit 44; fi")
            if result.exitStatus == 44 { return nil }
            guard result.succeeded else {
                throw TransportError.sftp(host: target.name, operation: "read", path: path,
                                          detail: result.stderrText.trimmed)
            }
            return result.stdout
        }
        let timeout = target.commandTimeout
        return try await onQueue { session in try session.sftpRead(path, timeout: timeout) }
    }

    /// Disconnects. Later calls throw ``TransportError/closed(host:)``.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.session.shutdown()
                continuation.resume()
            }
        }
    }

    // MARK: helpers

    /// Runs `body` on the connection's queue; Task cancellation interrupts its waits.
    private func onQueue<T: Sendable>(_ body: @escaping @Sendable (LibSSH2Session) throws -> T) async throws -> T {
        let cancel = CancelFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
                queue.async {
                    self.session.cancel = cancel
                    continuation.resume(with: Result { try body(self.session) })
                }
            }
        } onCancel: {
            cancel.cancel()
        }
    }

    /// The first line of a script, shortened, for error messages.
    static func summary(of script: String) -> String {
        let firstLine = script.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
        let trimmed = firstLine.trimmingCharacters(in: .whitespaces)
        let short = trimmed.count > 80 ? String(trimmed.prefix(77)) + "..." : trimmed
        return script.contains("\n") ? short + " (...)" : short
    }

    /// sudo's own refusal messages (as opposed to the command failing with status 1).
    static func sudoRefusal(_ stderr: String) -> String? {
        for marker in ["a password is required", "a terminal is required", "is not in the sudoers file",
                       "is not allowed to run sudo", "sudo: command not found", "sudo: not found"]
        where stderr.contains(marker) {
            return stderr.trimmed
        }
        return nil
    }
}

/// The libssh2 session handed from the connect closure; confined to the connection's queue.
private struct SessionBox: @unchecked Sendable {
    // @unchecked: created on the queue and, after this hand-over, used only on that queue.
    let session: LibSSH2Session
    let info: LibSSH2Session.ConnectInfo
}

/// Each command first reports its shell's pid on stderr (one line, removed before the caller
/// sees stderr), so a command that times out can be stopped on the host. The line is written by
/// the command's own shell, before the script, so the script runs unchanged in that shell.
enum CommandPID {
    static let marker = "__ccrun_pid="
    static let announce = "echo \(marker)$$ >&2\n"

    /// The pid from the first marker line, if present.
    static func parse(_ stderr: Data) -> Int32? {
        guard let range = stderr.range(of: Data(marker.utf8)) else { return nil }
        let digits = stderr[range.upperBound...].prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        return Int32(String(decoding: digits, as: UTF8.self))
    }

    /// stderr without the first marker line.
    static func strip(_ stderr: Data) -> Data {
        guard let range = stderr.range(of: Data(marker.utf8)) else { return stderr }
        var end = range.upperBound
        while end < stderr.endIndex, stderr[end] != UInt8(ascii: "\n") { end += 1 }
        if end < stderr.endIndex { end += 1 }
        var result = Data(stderr[stderr.startIndex..<range.lowerBound])
        result.append(stderr[end...])
        return result
    }
}

/// POSIX shell single-quoting.
public enum ShellQuote {
    /// `text` as one shell word: wrapped in single quotes, each `'` written as `'\''`.
    public static func quote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
