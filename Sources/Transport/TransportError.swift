import LeanFoundation

/// Every way reaching or using a host can fail, each with the facts a user needs to act on it.
public enum TransportError: Error, CustomStringConvertible, LocalizedError, Sendable, Equatable {
    /// The host name did not resolve.
    case nameResolution(host: String, reason: String)
    /// TCP connect refused or failed (`reason` is the errno text, e.g. "Connection refused").
    case unreachable(host: String, port: Int, reason: String)
    /// TCP connect, key exchange or authentication did not finish in time.
    case connectTimeout(host: String, port: Int, stage: String, after: Duration)
    /// The SSH handshake (key exchange) failed.
    case handshakeFailed(host: String, port: Int, detail: String)
    /// The server's host key is not in known_hosts and the policy is strict.
    case hostKeyUnknown(host: String, port: Int, keyType: String, fingerprint: String, knownHostsPath: String)
    /// The server's host key differs from the one in known_hosts. Always refused.
    case hostKeyChanged(host: String, port: Int, keyType: String, fingerprint: String,
                        expectedFingerprint: String, knownHostsPath: String)
    /// known_hosts could not be read or written.
    case knownHostsFile(path: String, reason: String)
    /// No key was accepted for this user.
    case authenticationFailed(user: String, host: String, tried: [String], detail: String)
    /// `sudo -n` refused (password required, or user not in sudoers).
    case sudoFailed(user: String, host: String, detail: String)
    /// The command ran longer than its timeout (it was abandoned; its channel closed).
    case commandTimeout(host: String, command: String, after: Duration)
    /// The connection died (reset, cut link, server gone) while in use.
    case linkLost(host: String, detail: String)
    /// The server refused to open a channel or start the command.
    case channelFailed(host: String, detail: String)
    /// An SFTP operation on `path` failed.
    case sftp(host: String, operation: String, path: String, detail: String)
    /// The connection was closed by `close()` before this call.
    case closed(host: String)
    /// libssh2 itself failed (allocation, init).
    case library(String)

    public var description: String {
        switch self {
        case let .nameResolution(host, reason):
            return "cannot resolve host name '\(host)': \(reason). Check the name, or use an IP address."
        case let .unreachable(host, port, reason):
            return "cannot connect to \(host):\(port): \(reason). Check that the host is up, "
                + "sshd listens on port \(port), and no firewall blocks it."
        case let .connectTimeout(host, port, stage, after):
            return "timed out after \(after.secondsText) during \(stage) with \(host):\(port). "
                + "The host may be down or filtered; raise the connect timeout if the link is slow."
        case let .handshakeFailed(host, port, detail):
            return "SSH handshake with \(host):\(port) failed: \(detail)"
        case let .hostKeyUnknown(host, port, keyType, fingerprint, path):
            return "host key of \(KnownHosts.hostPattern(host: host, port: port)) is not known "
                + "(\(keyType) \(fingerprint)); refused. Verify the fingerprint out of band, then add it to "
                + "\(path) (e.g. `ssh-keyscan -p \(port) -t \(keyType) \(host) >> \(path)`) "
                + "or run again accepting new host keys (--accept-new-host-keys)."
        case let .hostKeyChanged(host, port, keyType, fingerprint, expected, path):
            return "HOST KEY CHANGED for \(KnownHosts.hostPattern(host: host, port: port)): the server offered "
                + "\(keyType) \(fingerprint) but \(path) lists \(expected). Someone may be intercepting "
                + "the connection, or the host was reinstalled. Connection refused before authentication. "
                + "If the change is expected, remove the old entry "
                + "(`ssh-keygen -R '\(KnownHosts.hostPattern(host: host, port: port))' -f \(path)`) and connect again."
        case let .knownHostsFile(path, reason):
            return "known_hosts file \(path): \(reason)"
        case let .authenticationFailed(user, host, tried, detail):
            let keys = tried.isEmpty ? "no keys (none configured or found)" : tried.joined(separator: ", ")
            return "authentication as '\(user)' on \(host) failed; tried: \(keys). \(detail) "
                + "Check that the public key is in ~\(user)/.ssh/authorized_keys on the host "
                + "(ed25519 or ECDSA keys; RSA is not supported)."
        case let .sudoFailed(user, host, detail):
            return "sudo -n as '\(user)' on \(host) failed: \(detail). The user needs passwordless sudo "
                + "(a NOPASSWD rule in /etc/sudoers.d)."
        case let .commandTimeout(host, command, after):
            return "command on \(host) did not finish within \(after.secondsText) and was abandoned: \(command)"
        case let .linkLost(host, detail):
            return "connection to \(host) lost: \(detail). Check the network; a later run can resume."
        case let .channelFailed(host, detail):
            return "cannot start a command on \(host): \(detail)"
        case let .sftp(host, operation, path, detail):
            return "SFTP \(operation) of \(path) on \(host) failed: \(detail)"
        case let .closed(host):
            return "connection to \(host) was already closed"
        case let .library(detail):
            return "libssh2: \(detail)"
        }
    }

    public var errorDescription: String? { description }
}

extension Duration {
    /// "1.5 s" style text for messages.
    var secondsText: String {
        let (seconds, attoseconds) = components
        let value = Double(seconds) + Double(attoseconds) / 1e18
        return value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
    }
}
