import LeanFoundation

/// Starts a long-running process detached from ccrun (own session, output to a log file), so it
/// outlives the `ccrun lab up` that started it.
func startDaemon(_ command: [String], log: String, shell: Shell, label: String) throws {
    try shell.bash("setsid -f \(command.map(shellQuote).joined(separator: " ")) </dev/null >>\(shellQuote(log)) 2>&1",
                   label: "start \(label)")
}

/// Random letters and digits (no quoting issues in SQL, INI or shell).
func randomToken(_ length: Int) -> String {
    let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
    var generator = SystemRandomNumberGenerator()
    return String((0..<length).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] })
}

/// Random lowercase hex digits (a machine-id is 32 of them).
func randomHex(_ length: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    return String((0..<length).map { _ in Array("0123456789abcdef")[Int(generator.next(upperBound: UInt(16)))] })
}

/// The lab's apt repository: a static HTTP server on the bridge address serving the .deb cache.
struct RepositoryServer {
    let spec: LabSpec
    let shell: Shell

    var isUp: Bool { Probe.connect(spec.bridgeAddress, 80) != nil }

    static func isServerProcess(_ args: [String], address: String) -> Bool {
        args.contains("http.server") && args.contains(address)
    }

    func ensure() throws {
        if isUp { return }
        try Processes.killAndWait(Processes.matching { Self.isServerProcess($0, address: spec.bridgeAddress) })
        let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
        try startDaemon([python, "-m", "http.server", "80", "--bind", spec.bridgeAddress, "--directory", spec.debsPath],
                        log: "\(spec.logDirectory)/apt-repository.log", shell: shell, label: "apt repository HTTP server")
        try Probe.waitUntil("the apt repository on \(spec.bridgeAddress):80", seconds: 15) { isUp }
    }
}

/// A real MariaDB server in the db host's network namespace: the RDS stand-in.
struct MariaDBService {
    let spec: LabSpec
    let shell: Shell
    let log: @Sendable (String) -> Void

    var address: String { spec.address(ofHostAt: 0) }
    var isUp: Bool { Probe.connect(address, spec.mariaDBPort) != nil }

    func isServerProcess(_ args: [String]) -> Bool {
        args.contains { $0.hasSuffix("mariadbd") || $0.hasSuffix("mysqld") } && args.contains("--datadir=\(spec.mariaDBDataDirectory)")
    }

    func ensure() throws {
        let password = try ensureSecret(spec.dbPasswordFile)
        if isUp { return }
        try Processes.killAndWait(Processes.matching(isServerProcess))
        let runDir = spec.mariaDBSocket.deletingLastPathComponent
        let data = spec.mariaDBDataDirectory
        if !FileManager.default.fileExists(atPath: "\(data)/mysql") {
            log("initializing MariaDB data directory \(data)")
            try shell.run("rm", ["-rf", data])
            try shell.run("mkdir", ["-p", data])
            try shell.run("chown", ["mysql:mysql", data])
            try shell.run("mariadb-install-db", ["--no-defaults", "--user=mysql", "--datadir=\(data)",
                                                 "--auth-root-authentication-method=socket", "--skip-test-db"])
        }
        try shell.run("mkdir", ["-p", runDir])
        try shell.run("chown", ["-R", "mysql:mysql", runDir, data])
        try startDaemon(["nsenter", "--net=/run/netns/\(spec.namespace(of: spec.dbHost))", "mariadbd", "--no-defaults",
                         "--user=mysql", "--datadir=\(data)", "--socket=\(spec.mariaDBSocket)",
                         "--pid-file=\(runDir)/mariadbd.pid", "--bind-address=\(address)",
                         "--port=\(spec.mariaDBPort)", "--skip-name-resolve",
                         "--log-error=\(spec.logDirectory)/mariadb.err"],
                        log: "\(spec.logDirectory)/mariadb.log", shell: shell, label: "mariadbd")
        try Probe.waitUntil("MariaDB on \(address):\(spec.mariaDBPort)", seconds: 60) { isUp }
        // The admin user for TCP access from the lab network; the SQL (with the password) goes on stdin.
        let user = spec.mariaDBAdminUser
        let sql = """
            CREATE USER IF NOT EXISTS '\(user)'@'%' IDENTIFIED BY '\(password)';
            ALTER USER '\(user)'@'%' IDENTIFIED BY '\(password)';
            GRANT ALL PRIVILEGES ON *.* TO '\(user)'@'%' WITH GRANT OPTION;
            FLUSH PRIVILEGES;
            """
        try shell.run("mariadb", ["--no-defaults", "--socket=\(spec.mariaDBSocket)", "-u", "root"],
                      input: sql, label: "mariadb: create admin user '\(user)'@'%'")
    }
}

/// Reads a secret file, creating it (0600, random) the first time.
func ensureSecret(_ path: String, length: Int = 24) throws -> String {
    if let existing = try? String(contentsOfFile: path, encoding: .utf8) {
        let value = existing.trimmingCharacters(in: .whitespacesAndNewlines)
        if !value.isEmpty { return value }
    }
    let value = randomToken(length)
    try write(value + "\n", to: path, mode: 0o600)
    return value
}

/// The moto AWS emulator on loopback with SigV4 checking turned on (recipe: shared/design/lab.md).
struct MotoService {
    let spec: LabSpec
    let shell: Shell
    let log: @Sendable (String) -> Void

    var isUp: Bool { Probe.connect("127.0.0.1", spec.motoPort) != nil }

    func isServerProcess(_ args: [String]) -> Bool {
        args.contains { $0.contains("moto") } && args.contains("-p") && args.contains(String(spec.motoPort))
            && args.contains("127.0.0.1")
    }

    /// A python3 that can run `moto.server` and boto3: one on PATH, or a venv in the cache.
    func python() throws -> String {
        let check = "import moto.server, boto3, flask"
        for candidate in ["python3", "/usr/bin/python3", "\(spec.cacheDirectory)/moto-venv/bin/python3"] {
            if shell.succeeds(candidate, ["-c", check]) { return candidate }
        }
        let venv = "\(spec.cacheDirectory)/moto-venv"
        log("installing moto[server] into \(venv) (pip)")
        try shell.run("/usr/bin/python3", ["-m", "venv", venv])
        try shell.run("\(venv)/bin/pip", ["install", "--quiet", "moto[server]>=5.0", "boto3"])
        return "\(venv)/bin/python3"
    }

    /// Identity (pid + start time) of the moto process the credentials were created on: moto keeps
    /// its users in memory, so the credentials are valid exactly while that process lives.
    var identityPath: String { "\(spec.runDirectory)/moto.identity" }

    func runningIdentity() -> String? {
        guard let pid = Processes.matching(isServerProcess).first,
              let stat = ProcFile.text("/proc/\(pid)/stat"),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? "\(pid) \(fields[19])" : nil
    }

    func ensure() throws {
        if isUp, FileManager.default.fileExists(atPath: spec.awsCredentialsFile),
           let running = runningIdentity(),
           (try? String(contentsOfFile: identityPath, encoding: .utf8)) == running { return }
        let python = try python()
        try Processes.killAndWait(Processes.matching(isServerProcess))
        try startDaemon([python, "-m", "moto.server", "-H", "127.0.0.1", "-p", String(spec.motoPort)],
                        log: "\(spec.logDirectory)/moto.log", shell: shell, label: "moto_server")
        try Probe.waitUntil("moto on 127.0.0.1:\(spec.motoPort)", seconds: 60) { isUp }
        try shell.run(python, ["-", spec.motoEndpoint, spec.awsCredentialsFile, spec.region],
                      input: Self.setupScript, label: "moto: create IAM user and turn on signature checks")
        guard credentialsAccepted(python) else {
            throw ShellError(command: "moto: verify the lab credentials", status: 1,
                             stderr: "the access key just created was not accepted")
        }
        if let running = runningIdentity() { try write(running, to: identityPath, mode: 0o644) }
    }

    func credentialsAccepted(_ python: String) -> Bool {
        (try? shell.run(python, ["-", spec.motoEndpoint, spec.awsCredentialsFile, spec.region],
                        input: Self.verifyScript, check: false).status) == 0
    }

    /// Creates an IAM user with an allow-all policy and an access key, writes the key as an AWS
    /// shared credentials file (0600), then turns on authentication (`reset-auth` with 0 free calls).
    static let setupScript = #"""
    import sys, os, json, urllib.request, boto3
    endpoint, path, region = sys.argv[1], sys.argv[2], sys.argv[3]
    iam = boto3.client("iam", endpoint_url=endpoint, region_name=region,
                       aws_access_key_id="AKIDLABBOOTSTRAP0000", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="ccrun-lab")
    iam.put_user_policy(UserName="ccrun-lab", PolicyName="allow-all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="ccrun-lab")["AccessKey"]
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\nregion = %s\n"
                % (key["AccessKeyId"], key["SecretAccessKey"], region))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    req = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0",
                                 headers={"Content-Type": "text/plain"}, method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    """#

    static let verifyScript = #"""
    import sys, configparser, boto3
    endpoint, path, region = sys.argv[1], sys.argv[2], sys.argv[3]
    c = configparser.ConfigParser(); c.read(path); d = c["default"]
    sts = boto3.client("sts", endpoint_url=endpoint, region_name=region,
                       aws_access_key_id=d["aws_access_key_id"], aws_secret_access_key=d["aws_secret_access_key"])
    sts.get_caller_identity()
    """#
}
