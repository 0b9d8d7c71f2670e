import Foundation
import Runbooks
import StepKit
import SupportKit
import Testing

/// The one inventory type (issue #20, point 3): StepKit's hosts and sudo user with the CC
/// deployment's keys beside them in the same JSON object, the file format unchanged.
@Suite struct DeploymentInventoryTests {
    static let labFixture = Fixtures.projectDirectory.appendingPathComponent("inventories/lab.json").path

    @Test func decodesTheSharedInventoryFormat() throws {
        let inv = try DeploymentInventory.load(Self.labFixture)
        #expect(inv.hosts.count == 4 && inv.hosts(withRole: "web-node") == ["web-node"])
        #expect(inv.base == (try Inventory.load(Self.labFixture)), "the engine reads the same hosts from the same file")
        #expect(inv.database?.port == 3306 && inv.nfsServer == "nfs-master")
        #expect(inv.aws?.region == "us-east-1" && inv.aptRepository == "http://198.51.100.1/")
        #expect(inv.tunerPassword == nil)
    }

    /// Every key of the fixture is read and written back: decoding then encoding gives the same
    /// JSON object (nothing dropped, nothing added).
    @Test func theFixtureRoundTripsKeyForKey() throws {
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.labFixture))) as! NSDictionary
        let written = try JSONSerialization.jsonObject(with: Data(try DeploymentInventory.load(Self.labFixture).encoded().utf8)) as! NSDictionary
        #expect(written == original)
    }

    @Test func databasePasswordComesFromItsFileAndStaysMasked() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pw-\(UUID().uuidString)")
        try "PLANTED-pw\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let db = DeploymentInventory.Database(host: "198.51.100.10", port: 3306, adminUser: "root", adminPasswordFile: file.path)
        let ep = try db.adminEndpoint()
        #expect(ep.password.reveal() == "PLANTED-pw")
        #expect(!"\(ep) \(ep.password)".contains("PLANTED"))
    }

    /// The family, not the one fixture: random inventories (any subset of the optional keys,
    /// odd names and values) survive encode and decode, and the engine's type reads their hosts.
    @Test func randomInventoriesRoundTrip() throws {
        var rng = SplitMix64(state: 0x1A7E_2026)
        func maybe<T>(_ value: @autoclosure () -> T) -> T? { Bool.random(using: &rng) ? value() : nil }
        func word() -> String {
            let alphabet = Array("abcXYZ019-_./ :\"\\é")
            return String((0..<Int.random(in: 1...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
        }
        for _ in 0..<200 {
            var hosts: [String: Inventory.Host] = [:]
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                hosts[word()] = Inventory.Host(address: word(), port: maybe(Int.random(in: 1...65535, using: &rng)), user: maybe(word()),
                                               identityFile: maybe(word()), knownHosts: maybe(word()),
                                               roles: maybe((0..<Int.random(in: 0...3, using: &rng)).map { _ in word() }),
                                               vars: maybe(Dictionary((0..<Int.random(in: 0...3, using: &rng)).map { _ in (word(), word()) }, uniquingKeysWith: { a, _ in a })))
            }
            let inv = DeploymentInventory(
                hosts: hosts, sudoUser: maybe(Inventory.SudoUser(user: word(), identityFile: maybe(word()))),
                database: maybe(DeploymentInventory.Database(host: word(), port: maybe(Int.random(in: 1...65535, using: &rng)), adminUser: word(),
                                                             adminPasswordFile: maybe(word()), name: maybe(word()),
                                                             readOnlyUser: maybe(word()), readWriteUser: maybe(word()))),
                nfsServer: maybe(word()), aws: maybe(DeploymentInventory.AWS(endpoint: maybe(word()), region: maybe(word()), credentialsFile: maybe(word()))),
                tunerPassword: maybe(Bool.random(using: &rng)), aptRepository: maybe(word()))
            let text = try inv.encoded()
            let decoded = try JSONDecoder().decode(DeploymentInventory.self, from: Data(text.utf8))
            #expect(decoded == inv, "\(text)")
            #expect(try JSONDecoder().decode(Inventory.self, from: Data(text.utf8)) == inv.base)
            #expect(try decoded.encoded() == text)
        }
    }

    @Test func aFileThatIsNotAnInventoryIsNamedInTheError() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("inv-\(UUID().uuidString).json")
        try #"{"hosts": {}, "database": {"host": 3}}"#.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect { try DeploymentInventory.load(file.path) } throws: { "\($0)".contains(file.path) && "\($0)".contains("not valid") }
    }
}
