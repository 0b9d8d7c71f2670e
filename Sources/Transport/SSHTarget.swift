import LeanFoundation

/// What to do with a host key that known_hosts does not list yet.
///
/// A key that *differs* from the listed one is always refused, whatever the policy: that is the
/// case a man-in-the-middle produces, and it must never reach authentication.
public enum HostKeyPolicy: String, Sendable, Codable, Equatable {
    /// Unknown keys are refused (OpenSSH `StrictHostKeyChecking yes`).
    case strict
    /// Unknown keys are accepted and appended to known_hosts (`StrictHostKeyChecking accept-new`).
    case acceptNew
}

/// Everything needed to reach one host: where, as whom, with which keys, and how long to wait.
///
/// A plain value so it can be built from an inventory, a command line or an `~/.ssh/config`
/// alias (``SSHConfigFile``) and handed across tasks.
public struct SSHTarget: Sendable, Equatable {
    /// The name the user gave (inventory name or ssh_config alias); used in messages only.
    public var name: String
    /// Host name or IP address to connect to (ssh_config `HostName`); also the known_hosts key.
    public var host: String
    public var port: Int
    public var user: String
    /// Private key files tried in order (ed25519 or ECDSA; unencrypted).
    public var identityFiles: [String]
    /// The OpenSSH known_hosts file the host key is checked against (and appended to with `.acceptNew`).
    public var knownHostsPath: String
    public var hostKeyPolicy: HostKeyPolicy
    /// Limit for TCP connect + key exchange + authentication.
    public var connectTimeout: Duration
    /// Default limit for one command (``SSHConnection/run(_:stdin:timeout:)`` may override it).
    public var commandTimeout: Duration
    /// How long the link may stay silent (unacknowledged data, unanswered keepalives) before it is
    /// declared lost. Keeps a cut cable from hanging a command that has a long timeout.
    public var linkTimeout: Duration
    /// Try keys from ssh-agent before the identity files.
    public var useAgent: Bool
    /// The agent's socket; nil means `$SSH_AUTH_SOCK`.
    public var agentSocketPath: String?
    /// Run commands through `sudo -n` (only when `user` is not root).
    public var sudo: Bool

    public init(
        name: String? = nil,
        host: String,
        port: Int = 22,
        user: String = "root",
        identityFiles: [String] = [],
        knownHostsPath: String = SSHTarget.defaultKnownHostsPath,
        hostKeyPolicy: HostKeyPolicy = .strict,
        connectTimeout: Duration = .seconds(10),
        commandTimeout: Duration = .seconds(600),
        linkTimeout: Duration = .seconds(20),
        useAgent: Bool = false,
        agentSocketPath: String? = nil,
        sudo: Bool = false
    ) {
        self.name = name ?? host
        self.host = host
        self.port = port
        self.user = user
        self.identityFiles = identityFiles
        self.knownHostsPath = knownHostsPath
        self.hostKeyPolicy = hostKeyPolicy
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.linkTimeout = linkTimeout
        self.useAgent = useAgent
        self.agentSocketPath = agentSocketPath
        self.sudo = sudo
    }

    /// `~/.ssh/known_hosts` of the user running ccrun.
    public static var defaultKnownHostsPath: String { homeDirectory + "/.ssh/known_hosts" }

    /// `~/.ssh/id_ed25519` and `~/.ssh/id_ecdsa`, as OpenSSH would try them (only those that exist).
    public static var defaultIdentityFiles: [String] {
        ["id_ed25519", "id_ecdsa"].map { homeDirectory + "/.ssh/" + $0 }
            .filter { FileManager.default.fileExists(atPath: $0) }
    }

    /// True when commands must be wrapped in `sudo -n`.
    public var usesSudo: Bool { sudo && user != "root" }

    /// `user@host:port` for messages.
    public var endpointDescription: String { "\(user)@\(host):\(port)" }

    static var homeDirectory: String {
        ProcessInfo.processInfo.environment["HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? LeanFoundation.homeDirectory()
    }
}

extension SSHTarget {
    /// A target built from an `~/.ssh/config` alias, as `ssh ALIAS` would resolve it:
    /// `HostName`, `User`, `Port`, `IdentityFile` (and `UserKnownHostsFile`, `ConnectTimeout`,
    /// `StrictHostKeyChecking accept-new`) from the first matching `Host` blocks, first value wins.
    /// Values not set in the file come from `defaults` (its host is replaced by the alias).
    public static func fromSSHConfig(
        alias: String,
        config: SSHConfigFile,
        defaults: SSHTarget? = nil
    ) -> SSHTarget {
        let options = config.resolve(alias)
        var target = defaults ?? SSHTarget(host: alias)
        target.name = alias
        target.host = options.hostName ?? alias
        if let port = options.port { target.port = port }
        if let user = options.user { target.user = user }
        if !options.identityFiles.isEmpty { target.identityFiles = options.identityFiles }
        if let known = options.userKnownHostsFile { target.knownHostsPath = known }
        if let timeout = options.connectTimeout { target.connectTimeout = timeout }
        if let policy = options.hostKeyPolicy { target.hostKeyPolicy = policy }
        return target
    }

    /// Resolves `alias` through the current user's `~/.ssh/config` (a missing file resolves nothing).
    public static func fromSSHConfig(alias: String, defaults: SSHTarget? = nil) throws -> SSHTarget {
        let config = try SSHConfigFile.load(path: homeDirectory + "/.ssh/config")
        return fromSSHConfig(alias: alias, config: config, defaults: defaults)
    }
}
