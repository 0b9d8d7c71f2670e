import Foundation
import Store
import Testing
@testable import TunerServer
import ServerFiles

@Suite struct ConfigurationTests {
    private func write(_ text: String, mode: Int = 0o600) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("ccr.conf").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    @Test func productionFileIsRead() throws {
        let path = try write("""
        # repository node
        [server]
        listen = 198.51.100.5
        port = 4040
        password = "tuner secret"
        max_tuners = 500

        [archive]
        dir = /srv/archive
        [metrics]
        port = off
        [database]
        driver = mariadb
        host = 198.51.100.9
        user = cc_rw
        password = dbsecret
        name = ccrepo

        [web]
        listen = 0.0.0.0:8080
        """)
        let c = try ServerConfiguration.load(path: path, environment: [:])
        #expect(c.host == "198.51.100.5")
        #expect(c.port == 4040)
        #expect(c.password == "tuner secret")
        #expect(c.maxTuners == 500)
        #expect(c.archiveDirectory == "/srv/archive")
        #expect(c.metricsPort == nil)
        guard case .mysql(let host, let port, let user, let password, let name)? = c.store else {
            Issue.record("expected mysql, got \(String(describing: c.store))"); return
        }
        #expect((host, port, user, name) == ("198.51.100.9", 3306, "cc_rw", "ccrepo"))
        #expect(password.revealed == "dbsecret")
        #expect(!"\(c.store!)".contains("dbsecret"))
    }

    @Test func environmentPasswordsWin() throws {
        let path = try write("[database]\ndriver = mysql\nhost = h\nuser = u\n", mode: 0o644)
        let c = try ServerConfiguration.load(path: path, environment: ["CCR_DB_PASSWORD": "fromenv", "CCR_TUNER_PASSWORD": "tp"])
        guard case .mysql(_, _, _, let password, _)? = c.store else { Issue.record("expected mysql"); return }
        #expect(password.revealed == "fromenv")
        #expect(c.password == "tp")
    }

    @Test func errorsNameFileAndLine() throws {
        let path = try write("[server]\nport = 70000\n")
        #expect { try ServerConfiguration.load(path: path, environment: [:]) } throws: { "\($0)".hasPrefix("\(path):2: server.port") }
        let typo = try write("[server]\n\nprot = 1\n")
        #expect { try ServerConfiguration.load(path: typo, environment: [:]) } throws: { "\($0)" == "\(typo):3: unknown setting [server] prot (a typo?)" }
        let syntax = try write("[server\n")
        #expect { try ServerConfiguration.load(path: syntax, environment: [:]) } throws: { "\($0)".hasPrefix("\(syntax):1:") }
        let noEquals = try write("[server]\nport 3030\n")
        #expect { try ServerConfiguration.load(path: noEquals, environment: [:]) } throws: { "\($0)" == "\(noEquals):2: expected `key = value`" }
    }

    @Test func passwordInWorldReadableFileIsRefusedWithoutShowingIt() throws {
        let path = try write("[server]\npassword = hunter2\n", mode: 0o644)
        #expect { try ServerConfiguration.load(path: path, environment: [:]) } throws: { error in
            let text = "\(error)"
            return text.contains("chmod 600") && text.contains(":2:") && !text.contains("hunter2")
        }
    }

    @Test func noConfigurationMeansLocalDefaults() {
        let c = ServerConfiguration()
        #expect(c.port == 3030)
        #expect(c.archiveDirectory == "archive")
        #expect(c.store == .sqlite(path: "ccr.sqlite"))
        #expect(c.password == nil)
    }
}

@Suite struct ProgramTrackerTests {
    @Test func firstNameNamesTheCurrentProgramAndChangesSplit() {
        var t = ProgramTracker()
        #expect(t.observe(programName: "  ") == .unchanged)
        #expect(t.observe(programName: "Tudors, The: Episode 208") == .nameCurrent("Tudors, The: Episode 208"))
        #expect(t.observe(programName: "Tudors, The: Episode 208 ") == .unchanged)
        #expect(t.observe(programName: "Steve Harvey") == .startNew("Steve Harvey"))
        #expect(t.currentName == "Steve Harvey")
    }

    @Test func slugsAreFileNameSafe() {
        #expect(programSlug("Tudors, The: Episode 208") == "tudors-the-episode-208")
        #expect(programSlug("../../etc/passwd") == "etc-passwd")
        #expect(programSlug(nil) == "unnamed")
        #expect(programSlug("???") == "unnamed")
    }

    @Test func constantTimeComparison() {
        #expect(constantTimeEqual(Array("s3cret".utf8), Array("s3cret".utf8)))
        #expect(!constantTimeEqual(Array("s3cret".utf8), Array("s3cres".utf8)))
        #expect(!constantTimeEqual(Array("s3cret".utf8), Array("s3cret!".utf8)))
        #expect(!constantTimeEqual([], Array(repeating: 0, count: 256)))
        #expect(constantTimeEqual([], []))
    }
}
