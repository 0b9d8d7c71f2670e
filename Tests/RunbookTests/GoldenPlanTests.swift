import Foundation
import Runbooks
import StepKit
import SupportKit
import Testing

/// Issue #20, point 8: golden plans as data. `Fixtures/plans/<runbook>/<case>.json` holds the
/// probe answers of a host (in) and the plan ccrun makes from them (out: each step's state,
/// commands, diff, undo), for every guide runbook on a bare Debian host, the same host
/// configured (the plan is empty: Terraform's rule), drifted, and a bare RPM host with systemd
/// (Amazon Linux 2023). A regression net for plans, without the lab.
///
/// A plan that differs fails with a unified diff of the golden file. When the change is meant,
/// regenerate the files and review their diff in git:
///
///     CCRUN_UPDATE_GOLDEN=1 swift test --skip-build --filter GoldenPlanTests
///
/// Secrets never appear in the files: probe answers holding one (ccr.conf's content) keep it
/// masked (`********(cc_rw)`), and the secret goes back in when the test reads the file.
@Suite struct GoldenPlanTests {
    static let directory = Fixtures.projectDirectory.appendingPathComponent("plans")
    static var updating: Bool { ProcessInfo.processInfo.environment["CCRUN_UPDATE_GOLDEN"] == "1" }

    // MARK: the deployment

    static let secrets = [Secret(label: "admin", value: "golden-ADMIN-pw-1"), Secret(label: "cc_ro", value: "golden-RO-pw-2"),
                          Secret(label: "cc_rw", value: "golden-RW-pw-3"), Secret(label: "tuner", value: "golden-TUNER-pw-4")]

    /// One deployment for every runbook, with stand-ins for what the controller builds (the ccr
    /// binary, its schema, the packaging files), so the goldens change only when a plan does.
    static func deployment() -> Deployment {
        let files = { (name: String) in
            ServiceFiles(sysvScript: "#!/bin/sh\n# \(name): sysv script stand-in for the golden plans\n",
                         systemdUnit: "[Unit]\nDescription=\(name) (unit stand-in for the golden plans)\n")
        }
        var d = Deployment(nfsServer: "nfs-master.example", admin: DatabaseEndpoint(host: "db.example", port: 3306, user: "admin", password: secrets[0]),
                           readOnlyPassword: secrets[1], readWritePassword: secrets[2],
                           ccrBinary: Payload(Data("ccr release binary stand-in for the golden plans\n".utf8)),
                           schemaSQL: "CREATE TABLE IF NOT EXISTS nodes (id INT);\nCREATE TABLE IF NOT EXISTS programs (id INT);\n"
                               + "CREATE TABLE IF NOT EXISTS schema_version (v INT) COMMENT = 'ccr schema version 4';\n",
                           serviceFiles: Dictionary(uniqueKeysWithValues: ["ccr", "ccr-web", "ccr-watchdog"].map { ($0, files($0)) }),
                           tunerPassword: secrets[3])
        d.repoNodes = [BalancedServer(name: "repo-node-1", address: "10.0.1.11"), BalancedServer(name: "repo-node-2", address: "10.0.1.12")]
        d.webNodes = [BalancedServer(name: "web-node-1", address: "10.0.2.21")]
        return d
    }

    static let runbooks: [(String, @Sendable (Deployment) throws -> Runbook)] = [
        ("database", { DatabaseRunbook.make($0) }), ("nfs-master", NFSMasterRunbook.make), ("repo-node", RepoNodeRunbook.make),
        ("web-node", WebNodeRunbook.make), ("lb", LoadBalancerRunbook.make),
    ]

    // MARK: the cases

    enum Case: String, CaseIterable {
        case bareDebian = "bare-debian", configured, drifted, rpmSystemd = "rpm-systemd"

        var about: String {
            switch self {
            case .bareDebian: "Debian 12 (apt, sysv init), nothing of the guide installed, a blank data volume"
            case .configured: "the bare Debian host once the runbook holds: the plan must be empty"
            case .drifted: "the configured host after hands touched it: a file edited, a service stopped (or a database password changed)"
            case .rpmSystemd: "Amazon Linux 2023 (dnf, rpm, systemd), nothing of the guide installed"
            }
        }

        func host(for runbook: Runbook) throws -> SimulatedHost {
            switch self {
            case .bareDebian: return .bareDebian()
            case .rpmSystemd: return .bareAmazonLinux()
            case .configured:
                var h = SimulatedHost.bareDebian()
                try h.converge(runbook)
                return h
            case .drifted:
                var h = try Case.configured.host(for: runbook)
                // The first configuration file the runbook writes, edited by hand.
                if let file = runbook.steps.lazy.compactMap({ $0 as? File }).first, let old = h.files[file.path]?.content {
                    let edited = String(decoding: old, as: UTF8.self) + "# edited by hand\n"
                    h.files[file.path] = .file(edited, mode: file.mode, owner: file.owner, group: file.group)
                }
                // The last service the runbook starts, found stopped.
                if let service = runbook.steps.lazy.compactMap({ $0 as? ServiceRunning }).last { h.running.remove(service.name) }
                // The database: cc_rw's password changed behind ccrun's back (its login check fails).
                if let user = runbook.steps.last as? SQLScript, let login = user.facts.first { h.sqlWithRows.remove(login.key) }
                return h
            }
        }
    }

    // MARK: the file format

    /// One probe answer: the exit status and what the probe printed. A file's content (the
    /// `content BASE64` line) is kept apart as text, secrets masked, so the files read as the
    /// host's files do and hold no password.
    struct Answer: Codable, Equatable {
        var status: Int32
        var stdout: String
        var content: String?
    }

    /// One step of the plan, as `ccrun --dry-run` decides it: commands, diff and undo line by line.
    /// The fingerprint is what `resume` compares with the journal: recorded by one process and
    /// checked by every later one, it must not depend on the process (hash seeds, addresses).
    struct PlannedStep: Codable, Equatable {
        var id: String
        var fingerprint: String
        var state: String
        var commands: [[String]]?
        var diff: [String]?
        var undo: [String]?
        var message: String?
    }

    struct Golden: Codable, Equatable {
        var runbook: String
        var host: String
        var facts: [String: Answer]
        var plan: [PlannedStep]
    }

    static func encode(_ answers: FactSet, scrubber: SecretScrubber) -> [String: Answer] {
        answers.outputs.mapValues { out in
            var lines = out.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var content: String?
            if let i = lines.firstIndex(where: { $0.hasPrefix("content ") }), let data = Data(base64Encoded: String(lines[i].dropFirst(8))),
               let text = String(data: data, encoding: .utf8) {
                content = scrubber.scrub(text)
                lines.remove(at: i)
            }
            return Answer(status: out.status, stdout: scrubber.scrub(lines.joined(separator: "\n")), content: content)
        }
    }

    static func decode(_ answers: [String: Answer], secrets: [Secret]) -> FactSet {
        FactSet(answers.mapValues { a in
            var stdout = a.stdout
            if var text = a.content {
                for s in secrets { text = text.replacingOccurrences(of: s.description, with: s.reveal()) }
                stdout += "\ncontent " + Data(text.utf8).base64EncodedString()
            }
            return FactOutput(stdout: stdout, status: a.status)
        })
    }

    /// The runbook planned as a dry-run plans it: in order, each step told whether an earlier
    /// step would change what it reads (`HostRun.runSteps`).
    static func plan(_ runbook: Runbook, facts: FactSet) -> [PlannedStep] {
        let scrubber = SecretScrubber(runbook.secrets)
        var pending: [FactScope] = []
        func lines(_ text: String) -> [String] {
            var l = scrubber.scrub(text).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if l.last == "" { l.removeLast() }
            return l
        }
        return runbook.steps.map { step in
            let context = PlanContext(earlierChangePending: pending.contains { $0.overlaps(step.facts.map(\.key)) },
                                      backupDirectory: "/var/lib/ccrun/backup/GOLDEN")
            do {
                switch try step.plan(facts, context: context) {
                case .satisfied:
                    return PlannedStep(id: step.id, fingerprint: step.fingerprint, state: "ok")
                case let .dependsOnEarlierChange(why):
                    pending.append(step.affects)
                    return PlannedStep(id: step.id, fingerprint: step.fingerprint, state: "depends", message: scrubber.scrub(why))
                case let .change(change):
                    pending.append(change.affects ?? step.affects)
                    return PlannedStep(id: step.id, fingerprint: step.fingerprint, state: "would change", commands: change.commands.map(lines),
                                       diff: change.diff.map(lines), undo: change.undo.map { scrubber.scrub($0.summary) })
                }
            } catch {
                return PlannedStep(id: step.id, fingerprint: step.fingerprint, state: "refused", message: scrubber.scrub("\(error)"))
            }
        }
    }

    static func json<T: Encodable>(_ value: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(value), as: UTF8.self) + "\n"
    }

    // MARK: the test

    static var arguments: [(String, Case)] { runbooks.flatMap { r in Case.allCases.map { (r.0, $0) } } }

    @Test("each runbook's plan matches its golden file", arguments: arguments)
    func planMatchesGolden(runbookName: String, goldenCase: Case) throws {
        let make = try #require(Self.runbooks.first { $0.0 == runbookName }?.1)
        let runbook = try make(Self.deployment())
        let url = Self.directory.appendingPathComponent("\(runbookName)/\(goldenCase.rawValue).json")
        let scrubber = SecretScrubber(runbook.secrets)

        if Self.updating {
            let facts = try goldenCase.host(for: runbook).facts(for: runbook)
            let golden = Golden(runbook: runbookName, host: goldenCase.about, facts: Self.encode(facts, scrubber: scrubber),
                                plan: Self.plan(runbook, facts: facts))
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Self.json(golden).write(to: url, atomically: true, encoding: .utf8)
        }

        let text = try String(contentsOf: url, encoding: .utf8)
        let golden = try JSONDecoder().decode(Golden.self, from: Data(text.utf8))
        let planned = Self.plan(runbook, facts: Self.decode(golden.facts, secrets: runbook.secrets))
        if planned != golden.plan {
            var now = golden
            now.plan = planned
            let diff = UnifiedDiff.make(old: text, new: try Self.json(now), oldName: url.path, newName: "planned now")
            Issue.record("""
                the \(runbookName) plan for \(goldenCase.rawValue) is not the golden one (if meant: CCRUN_UPDATE_GOLDEN=1, then review the files' diff):
                \(diff)
                """)
        }
        // Terraform's rule: a configured host's plan is empty.
        if goldenCase == .configured {
            #expect(planned.allSatisfy { $0.state == "ok" }, "configured but not a no-op: \(planned.filter { $0.state != "ok" }.map(\.id))")
        } else {
            #expect(planned.contains { $0.state == "would change" }, "a \(goldenCase.rawValue) host with nothing to change")
        }
        // No secret in the file, whatever the runbook does with it.
        for secret in runbook.secrets {
            #expect(!text.contains(secret.reveal()), "\(url.lastPathComponent) holds the \(secret.label) secret")
        }
    }

    /// The masking round trip the files rely on: a file's content with a secret, encoded and
    /// decoded, parses as the host's answer did.
    @Test func maskedAnswersDecodeToTheHostsAnswers() throws {
        let secret = Self.secrets[2]
        var f = FactFixtures()
        f.file("/etc/ccr/ccr.conf", .file("[database]\npassword = \(secret.reveal())\n", mode: "600"))
        let encoded = Self.encode(f.set, scrubber: SecretScrubber([secret]))
        #expect(!(try Self.json(encoded)).contains(secret.reveal()))
        #expect(try Self.json(encoded).contains("password = \(secret.description)"))
        let probe = FileProbe.probe("/etc/ccr/ccr.conf")
        #expect(try Self.decode(encoded, secrets: [secret])[probe] == f.set[probe])
    }
}
