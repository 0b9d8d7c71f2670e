// Rolling upgrades behind the lb: HAProxy's runtime API drains a server before its host is
// upgraded and puts it back after (the guide's ELBs do the same with deregistration).
import LeanFoundation
import StepKit

/// Commands to HAProxy's runtime API, run on the load balancer host.
///
/// WHY a unix socket and python3: the API stays where `ccrun lb` puts it, the admin socket
/// `/run/haproxy/admin.sock` with mode 600, so only root on the lb host can drain servers. The
/// other dependency-free way, a `stats socket ipv4@127.0.0.1:PORT level admin` reached with bash's
/// /dev/tcp, would let every local user and every process of the host (HAProxy's own user
/// included) take servers out of rotation. The lb host has no socat; `ccrun lb` installs python3
/// beside HAProxy. On an lb host set up otherwise and without python3, the error says so before
/// anything is drained.
public enum HAProxyRuntime {
    /// A script sending one command to the admin socket and printing HAProxy's answer.
    public static func script(_ command: String, socket: String = LoadBalancerRunbook.adminSocket) -> String {
        let python = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(sys.argv[1])
            except OSError as e:
                sys.exit("HAProxy's runtime API at %s: %s (is HAProxy running? `ccrun lb` configures it)" % (sys.argv[1], e.strerror))
            s.sendall(sys.argv[2].encode() + b"\\n")
            out = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
            sys.stdout.write(out.decode("utf-8", "replace"))
            """
        return "command -v python3 >/dev/null 2>&1 || { echo 'python3 is not installed on this host: ccrun reaches HAProxy'\"'\"'s runtime API through it (install python3 there)' >&2; exit 127; }; "
            + "python3 -c \(Shell.quote(python)) \(Shell.quote(socket)) \(Shell.quote(command))"
    }

    /// One server's line of `show stat`.
    public struct ServerStat: Sendable, Equatable {
        public var backend: String
        public var server: String
        /// Sessions open now (`scur`).
        public var sessions: Int
        /// `status`: UP, DOWN, DRAIN, MAINT, and while checks change it "UP 1/2", "DOWN 1/2".
        public var status: String
    }

    /// The servers of `show stat`'s CSV (the columns found by the header's names, not positions).
    public static func servers(fromStat csv: String) throws -> [ServerStat] {
        let lines = csv.split(separator: "\n", omittingEmptySubsequences: true)
        guard let header = lines.first, header.hasPrefix("# ") else {
            throw HAProxyRuntimeError.unexpectedAnswer(command: "show stat", answer: String(csv.prefix(300)))
        }
        let names = header.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let px = names.firstIndex(of: "pxname"), let sv = names.firstIndex(of: "svname"),
              let scur = names.firstIndex(of: "scur"), let status = names.firstIndex(of: "status") else {
            throw HAProxyRuntimeError.unexpectedAnswer(command: "show stat", answer: String(header))
        }
        return lines.dropFirst().compactMap { line in
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count > max(px, sv, scur, status), f[sv] != "FRONTEND", f[sv] != "BACKEND" else { return nil }
            return ServerStat(backend: f[px], server: f[sv], sessions: Int(f[scur]) ?? 0, status: f[status])
        }
    }
}

public enum HAProxyRuntimeError: Error, CustomStringConvertible, Sendable {
    case unexpectedAnswer(command: String, answer: String)
    case commandFailed(host: String, command: String, status: Int32, stderr: String)
    case noSuchServer(host: String, backend: String, server: String, known: [String])
    case refused(host: String, command: String, answer: String)
    case notUp(host: String, backend: String, server: String, status: String, seconds: Int)

    public var description: String {
        switch self {
        case let .unexpectedAnswer(command, answer): "HAProxy answered `\(command)` with something else than expected: \(answer)"
        case let .commandFailed(host, command, status, stderr):
            "\(host): HAProxy's runtime API (`\(command)`) failed with exit status \(status): \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
        case let .noSuchServer(host, backend, server, known):
            "HAProxy on \(host) has no server \(backend)/\(server) (it has: \(known.isEmpty ? "none" : known.joined(separator: ", "))): `ccrun lb \(host)` writes one for every host of the inventory's role"
        case let .refused(host, command, answer): "HAProxy on \(host) refused `\(command)`: \(answer.trimmingCharacters(in: .whitespacesAndNewlines))"
        case let .notUp(host, backend, server, status, seconds):
            "HAProxy on \(host) still reports \(backend)/\(server) as \(status) \(seconds) s after it was put back (its health check fails: see the host's service)"
        }
    }
}

/// The rollout's balancer on HAProxy: one backend (repo-nodes or web-nodes) on the lb host.
///
/// Tuners (TCP) are drained only: `state drain` sends no new connection to the server, and its
/// tuners move when the upgrade restarts its ccr (they reconnect through the lb to another node).
/// Visitors (HTTP) are drained and then waited for: the apply starts once the server's open
/// sessions reach 0, or after `idleTimeout` (as an ELB's deregistration delay ends).
public struct HAProxyBalancer: RolloutBalancer {
    public let lbName: String
    public let backend: String
    /// For HTTP: how long to wait for open sessions to end after the drain; nil for tuners.
    public let idleTimeout: Duration?
    /// How long HAProxy may take to report a server UP after it is put back (its checks: every
    /// 2 s, up after 2 successes, so about 4 s when the service is healthy).
    public let upTimeout: Duration
    let connect: @Sendable () async throws -> any RemoteHost

    public init(lbName: String, backend: String, idleTimeout: Duration?, upTimeout: Duration = .seconds(60),
                connect: @escaping @Sendable () async throws -> any RemoteHost) {
        self.lbName = lbName; self.backend = backend; self.idleTimeout = idleTimeout; self.upTimeout = upTimeout; self.connect = connect
    }

    public var summary: String { "\(lbName) (HAProxy backend \(backend))" }

    public func drain(_ server: String, dryRun: Bool) async throws -> String {
        try await withLB { lb in
            let now = try await stat(lb, server)
            let wait = idleTimeout.map { " and wait up to \(Int($0.components.seconds)) s for its sessions to end" } ?? ""
            if dryRun { return "would drain \(backend)/\(server) at \(lbName)\(wait) (now \(now.status), \(now.sessions) session(s))" }
            try await set(lb, server, "drain")
            guard let idleTimeout else { return "drained \(backend)/\(server) at \(lbName) (\(now.sessions) tuner(s) move when its ccr restarts)" }
            let clock = ContinuousClock(), deadline = clock.now + idleTimeout
            var sessions = now.sessions
            while true {
                sessions = try await stat(lb, server).sessions
                if sessions == 0 { return "drained \(backend)/\(server) at \(lbName), its sessions ended" }
                if clock.now >= deadline { return "drained \(backend)/\(server) at \(lbName); \(sessions) session(s) still open after \(Int(idleTimeout.components.seconds)) s: applying anyway" }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    public func undrain(_ server: String, dryRun: Bool) async throws -> String {
        try await withLB { lb in
            if dryRun { return "would put \(backend)/\(server) back at \(lbName) and wait until HAProxy reports it UP" }
            try await set(lb, server, "ready")
            let clock = ContinuousClock(), start = clock.now
            var status = ""
            while clock.now < start + upTimeout {
                status = try await stat(lb, server).status
                // Exactly UP: "UP 1/2" is a server whose checks are failing (going down).
                if status == "UP" || status == "no check" {
                    return "back in \(backend) at \(lbName), HAProxy reports it UP"
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            throw HAProxyRuntimeError.notUp(host: lbName, backend: backend, server: server, status: status, seconds: Int(upTimeout.components.seconds))
        }
    }

    func withLB<T: Sendable>(_ body: (any RemoteHost) async throws -> T) async throws -> T {
        let lb = try await connect()
        do {
            let r = try await body(lb)
            await lb.disconnect()
            return r
        } catch {
            await lb.disconnect()
            throw error
        }
    }

    func run(_ lb: any RemoteHost, _ command: String) async throws -> String {
        let r = try await lb.run(HAProxyRuntime.script(command), stdin: nil, timeout: .seconds(30))
        guard r.exitStatus == 0 else { throw HAProxyRuntimeError.commandFailed(host: lbName, command: command, status: r.exitStatus, stderr: r.stderrText) }
        return r.stdoutText
    }

    func stat(_ lb: any RemoteHost, _ server: String) async throws -> HAProxyRuntime.ServerStat {
        let all = try HAProxyRuntime.servers(fromStat: try await run(lb, "show stat"))
        guard let s = all.first(where: { $0.backend == backend && $0.server == server }) else {
            throw HAProxyRuntimeError.noSuchServer(host: lbName, backend: backend, server: server, known: all.filter { $0.backend == backend }.map(\.server))
        }
        return s
    }

    func set(_ lb: any RemoteHost, _ server: String, _ state: String) async throws {
        let command = "set server \(backend)/\(server) state \(state)"
        let answer = try await run(lb, command)
        // The runtime API answers nothing (an empty line) when it did it, a reason when not.
        guard answer.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw HAProxyRuntimeError.refused(host: lbName, command: command, answer: answer)
        }
    }
}
