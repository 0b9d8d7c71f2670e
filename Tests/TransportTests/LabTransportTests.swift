import Foundation
import SupportKit
import Testing
@testable import Transport

/// The part of the lab inventory these tests read (the full format is in the Lab module).
private struct LabInventory: Decodable {
    struct Host: Decodable {
        var address: String
        var port: Int
        var user: String
        var identityFile: String
        var knownHosts: String
    }
    struct SudoUser: Decodable {
        var user: String
        var identityFile: String
    }
    var hosts: [String: Host]
    var sudoUser: SudoUser?

    static func load() throws -> LabInventory {
        try JSONDecoder().decode(LabInventory.self,
                                 from: Data(contentsOf: URL(fileURLWithPath: LabEnvironment.inventoryPath)))
    }

    func target(_ name: String) throws -> SSHTarget {
        let host = try #require(hosts[name], "lab host \(name) missing from the inventory")
        return SSHTarget(name: name, host: host.address, port: host.port, user: host.user,
                         identityFiles: [host.identityFile], knownHostsPath: host.knownHosts,
                         connectTimeout: .seconds(5), commandTimeout: .seconds(30))
    }
}

@Suite("Transport against lab hosts")
struct LabTransportTests {
    @Test(.enabled(if: LabEnvironment.shouldRun, "\(LabEnvironment.skipReason)"))
    func twoLabHostsAnswerWithTheirOwnHostnameAndMarker() async throws {
        let inventory = try LabInventory.load()
        let names = Array(inventory.hosts.keys.sorted().prefix(2))
        try #require(names.count == 2)
        var answers: [String: (hostname: String, marker: String)] = [:]
        for name in names {
            let connection = try await SSHConnection.connect(try inventory.target(name))
            defer { Task { await connection.close() } }
            let hostname = try await connection.run("hostname").stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            let marker = try #require(try await connection.readFile("/etc/ccrun-lab-marker"))
            answers[name] = (hostname, String(decoding: marker, as: UTF8.self))
            print("lab \(name): connect \(connection.connectDuration) + auth \(connection.authDuration), "
                + "kex \(connection.keyExchangeMethod)")
        }
        let first = try #require(answers[names[0]]), second = try #require(answers[names[1]])
        #expect(first.hostname == names[0])
        #expect(second.hostname == names[1])
        #expect(!first.marker.isEmpty && !second.marker.isEmpty)
        #expect(first.marker != second.marker)
        #expect(first.marker.hasPrefix(names[0]))
    }

    @Test(.enabled(if: LabEnvironment.shouldRun, "\(LabEnvironment.skipReason)"))
    func labSudoUserRunsAsRoot() async throws {
        let inventory = try LabInventory.load()
        let sudoUser = try #require(inventory.sudoUser, "inventory has no sudoUser")
        let name = try #require(inventory.hosts.keys.sorted().first)
        var target = try inventory.target(name)
        target.user = sudoUser.user
        target.identityFiles = [sudoUser.identityFile]
        target.sudo = true
        let connection = try await SSHConnection.connect(target)
        defer { Task { await connection.close() } }
        #expect(try await connection.run("id -u").stdoutText == "0\n")
        #expect(try await connection.run("id -un", timeout: .seconds(5)).exitStatus == 0)
    }

    /// Not a timed assertion: round trips over the lab bridge, for the report.
    @Test(.enabled(if: LabEnvironment.shouldRun, "\(LabEnvironment.skipReason)"))
    func measureLabRoundTrips() async throws {
        let inventory = try LabInventory.load()
        let name = try #require(inventory.hosts.keys.sorted().first)
        var connects: [Duration] = []
        for _ in 0..<5 {
            let started = ContinuousClock.now
            let connection = try await SSHConnection.connect(try inventory.target(name))
            connects.append(ContinuousClock.now - started)
            await connection.close()
        }
        let connection = try await SSHConnection.connect(try inventory.target(name))
        defer { Task { await connection.close() } }
        let started = ContinuousClock.now
        for _ in 0..<30 { _ = try await connection.run("true") }
        print("MEASURE lab \(name): connect+auth median \(connects.sorted()[2]), min \(connects.min()!); "
            + "per command \((ContinuousClock.now - started) / 30)")
        #expect(connects.count == 5)
    }
}
