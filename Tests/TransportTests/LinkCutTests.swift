import Foundation
import Testing
@testable import Transport

/// A private network namespace holding an sshd, joined to this machine by a veth pair with /32
/// routes (198.51.100.170 here, .171 there: clear of the lab hosts (.11 and up, one per host)
/// and of a fan-out lab in .192/26; /32 routes are more specific than the lab bridge's /24). Setting the far end down cuts the link silently: no FIN, no RST.
private struct CutLink {
    let namespace = "ccrt-\(UInt32.random(in: 0..<UInt32.max))"
    let hostSide: String
    let nsSide = "ccrt-ns0"
    static let hostAddress = "198.51.100.170"
    static let nsAddress = "198.51.100.171"
    /// Routed into the namespace, which owns no such address and does not forward: SYNs vanish.
    static let blackHole = "198.51.100.172"

    init() throws {
        hostSide = "ccrt\(UInt16.random(in: 0..<UInt16.max))"
        try ip("netns", "add", namespace)
        do {
            try ip("link", "add", hostSide, "type", "veth", "peer", "name", nsSide, "netns", namespace)
            try ip("addr", "add", Self.hostAddress + "/32", "peer", Self.nsAddress + "/32", "dev", hostSide)
            try ip("link", "set", hostSide, "up")
            try ip("-n", namespace, "addr", "add", Self.nsAddress + "/32", "peer", Self.hostAddress + "/32", "dev", nsSide)
            try ip("-n", namespace, "link", "set", nsSide, "up")
            try ip("-n", namespace, "link", "set", "lo", "up")
            try ip("route", "add", Self.blackHole + "/32", "via", Self.nsAddress, "dev", hostSide)
        } catch {
            remove()
            throw error
        }
    }

    func cut() throws { try ip("-n", namespace, "link", "set", nsSide, "down") }

    func remove() {
        _ = try? ip("link", "del", hostSide)
        _ = try? ip("netns", "del", namespace)
    }

    @discardableResult
    private func ip(_ arguments: String...) throws -> String { try Shell.run("/usr/sbin/ip", arguments) }

    static var possible: Bool { getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") }
}

/// Serialized: both tests use the same fixed addresses.
@Suite("A link cut in the middle of a command", .serialized)
struct LinkCutTests {
    @Test(.enabled(if: CutLink.possible, "needs root and iproute2 to build a network namespace"))
    func silentHostEndsAtTheConnectTimeout() async throws {
        let link = try CutLink()
        defer { link.remove() }
        let target = SSHTarget(host: CutLink.blackHole, port: 22, knownHostsPath: FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(UUID().uuidString)/known_hosts").path,
                               connectTimeout: .milliseconds(1500))
        let started = ContinuousClock.now
        let error = await #expect(throws: TransportError.self) { try await SSHConnection.connect(target) }
        let elapsed = ContinuousClock.now - started
        print("connect to a silent host: \(String(describing: error)) after \(elapsed)")
        #expect(error == .connectTimeout(host: CutLink.blackHole, port: 22, stage: "TCP connect",
                                         after: .milliseconds(1500)))
        #expect(elapsed >= .milliseconds(1400) && elapsed < .seconds(6))
    }

    @Test(.enabled(if: CutLink.possible, "needs root and iproute2 to build a network namespace"))
    func silentLinkCutEndsWithLinkLostWithinTheLinkTimeout() async throws {
        let link = try CutLink()
        defer { link.remove() }
        let server = try TestSSHServer(listenAddress: CutLink.nsAddress, namespace: link.namespace)
        defer { server.stop() }
        var target = server.target()
        target.linkTimeout = .seconds(3)
        let connection = try await SSHConnection.connect(target)
        defer { Task { await connection.close() } }
        #expect(try await connection.run("echo up").stdoutText == "up\n")

        let cutter = Task {
            try await Task.sleep(for: .milliseconds(500))
            try link.cut()
        }
        let started = ContinuousClock.now
        // The command would run 60 s and its timeout is longer still: only link loss detection
        // (keepalives + TCP_USER_TIMEOUT) can end this call early.
        let error = await #expect(throws: TransportError.self) {
            try await connection.run("sleep 60", timeout: .seconds(120))
        }
        let elapsed = ContinuousClock.now - started
        try await cutter.value
        print("link cut: \(String(describing: error)) after \(elapsed) (link timeout 3 s)")
        guard case .linkLost = error else {
            Issue.record("expected a lost link, got \(String(describing: error))")
            return
        }
        #expect(elapsed < .seconds(15))

        // A new connection to the silent host ends at the connect timeout, not later.
        target.connectTimeout = .seconds(1)
        let reconnectStart = ContinuousClock.now
        let reconnectError = await #expect(throws: TransportError.self) { try await SSHConnection.connect(target) }
        let reconnectElapsed = ContinuousClock.now - reconnectStart
        print("connect to cut host: \(String(describing: reconnectError)) after \(reconnectElapsed)")
        switch reconnectError {
        case .connectTimeout?, .unreachable?: break
        default: Issue.record("expected a connect timeout or unreachable host, got \(String(describing: reconnectError))")
        }
        #expect(reconnectElapsed < .seconds(5))
    }
}
