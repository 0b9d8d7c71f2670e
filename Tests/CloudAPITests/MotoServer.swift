import Foundation
import SupportKit

/// A private moto server on a free loopback port with SigV4 checking turned on
/// (recipe: shared/design/lab.md): an IAM user with an allow-all policy and an access key is
/// created, then `reset-auth 0` makes moto reject every other key or secret.
final class MotoServer: @unchecked Sendable {
    // @unchecked: `process` is set once in init and only read after; no concurrent mutation.
    let port: Int
    let process: Process
    let directory: URL
    /// A network namespace with only loopback, when the test isolates ccrun and moto in one.
    let namespace: String?
    /// argv prefix entering the namespace (empty without one).
    var prefix: [String] { namespace.map { ["/usr/bin/env", "ip", "netns", "exec", $0] } ?? [] }
    var endpoint: String { "http://127.0.0.1:\(port)" }
    var credentialsFile: String { directory.appendingPathComponent("aws-credentials").path }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
        }
        guard ok else { throw TestFailure("cannot bind a loopback port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    init(directory: URL, namespace: String? = nil) throws {
        self.directory = directory
        self.namespace = namespace
        // A fresh namespace has every port free.
        port = namespace == nil ? try Self.freePort() : 5000
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let argv = ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)]
        process.arguments = namespace.map { ["ip", "netns", "exec", $0] + argv } ?? argv
        let log = directory.appendingPathComponent("moto.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let h = try FileHandle(forWritingTo: log)
        process.standardOutput = h
        process.standardError = h
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while !answers() {
            guard Date() < deadline, process.isRunning else { stop(); throw TestFailure("moto_server did not start (see \(log.path))") }
            Thread.sleep(forTimeInterval: 0.1)
        }
        let setup = try Python.run(Self.setupScript, [endpoint, credentialsFile], prefix: prefix)
        guard setup.status == 0 else { stop(); throw TestFailure("moto auth setup failed: \(setup.stderr)") }
    }

    func answers() -> Bool {
        guard namespace != nil else { return Self.answers(port) }
        let probe = "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)"
        return (try? Python.run(probe, [String(port)], prefix: prefix).status) == 0
    }

    static func answers(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    func stop() {
        // SIGKILL, not terminate(): a child spawned from a dispatch thread inherits that
        // thread's blocked SIGTERM, and waitUntilExit() would then wait forever.
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
    }

    /// The secret access key moto issued (to check it never appears in any output).
    func secretKey() throws -> String {
        let text = try String(contentsOfFile: credentialsFile, encoding: .utf8)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("aws_secret_access_key") }),
              let v = line.split(separator: "=").last else { throw TestFailure("no secret in credentials file") }
        return v.trimmingCharacters(in: .whitespaces)
    }

    static let setupScript = #"""
    import sys, os, json, urllib.request, boto3
    endpoint, path = sys.argv[1], sys.argv[2]
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="AKIDBOOTSTRAP000000", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="ccrun-test")
    iam.put_user_policy(UserName="ccrun-test", PolicyName="allow-all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    k = iam.create_access_key(UserName="ccrun-test")["AccessKey"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n" % (k["AccessKeyId"], k["SecretAccessKey"]))
    req = urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}, method="POST")
    urllib.request.urlopen(req, timeout=10).read()
    """#
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Runs python3 scripts (the independent boto3 client) with output captured in files.
enum Python {
    typealias Result = Exec.Result
    static func run(_ script: String, _ args: [String], environment: [String: String]? = nil, prefix: [String] = []) throws -> Result {
        try Exec.run((prefix.isEmpty ? ["/usr/bin/env"] : prefix) + ["python3", "-c", script] + args, environment: environment)
    }
}
