import Foundation
import SupportKit
import Testing

/// Issue #20, point 4: `ccr web` reads what `ccr serve` writes (the config file, the archive)
/// through ServerFiles and never links the tuner server or its load generator. Checked on the
/// package graph SwiftPM itself evaluates (`swift package dump-package`), so that a dependency
/// added back in Package.swift, directly or through another target, fails here.
@Suite("Module layering")
struct LayeringTests {
    /// Target name -> the targets it names as dependencies (products of other packages left out).
    static func targetGraph() throws -> [String: [String]] {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ccrun-layering-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        // A scratch path of its own: `swift test` holds the lock on .build while this runs.
        process.arguments = ["swift", "package", "--scratch-path", scratch.path, "dump-package"]
        process.currentDirectoryURL = Fixtures.packageRoot
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "swift package dump-package failed (is swift on PATH?)")
        let manifest = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let targets = try #require(manifest["targets"] as? [[String: Any]])
        var graph: [String: [String]] = [:]
        for target in targets {
            let name = try #require(target["name"] as? String)
            let dependencies = target["dependencies"] as? [[String: Any]] ?? []
            graph[name] = dependencies.compactMap { dependency in
                ((dependency["byName"] ?? dependency["target"]) as? [Any])?.first as? String
            }
        }
        return graph
    }

    /// Every target `name` depends on, directly or not.
    static func closure(of name: String, in graph: [String: [String]]) -> Set<String> {
        var seen: Set<String> = [], pending = graph[name] ?? []
        while let next = pending.popLast() {
            if seen.insert(next).inserted { pending += graph[next] ?? [] }
        }
        return seen
    }

    @Test("Web depends on Store, Captions and ServerFiles, never on the tuner server")
    func webLinksNoTunerServer() throws {
        let graph = try Self.targetGraph()
        let web = Self.closure(of: "Web", in: graph)
        #expect(web.contains("Store") && web.contains("Captions") && web.contains("ServerFiles"))
        #expect(!web.contains("TunerServer"), "Web reaches TunerServer: \(web.sorted())")
        #expect(!web.contains("TunerBench"), "Web reaches TunerBench: \(web.sorted())")
        // The shared module stays a leaf: it must not bring the server back in by the back door.
        #expect(Self.closure(of: "ServerFiles", in: graph).isEmpty)
        // And the tuner server takes its names from the same place `ccr web` does.
        #expect(Self.closure(of: "TunerServer", in: graph).contains("ServerFiles"))
    }

    /// Issue #20, point 3: the engine is generic. It links no database client (the SQL executor
    /// is injected: ccrun gives it MariaDBClient's), no transport and no runbook.
    @Test("StepKit links no database client, transport or runbook")
    func engineIsGeneric() throws {
        let graph = try Self.targetGraph()
        let engine = Self.closure(of: "StepKit", in: graph)
        for forbidden in ["CMariaDB", "MariaDBClient", "Transport", "CLibSSH2", "Runbooks", "CloudAPI", "Lab"] {
            #expect(!engine.contains(forbidden), "StepKit reaches \(forbidden): \(engine.sorted())")
        }
        #expect(Self.closure(of: "ccrun", in: graph).contains("MariaDBClient"), "ccrun gives the engine its SQL client")
        #expect(!Self.closure(of: "Runbooks", in: graph).contains("CMariaDB"))
    }

    /// Issue #20, point 3: the CC deployment's inventory schema lives in Runbooks
    /// (`DeploymentInventory`), so the engine's sources never name its keys: a CC field added back
    /// to StepKit's `Inventory` (or read by the engine some other way) fails here.
    @Test("StepKit's sources name none of the CC inventory's keys")
    func engineInventoryHasNoCCFields() throws {
        let directory = Fixtures.packageRoot.appendingPathComponent("Sources/StepKit")
        let files = try #require(FileManager.default.enumerator(atPath: directory.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        #expect(files.contains("Inventory.swift"))
        for file in files {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            for key in ["nfsServer", "tunerPassword", "aptRepository", "adminPasswordFile", "adminEndpoint", "DeploymentInventory", "credentialsFile"] {
                #expect(!text.contains(key), "Sources/StepKit/\(file) names the CC inventory's \(key)")
            }
        }
        // The lab writes the one inventory type ccrun reads: it reaches Runbooks, which owns it.
        let graph = try Self.targetGraph()
        #expect(Self.closure(of: "Lab", in: graph).contains("Runbooks"))
    }
}
