import CLibSSH2
import LeanFoundation
#if canImport(Glibc)
import Glibc
#endif

/// libssh2 must be initialised once per process before any session; `static let` makes that
/// thread-safe and lazy.
enum LibSSH2 {
    static let initResult: Int32 = libssh2_init(0)
    static let eagain = ccr_ssh_error_eagain()
}

/// One libssh2 session in non-blocking mode over its own socket.
///
/// Not thread-safe by itself: ``SSHConnection`` confines every instance to one serial queue.
/// Every libssh2 call is retried on `EAGAIN` after `poll(2)` on the socket, with a deadline, so
/// nothing here can wait longer than the caller allows.
final class LibSSH2Session {
    let target: SSHTarget
    private var fd: Int32 = -1
    private var session: OpaquePointer?
    private var sftp: OpaquePointer?
    /// Set when the link failed; later calls fail fast instead of touching a broken session.
    private(set) var failure: TransportError?
    private var keepaliveInterval: Duration
    private var lastKeepalive = ContinuousClock.now
    var cancel = CancelFlag()
    /// The remote shell's pid of the last command that timed out (from its ``CommandPID`` line).
    private(set) var timedOutCommandPID: Int32?

    private var name: String { target.name }

    init(target: SSHTarget) {
        self.target = target
        keepaliveInterval = max(.seconds(1), target.linkTimeout / 3)
    }

    deinit { shutdown() }

    // MARK: connect

    /// TCP connect, key exchange, host key check, authentication; all within `connectTimeout`.
    /// What ``connect()`` measured and negotiated.
    struct ConnectInfo {
        var connect: Duration
        var auth: Duration
        var keyExchange: String
        var hostKeyType: String
    }

    func connect() throws -> ConnectInfo {
        guard LibSSH2.initResult == 0 else { throw TransportError.library("libssh2_init failed") }
        let started = ContinuousClock.now
        let deadline = started + target.connectTimeout
        let knownHosts = try KnownHosts.load(path: target.knownHostsPath)

        fd = try SocketConnector.connect(host: target.host, port: target.port, timeout: target.connectTimeout,
                                         deadline: deadline, linkTimeout: target.linkTimeout, cancel: cancel)
        guard let session = ccr_ssh_session_init() else { throw TransportError.library("cannot allocate a session") }
        self.session = session
        libssh2_session_set_blocking(session, 0)
        // Prefer curve25519 (fast, no parameter negotiation) and ask for a host key type that
        // known_hosts can vouch for, as OpenSSH does.
        _ = libssh2_session_method_pref(session, LIBSSH2_METHOD_KEX,
            "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,"
            + "ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
            + "diffie-hellman-group14-sha256")
        let defaultHostKeys = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                               "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
        let known = knownHosts.keyTypes(host: target.host, port: target.port)
        let hostKeyOrder = known.filter(defaultHostKeys.contains) + defaultHostKeys.filter { !known.contains($0) }
        _ = libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, hostKeyOrder.joined(separator: ","))

        try retry(deadline: deadline, stage: "key exchange") { libssh2_session_handshake(session, fd) }
        try verifyHostKey(knownHosts: knownHosts, knownTypes: known)
        let connected = ContinuousClock.now - started
        try authenticate(deadline: deadline)
        libssh2_keepalive_config(session, 1, UInt32(max(1, keepaliveInterval.components.seconds)))
        let kex = libssh2_session_methods(session, LIBSSH2_METHOD_KEX).map { String(cString: $0) } ?? "?"
        let hostKey = libssh2_session_methods(session, LIBSSH2_METHOD_HOSTKEY).map { String(cString: $0) } ?? "?"
        return ConnectInfo(connect: connected, auth: ContinuousClock.now - started - connected,
                           keyExchange: kex, hostKeyType: hostKey)
    }

    private func verifyHostKey(knownHosts: KnownHosts, knownTypes: [String]) throws {
        guard let session else { return }
        var length = 0
        var type: Int32 = 0
        guard let raw = libssh2_session_hostkey(session, &length, &type), length > 0 else {
            throw TransportError.handshakeFailed(host: name, port: target.port, detail: "server sent no host key")
        }
        let key = Data(bytes: raw, count: length)
        let keyType = Self.keyType(ofBlob: key) ?? "unknown"
        let fingerprint = KnownHosts.fingerprint(key)
        switch knownHosts.verify(host: target.host, port: target.port, keyType: keyType, key: key) {
        case .match:
            return
        case .mismatch(let expected):
            throw TransportError.hostKeyChanged(host: target.host, port: target.port, keyType: keyType,
                                                fingerprint: fingerprint, expectedFingerprint: expected,
                                                knownHostsPath: target.knownHostsPath)
        case .unknown:
            if !knownTypes.isEmpty {
                // The host is known, yet it did not offer any key type we know it by.
                throw TransportError.hostKeyChanged(
                    host: target.host, port: target.port, keyType: keyType, fingerprint: fingerprint,
                    expectedFingerprint: "a key of type \(knownTypes.joined(separator: "/"))",
                    knownHostsPath: target.knownHostsPath)
            }
            guard target.hostKeyPolicy == .acceptNew else {
                throw TransportError.hostKeyUnknown(host: target.host, port: target.port, keyType: keyType,
                                                    fingerprint: fingerprint, knownHostsPath: target.knownHostsPath)
            }
            try KnownHosts.append(host: target.host, port: target.port, keyType: keyType, key: key,
                                  to: target.knownHostsPath)
        }
    }

    /// The key type name at the start of an SSH public key blob (`string type, ...`).
    static func keyType(ofBlob blob: Data) -> String? {
        guard blob.count >= 4 else { return nil }
        let bytes = [UInt8](blob.prefix(4))
        let length = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        guard length > 0, blob.count >= 4 + length else { return nil }
        return String(decoding: blob.dropFirst(4).prefix(length), as: UTF8.self)
    }

    private func authenticate(deadline: ContinuousClock.Instant) throws {
        guard let session else { return }
        let user = target.user
        // Keys are offered straight away: asking for the method list first (the "none" method)
        // costs a round trip and a pass through sshd's authentication on every connection. The
        // list is asked for only to explain a failure (see `authenticationFailure`).
        var tried: [String] = []
        if target.useAgent {
            if try authenticateWithAgent(deadline: deadline, tried: &tried) { return }
        }
        let files = target.identityFiles.isEmpty ? SSHTarget.defaultIdentityFiles : target.identityFiles
        for file in files {
            guard FileManager.default.isReadableFile(atPath: file) else {
                tried.append("\(file) (missing or unreadable)")
                continue
            }
            var rc: Int32
            repeat {
                rc = ccr_ssh_userauth_publickey_fromfile(session, user, file, nil)
                if rc == LibSSH2.eagain { try waitSocket(deadline: deadline, stage: "authentication") }
            } while rc == LibSSH2.eagain
            if rc == 0 { return }
            if let linkError = linkError(rc) { throw linkError }
            if rc == LIBSSH2_ERROR_FILE || rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED {
                tried.append("\(file) (cannot use: \(lastErrorMessage()); encrypted or unsupported key?)")
            } else {
                tried.append("\(file) (rejected)")
            }
        }
        throw authenticationFailure(tried: tried, deadline: deadline)
    }

    /// The error for keys all refused: says so plainly when the server does not take public keys
    /// at all (its method list, asked for only now).
    private func authenticationFailure(tried: [String], deadline: ContinuousClock.Instant) -> TransportError {
        var methods: String?
        if let session {
            while methods == nil {
                if let list = libssh2_userauth_list(session, target.user, UInt32(target.user.utf8.count)) {
                    methods = String(cString: list)
                } else if libssh2_session_last_errno(session) != LibSSH2.eagain || (try? waitSocket(deadline: deadline, stage: "authentication")) == nil {
                    break
                }
            }
        }
        if let methods, !methods.split(separator: ",").contains("publickey") {
            return TransportError.authenticationFailed(user: target.user, host: name, tried: [],
                detail: "The server does not accept public keys (it offers: \(methods)).")
        }
        return TransportError.authenticationFailed(user: target.user, host: name, tried: tried, detail: "")
    }

    private func authenticateWithAgent(deadline: ContinuousClock.Instant, tried: inout [String]) throws -> Bool {
        guard let session else { return false }
        guard let socketPath = target.agentSocketPath ?? ProcessInfo.processInfo.environment["SSH_AUTH_SOCK"],
              !socketPath.isEmpty else {
            tried.append("ssh-agent (SSH_AUTH_SOCK not set)")
            return false
        }
        guard let agent = libssh2_agent_init(session) else { return false }
        defer { libssh2_agent_disconnect(agent); libssh2_agent_free(agent) }
        libssh2_agent_set_identity_path(agent, socketPath)
        guard libssh2_agent_connect(agent) == 0, libssh2_agent_list_identities(agent) == 0 else {
            tried.append("ssh-agent (cannot connect: \(lastErrorMessage()))")
            return false
        }
        var previous: UnsafeMutablePointer<libssh2_agent_publickey>?
        var identity: UnsafeMutablePointer<libssh2_agent_publickey>?
        while libssh2_agent_get_identity(agent, &identity, previous) == 0, let current = identity {
            previous = current
            let comment = current.pointee.comment.map { String(cString: $0) } ?? "key"
            var rc: Int32
            repeat {
                rc = libssh2_agent_userauth(agent, target.user, current)
                if rc == LibSSH2.eagain { try waitSocket(deadline: deadline, stage: "authentication") }
            } while rc == LibSSH2.eagain
            if rc == 0 { return true }
            if let linkError = linkError(rc) { throw linkError }
            tried.append("ssh-agent key \(comment) (rejected)")
        }
        if previous == nil { tried.append("ssh-agent (no keys)") }
        return false
    }

    // MARK: commands

    /// Longest command sent in the exec request itself. WHY: libssh2 cannot send a channel
    /// request packet much over 32 KB ("Unable to send channel request"), and a runbook's first
    /// batch of probes on a systemd host (journalctl fallbacks per service) passed that.
    static let maxInlineCommand = 30_000

    /// The exec request and the stdin to send for `command`. A longer command travels at the
    /// head of stdin instead: a short bootstrap reads exactly its bytes (`dd iflag=fullblock`
    /// never reads past them, unlike `head`) and evaluates them in the login shell that would
    /// have run it, leaving the rest of stdin to the command.
    static func execRequest(_ command: String, stdin: Data?) -> (exec: String, stdin: Data) {
        let bytes = Data(command.utf8)
        guard bytes.count > maxInlineCommand else { return (command, stdin ?? Data()) }
        let bootstrap = "eval \"$(dd bs=\(bytes.count) count=1 iflag=fullblock 2>/dev/null)\""
        return (bootstrap, bytes + (stdin ?? Data()))
    }

    func run(_ command: String, stdin: Data?, timeout: Duration, display: String) throws -> CommandOutput {
        guard let session else { throw TransportError.closed(host: name) }
        if let failure { throw failure }
        let deadline = ContinuousClock.now + timeout
        let timedOut = TransportError.commandTimeout(host: name, command: display, after: timeout)

        let channel = try openChannel(deadline: deadline, timedOut: timedOut)
        var finished = false
        defer { if !finished { abandon(channel) } }

        let (exec, input) = Self.execRequest(command, stdin: stdin)
        try retry(deadline: deadline, timedOut: timedOut) { ccr_ssh_channel_exec(channel, exec) }

        var stdout = Data(), stderr = Data()
        var written = 0
        var eofSent = false
        let bufferSize = 256 * 1024
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bufferSize)
        defer { buffer.deallocate() }

        timedOutCommandPID = nil
        do {
            while true {
                var progressed = false
                if !eofSent {
                    if written < input.count {
                        let rc = input.withUnsafeBytes { raw -> Int in
                            let base = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
                            return ccr_ssh_channel_write(channel, base + written, min(input.count - written, 64 * 1024))
                        }
                        if rc > 0 { written += rc; progressed = true }
                        else if rc != Int(LibSSH2.eagain) && rc != 0 {
                            // The command may exit without reading its stdin; stop feeding it.
                            if let linkError = linkError(Int32(rc)) { throw linkError }
                            written = input.count
                        }
                    }
                    if written >= input.count {
                        let rc = libssh2_channel_send_eof(channel)
                        if rc == 0 { eofSent = true; progressed = true }
                        else if rc != LibSSH2.eagain {
                            if let linkError = linkError(rc) { throw linkError }
                            eofSent = true
                        }
                    }
                }
                let out = ccr_ssh_channel_read(channel, buffer, bufferSize)
                if out > 0 { stdout.append(UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: out); progressed = true }
                else if out < 0 && out != Int(LibSSH2.eagain) { throw error(Int32(out), stage: "reading output") }
                let err = ccr_ssh_channel_read_stderr(channel, buffer, bufferSize)
                if err > 0 { stderr.append(UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: err); progressed = true }
                else if err < 0 && err != Int(LibSSH2.eagain) { throw error(Int32(err), stage: "reading output") }

                if !progressed {
                    if libssh2_channel_eof(channel) != 0 && out <= 0 && err <= 0 { break }
                    try waitSocket(deadline: deadline, timedOut: timedOut)
                }
            }
        } catch let error as TransportError {
            if case .commandTimeout = error { timedOutCommandPID = CommandPID.parse(stderr) }
            throw error
        }
        try retry(deadline: deadline, timedOut: timedOut) { libssh2_channel_close(channel) }
        try retry(deadline: deadline, timedOut: timedOut) { libssh2_channel_wait_closed(channel) }
        var status = libssh2_channel_get_exit_status(channel)
        if let signal = exitSignal(channel) { status = 128 + signal }
        finished = true
        try retry(deadline: deadline, timedOut: timedOut) { libssh2_channel_free(channel) }
        _ = session
        return CommandOutput(stdout: stdout, stderr: CommandPID.strip(stderr), exitStatus: status)
    }

    private func openChannel(deadline: ContinuousClock.Instant, timedOut: TransportError) throws -> OpaquePointer {
        guard let session else { throw TransportError.closed(host: name) }
        while true {
            if let channel = ccr_ssh_channel_open_session(session) { return channel }
            let rc = libssh2_session_last_errno(session)
            guard rc == LibSSH2.eagain else {
                if let linkError = linkError(rc) { throw linkError }
                throw TransportError.channelFailed(host: name, detail: lastErrorMessage())
            }
            try waitSocket(deadline: deadline, timedOut: timedOut)
        }
    }

    /// Gives a channel up after a timeout or error: a short, bounded attempt to close and free it.
    /// If the server does not answer, the channel is left to be freed with the session.
    private func abandon(_ channel: OpaquePointer) {
        guard failure == nil else { return }
        let deadline = ContinuousClock.now + .milliseconds(300)
        let gaveUp = TransportError.library("abandon")
        _ = try? retry(deadline: deadline, timedOut: gaveUp) { libssh2_channel_close(channel) }
        _ = try? retry(deadline: deadline, timedOut: gaveUp) { libssh2_channel_free(channel) }
    }

    private func exitSignal(_ channel: OpaquePointer) -> Int32? {
        var signal: UnsafeMutablePointer<CChar>?
        var length = 0
        guard libssh2_channel_get_exit_signal(channel, &signal, &length, nil, nil, nil, nil) == 0,
              let signal else { return nil }
        defer { libssh2_free(session, signal) }
        let names: [String: Int32] = ["HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "ABRT": 6, "FPE": 8,
                                      "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13,
                                      "ALRM": 14, "TERM": 15]
        return names[String(cString: signal)] ?? 127
    }

    // MARK: SFTP

    private func sftpSession(deadline: ContinuousClock.Instant, path: String, operation: String) throws -> OpaquePointer {
        if let sftp { return sftp }
        guard let session else { throw TransportError.closed(host: name) }
        while true {
            if let handle = libssh2_sftp_init(session) { sftp = handle; return handle }
            let rc = libssh2_session_last_errno(session)
            guard rc == LibSSH2.eagain else {
                if let linkError = linkError(rc) { throw linkError }
                throw TransportError.sftp(host: name, operation: operation, path: path,
                                          detail: "cannot start the SFTP subsystem: \(lastErrorMessage())")
            }
            try waitSocket(deadline: deadline, stage: "SFTP start")
        }
    }

    /// Writes `data` to `path` over SFTP. With `exclusive`, the file must not exist yet.
    func sftpWrite(_ data: Data, to path: String, mode: UInt32, exclusive: Bool, timeout: Duration,
                   progress: ((Int) -> Void)? = nil) throws {
        if let failure { throw failure }
        let deadline = ContinuousClock.now + timeout
        let timedOut = TransportError.sftp(host: name, operation: "upload", path: path,
                                           detail: "timed out after \(timeout.secondsText)")
        let sftp = try sftpSession(deadline: deadline, path: path, operation: "upload")
        let flags = exclusive ? ccr_sftp_fxf_write_create_exclusive() : ccr_sftp_fxf_write_create_truncate()
        let handle = try sftpOpen(sftp, path: path, flags: flags, mode: Int(mode), operation: "upload",
                                  deadline: deadline, timedOut: timedOut)
        var closed = false
        defer { if !closed { _ = try? retry(deadline: deadline, timedOut: timedOut) { ccr_sftp_close(handle) } } }

        var offset = 0
        try data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: CChar.self) else { return }
            while offset < raw.count {
                let rc = libssh2_sftp_write(handle, base + offset, min(raw.count - offset, 256 * 1024))
                if rc > 0 { offset += rc; progress?(offset); continue }
                if rc == Int(LibSSH2.eagain) { try waitSocket(deadline: deadline, timedOut: timedOut); continue }
                throw sftpError(Int32(rc), sftp: sftp, operation: "write", path: path)
            }
        }
        // The open mode is filtered by the server's umask; set the exact bits.
        var attributes = LIBSSH2_SFTP_ATTRIBUTES()
        attributes.flags = UInt(LIBSSH2_SFTP_ATTR_PERMISSIONS)
        attributes.permissions = UInt(mode)
        let rc = try retry(deadline: deadline, timedOut: timedOut, allowFailure: true) { ccr_sftp_fsetstat(handle, &attributes) }
        if rc != 0 { throw sftpError(rc, sftp: sftp, operation: "chmod", path: path) }
        closed = true
        let closeRC = try retry(deadline: deadline, timedOut: timedOut, allowFailure: true) { ccr_sftp_close(handle) }
        if closeRC != 0 { throw sftpError(closeRC, sftp: sftp, operation: "close", path: path) }
    }

    /// Reads `path` over SFTP; nil when it does not exist.
    func sftpRead(_ path: String, timeout: Duration) throws -> Data? {
        if let failure { throw failure }
        let deadline = ContinuousClock.now + timeout
        let timedOut = TransportError.sftp(host: name, operation: "read", path: path,
                                           detail: "timed out after \(timeout.secondsText)")
        let sftp = try sftpSession(deadline: deadline, path: path, operation: "read")
        let handle: OpaquePointer
        do {
            handle = try sftpOpen(sftp, path: path, flags: ccr_sftp_fxf_read(), mode: 0, operation: "read",
                                  deadline: deadline, timedOut: timedOut)
        } catch SFTPOpenError.noSuchFile {
            return nil
        }
        defer { _ = try? retry(deadline: deadline, timedOut: timedOut) { ccr_sftp_close(handle) } }
        var result = Data()
        let size = 256 * 1024
        let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
        defer { buffer.deallocate() }
        while true {
            let rc = libssh2_sftp_read(handle, buffer, size)
            if rc > 0 { result.append(UnsafeRawPointer(buffer).assumingMemoryBound(to: UInt8.self), count: rc); continue }
            if rc == 0 { return result }
            if rc == Int(LibSSH2.eagain) { try waitSocket(deadline: deadline, timedOut: timedOut); continue }
            throw sftpError(Int32(rc), sftp: sftp, operation: "read", path: path)
        }
    }

    func sftpUnlink(_ path: String, timeout: Duration) {
        guard failure == nil, let sftp else { return }
        let deadline = ContinuousClock.now + timeout
        _ = try? retry(deadline: deadline, timedOut: .library("unlink"), allowFailure: true) { ccr_sftp_unlink(sftp, path) }
    }

    private enum SFTPOpenError: Error { case noSuchFile }

    private func sftpOpen(_ sftp: OpaquePointer, path: String, flags: UInt, mode: Int, operation: String,
                          deadline: ContinuousClock.Instant, timedOut: TransportError) throws -> OpaquePointer {
        guard let session else { throw TransportError.closed(host: name) }
        while true {
            if let handle = ccr_sftp_open(sftp, path, flags, mode) { return handle }
            let rc = libssh2_session_last_errno(session)
            if rc == LibSSH2.eagain { try waitSocket(deadline: deadline, timedOut: timedOut); continue }
            if rc == LIBSSH2_ERROR_SFTP_PROTOCOL, libssh2_sftp_last_error(sftp) == UInt(LIBSSH2_FX_NO_SUCH_FILE),
               flags == ccr_sftp_fxf_read() {
                throw SFTPOpenError.noSuchFile
            }
            throw sftpError(rc, sftp: sftp, operation: operation, path: path)
        }
    }

    private func sftpError(_ rc: Int32, sftp: OpaquePointer, operation: String, path: String) -> TransportError {
        if let linkError = linkError(rc) { return linkError }
        if rc == LIBSSH2_ERROR_SFTP_PROTOCOL {
            let code = libssh2_sftp_last_error(sftp)
            let text: String
            switch code {
            case 2: text = "no such file or directory"
            case 3: text = "permission denied"
            case 4: text = "failure (e.g. file exists, disk full, or directory missing)"
            default: text = "SFTP status \(code)"
            }
            return .sftp(host: name, operation: operation, path: path, detail: text)
        }
        return .sftp(host: name, operation: operation, path: path, detail: lastErrorMessage())
    }

    // MARK: waiting

    /// Calls `body` until it stops returning EAGAIN; a negative result is an error unless
    /// `allowFailure`, in which case it is returned.
    @discardableResult
    private func retry(deadline: ContinuousClock.Instant, stage: String? = nil, timedOut: TransportError? = nil,
                       allowFailure: Bool = false, line: Int = #line, _ body: () -> Int32) throws -> Int32 {
        while true {
            let rc = body()
            if rc == LibSSH2.eagain {
                if let timedOut { try waitSocket(deadline: deadline, timedOut: timedOut, line: line) }
                else { try waitSocket(deadline: deadline, stage: stage ?? "SSH", line: line) }
                continue
            }
            if rc < 0 && !allowFailure { throw error(rc, stage: stage ?? "SSH") }
            if rc < 0, let linkError = linkError(rc) { throw linkError }
            return rc
        }
    }

    private func waitSocket(deadline: ContinuousClock.Instant, stage: String, line: Int = #line) throws {
        try waitSocket(deadline: deadline, timedOut: .connectTimeout(host: name, port: target.port, stage: stage,
                                                                       after: target.connectTimeout), line: line)
    }

    /// Waits until the socket is ready in the direction libssh2 is blocked on, the deadline
    /// passes (throws `timedOut`), or the task is cancelled. Sends keepalives while waiting so a
    /// dead link shows up as unacknowledged data (TCP_USER_TIMEOUT).
    private func waitSocket(deadline: ContinuousClock.Instant, timedOut: TransportError, line: Int = #line) throws {
        try cancel.check()
        let now = ContinuousClock.now
        if now >= deadline { throw timedOut }
        if let session, now - lastKeepalive >= keepaliveInterval {
            var next: Int32 = 0
            _ = libssh2_keepalive_send(session, &next)
            lastKeepalive = now
        }
        var events: Int16 = 0
        if let session {
            let directions = libssh2_session_block_directions(session)
            if directions & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { events |= Int16(POLLIN) }
            if directions & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        }
        if events == 0 { events = Int16(POLLIN) }
        // sshd does not set TCP_NODELAY on non-interactive sessions, so its small replies wait
        // (Nagle) for our ACK, which Linux delays up to 40 ms. Quick ACKs avoid that stall; the
        // kernel clears the flag after a while, so it is re-armed before every wait.
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_QUICKACK, &one, socklen_t(MemoryLayout<Int32>.size))
        var pfd = pollfd(fd: fd, events: events, revents: 0)
        let slice = min((deadline - now).milliseconds, 250, keepaliveInterval.milliseconds)
        let ready = poll(&pfd, 1, Int32(max(1, slice)))
        if Self.trace {
            FileHandle.standardError.write(Data("ssh-trace \(name) line \(line): events \(events) ready \(ready) revents \(pfd.revents) waited \(ContinuousClock.now - now)\n".utf8))
        }
    }

    /// CCRUN_SSH_TRACE=1 prints every socket wait (for diagnosing stalls).
    static let trace = ProcessInfo.processInfo.environment["CCRUN_SSH_TRACE"] == "1"

    // MARK: errors

    private func lastErrorMessage() -> String {
        guard let session else { return "no session" }
        var message: UnsafeMutablePointer<CChar>?
        var length: Int32 = 0
        _ = libssh2_session_last_error(session, &message, &length, 0)
        return message.map { String(cString: $0) } ?? "unknown error"
    }

    /// A libssh2 result that means the connection itself is gone; remembered so later calls fail fast.
    private func linkError(_ rc: Int32) -> TransportError? {
        switch rc {
        case LIBSSH2_ERROR_SOCKET_SEND, LIBSSH2_ERROR_SOCKET_RECV, LIBSSH2_ERROR_SOCKET_DISCONNECT,
             LIBSSH2_ERROR_SOCKET_TIMEOUT, LIBSSH2_ERROR_TIMEOUT, LIBSSH2_ERROR_BANNER_RECV,
             LIBSSH2_ERROR_BANNER_SEND:
            // errno still holds the socket call's failure (e.g. ETIMEDOUT from TCP_USER_TIMEOUT).
            let savedErrno = errno
            var detail = lastErrorMessage()
            var soError: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            if fd >= 0, getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len) == 0, soError != 0 {
                detail += " (\(String(cString: strerror(soError))))"
            } else if savedErrno != 0 && savedErrno != EAGAIN && savedErrno != EINTR {
                detail += " (\(String(cString: strerror(savedErrno))))"
            }
            if savedErrno == ETIMEDOUT || soError == ETIMEDOUT {
                detail += "; the host stopped answering for more than \(target.linkTimeout.secondsText)"
            }
            let error = TransportError.linkLost(host: name, detail: detail)
            failure = error
            return error
        default:
            return nil
        }
    }

    private func error(_ rc: Int32, stage: String) -> TransportError {
        if let linkError = linkError(rc) { return linkError }
        switch stage {
        case "key exchange":
            return .handshakeFailed(host: name, port: target.port, detail: lastErrorMessage())
        case "authentication":
            return .authenticationFailed(user: target.user, host: name, tried: [], detail: lastErrorMessage())
        default:
            return .channelFailed(host: name, detail: "\(stage): \(lastErrorMessage())")
        }
    }

    // MARK: shutdown

    /// Disconnects politely when possible (bounded to half a second), then frees everything.
    func shutdown() {
        let deadline = ContinuousClock.now + .milliseconds(500)
        let gaveUp = TransportError.library("shutdown")
        if let sftp, failure == nil {
            _ = try? retry(deadline: deadline, timedOut: gaveUp, allowFailure: true) { libssh2_sftp_shutdown(sftp) }
        }
        sftp = nil
        if let session {
            if failure == nil {
                _ = try? retry(deadline: deadline, timedOut: gaveUp, allowFailure: true) {
                    ccr_ssh_session_disconnect(session, "ccrun done")
                }
            }
            // Freeing cannot block on a dead peer for long: the socket is closed right after.
            _ = try? retry(deadline: deadline, timedOut: gaveUp, allowFailure: true) { libssh2_session_free(session) }
        }
        session = nil
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        if failure == nil { failure = .closed(host: name) }
    }
}
