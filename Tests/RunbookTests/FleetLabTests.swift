import Foundation
import SupportKit
import Testing

/// The guide's fleet on the lab (`ccrun lab up --fleet`): two repository and two web servers
/// sharing one NFS archive and one database, behind HAProxy (`ccrun lb`) standing in for the two
/// load balancers. Tuners stream to the load balancer's 3030 and visitors read its port 80.
///
/// Two tuners with one description stream the same capture at once: `balance leastconn` sends
/// them to different repository nodes, which start programs of one name in (nearly always) one
/// second in one tuner folder of the shared archive. Each program's SRT must come back byte for
/// byte through the load balancer and from each web node directly, read from the archive's file;
/// with file names shared by the nodes, both would append to the same files and neither would match.
///
/// Serialized with the other suites on db, nfs-master, repo-node and web-node (it deploys onto
/// them as LabDeployTests does); skipped on a lab without the fleet's hosts.
@Suite(.serialized, .enabled(if: LabEnvironment.shouldRun && LabEnvironment.hasFleetHosts && Fixtures.shouldRunSharedTests,
                             "needs the lab with its fleet (`ccrun lab up --fleet`) and the shared fixtures"))
struct FleetLabTests {
    typealias Deploy = LabDeployTests

    @Test(.timeLimit(.minutes(20)))
    func twoNodesOfEachRoleBehindTheLoadBalancer() async throws {
        let lab = try Deploy.Lab.load()
        let ccrun = try Deploy.ccrunBinary()
        let ship = try Deploy.shipBinary()
        try deployFleet(lab, ccrun: ccrun, ship: ship)
        let lb = try lab.address("lb")
        let shell = try LabHostShell.load()
        // Both backends up (the health checks passed) before anything is sent through them.
        try await waitForServersUp(shell, count: 4)

        let capture = try Fixtures.shared("the.tudors.sendto.bin")
        let expectedSRT = try Data(contentsOf: try Fixtures.shared("the.tudors.sendto.srt"))
        let before = Set(try Deploy().programIDs(lab, web: lb))
        let passwordFile = lab.secretsDirectory + "/tuner-password"
        let streams = try await withThrowingTaskGroup(of: Deploy.CommandResult.self) { group in
            for _ in 0..<2 {
                group.addTask { try Deploy.run(Fixtures.packageRoot.appendingPathComponent("scripts/stream-capture").path, [lb, capture.path, passwordFile]) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for s in streams { try #require(s.status == 0, "streaming to \(lb):3030 failed: \(s.output)") }

        // Both programs listed through the load balancer, each SRT identical to the reference
        // through it and from both web nodes.
        let webs = [lb, try lab.address("web-node"), try lab.address("web-node-2")]
        var programs: [String] = [], mismatches: [String] = []
        let deadline = Date().addingTimeInterval(60)
        repeat {
            programs = try Deploy().programIDs(lab, web: lb).filter { !before.contains($0) }
            mismatches = []
            for program in programs { for web in webs {
                let url = "http://\(web)/programs/\(program)/srt"
                let r = try lab.get(url)
                // From the archive's file (the database can render the same SRT: that would hide files the nodes share).
                let source = try Deploy.run("/usr/sbin/ip", ["netns", "exec", try lab.netns("db"), "curl", "-sSf", "--max-time", "10",
                                                             "-o", "/dev/null", "-w", "%header{x-ccr-source}", url]).output
                if r.status != 0 || Data(r.output.utf8) != expectedSRT || source != "archive" {
                    mismatches.append("\(url) (from the \(source)): \(r.output.prefix(300))")
                }
            } }
            if programs.count == 2 && mismatches.isEmpty { break }
            try await Task.sleep(for: .milliseconds(500))
        } while Date() < deadline
        try #require(programs.count == 2, "expected 2 new programs through http://\(lb)/api/programs, found \(programs)")
        #expect(mismatches.isEmpty, "SRTs that differ from the.tudors.sendto.srt:\n\(mismatches.joined(separator: "\n"))")

        // One program per node, each in files named after its node, in the one shared archive.
        let files = try shell.check("nfs-master", "cd /srv/archive && find . -name '*.srt' | sort", "list the archive")
        let nodes = try adminSQL("SELECT n.hostname FROM programs p JOIN tuners t ON t.id = p.tuner_id JOIN nodes n ON n.id = t.node_id WHERE p.id IN (\(programs.joined(separator: ","))) ORDER BY 1")
        #expect(nodes.output.split(separator: "\n").dropFirst() == ["repo-node", "repo-node-2"], "programs by node: \(nodes.output)")
        for node in ["repo-node", "repo-node-2"] {
            #expect(files.split(separator: "\n").contains { $0.hasSuffix("@\(node).srt") }, "no archived .srt of \(node):\n\(files)")
        }
    }

    /// Node loss: a tuner behaving like CCExtractor with live input (scripts/live-tuner: real-time
    /// pace, PING every 3 s, reconnect re-sending PASSWORD, CC_DESC, BIN_HEADER) streams through
    /// the load balancer; ccr on the node holding it is killed (-9) 20 s in. The tuner must come
    /// back through the load balancer to the other node within seconds and its captions continue
    /// there, no line written twice; the watchdog marks the dead node's tuner disconnected.
    @Test(.timeLimit(.minutes(10)))
    func aTunerSurvivesTheLossOfItsNode() async throws {
        let lab = try Deploy.Lab.load()
        try deployFleet(lab, ccrun: try Deploy.ccrunBinary(), ship: try Deploy.shipBinary())
        let shell = try LabHostShell.load()
        try await waitForServersUp(shell, count: 4)
        let since = try sql("SELECT ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000)").first ?? "0"
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("live-tuner-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let tuner = Process()
        tuner.executableURL = Fixtures.packageRoot.appendingPathComponent("scripts/live-tuner")
        tuner.arguments = [try lab.address("lb"), try Fixtures.shared("the.tudors.sendto.bin").path, lab.secretsDirectory + "/tuner-password"]
        tuner.standardOutput = try FileHandle(forWritingTo: log)
        try tuner.run()
        defer { if tuner.isRunning { tuner.terminate() } }

        try await Task.sleep(for: .seconds(20))
        let holder = try #require(try sql("SELECT n.hostname FROM tuners t JOIN nodes n ON n.id = t.node_id WHERE t.connected_at >= \(since) AND t.disconnected_at IS NULL").first,
                                  "no connected tuner in the database 20 s into the stream")
        let survivor = holder == "repo-node" ? "repo-node-2" : "repo-node"
        try shell.check(holder, "kill -9 $(pidof ccr)", "kill -9 ccr")
        let killed = Date()
        defer { _ = try? shell.run(holder, "service ccr start >/dev/null 2>&1 || systemctl start ccr") }
        while tuner.isRunning { try await Task.sleep(for: .milliseconds(200)) }

        // The tuner's own account: one reconnect, how long it took, the records it could not send.
        let events = try String(contentsOf: log, encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let times = { (kind: String) in events.filter { $0["event"] as? String == kind }.compactMap { $0["t"] as? Double } }
        let connects = times("connected"), drops = times("disconnected")
        try #require(connects.count == 2 && drops.count >= 1, "expected one reconnect, the tuner says:\n\(events)")
        let reconnect = connects[1] - drops[0]
        #expect(reconnect < 5, "the tuner took \(reconnect) s to reconnect through the load balancer")

        // Where its captions went: both nodes, none twice. The 608 lines (service 0): CEA-708
        // service 1 carries the same words again, at its own times.
        let lines = try sql("""
            SELECT n.hostname, c.start_ms, REPLACE(c.text, '\\n', '|') FROM caption_lines c JOIN tuners t ON t.id = c.tuner_id
            JOIN nodes n ON n.id = t.node_id WHERE t.connected_at >= \(since) AND c.service = 0 ORDER BY c.start_ms
            """).map { $0.split(separator: "\t", maxSplits: 2).map(String.init) }
        let keys = lines.map { "\($0[1]) \($0.count > 2 ? $0[2] : "")" }
        #expect(Set(keys).count == keys.count, "lines written twice:\n\(keys)")
        #expect(Set(lines.map { $0[0] }) == [holder, survivor], "lines by node: \(lines.map { $0[0] })")
        let reference = 22   // cues of the.tudors.sendto.srt
        let before = lines.filter { $0[0] == holder }.compactMap { Int($0[1]) }.max() ?? 0
        let after = lines.filter { $0[0] == survivor }.compactMap { Int($0[1]) }.min() ?? 0
        #expect(lines.count >= reference - 2, "\(lines.count) of \(reference) cues reached the database")
        print("fleet: node loss: tuner reconnected in \(Int(reconnect * 1000)) ms; \(reference - lines.count) of \(reference) cues lost; "
              + "captions stop at \(before) ms on \(holder) and resume at \(after) ms on \(survivor); the tuner lost "
              + "\(events.last?["lost"] ?? "?") records")

        // The watchdog (on nfs-master: --stale-after 30, every 10 s) marks the dead node's tuner gone.
        var marked: TimeInterval?
        while marked == nil && Date().timeIntervalSince(killed) < 60 {
            let reason = try sql("SELECT t.disconnect_reason FROM tuners t JOIN nodes n ON n.id = t.node_id WHERE t.connected_at >= \(since) AND n.hostname = '\(holder)'").first
            if reason == "watchdog" { marked = Date().timeIntervalSince(killed) } else { try await Task.sleep(for: .seconds(1)) }
        }
        #expect(marked != nil, "the watchdog did not mark \(holder)'s tuner disconnected within 60 s of the kill")
        print("fleet: node loss: the watchdog marked \(holder)'s tuner disconnected \(Int(marked ?? -1)) s after the kill")
    }

    /// A rolling upgrade (`--serial 1`) of both repository nodes and then both web nodes to a new
    /// ccr, each node really restarting its service, while a visitor polls the web through the
    /// load balancer every 100 ms and two live tuners stream through it. No request may fail:
    /// each web node is drained and its sessions ended before its restart, and put back (HAProxy
    /// reports it UP) before the next one is drained. A tuner moves only when the node holding it
    /// restarts, in one reconnect to the other node, and its captions continue there. With two
    /// repository nodes, a tuner of the node upgraded first moves twice (to the second node, then
    /// back when the second restarts): so at most one reconnect per restart of a node it was on.
    @Test(.timeLimit(.minutes(10)))
    func aRollingUpgradeLosesNoRequestAndNoTuner() async throws {
        let lab = try Deploy.Lab.load()
        let ccrun = try Deploy.ccrunBinary(), ship = try Deploy.shipBinary()
        try deployFleet(lab, ccrun: ccrun, ship: ship)
        let shell = try LabHostShell.load()
        try await waitForServersUp(shell, count: 4)
        let upgrade = try Self.newBuild(of: ship)
        defer { try? FileManager.default.removeItem(at: upgrade) }
        let nodes = ["repo-node", "repo-node-2", "web-node", "web-node-2"]
        let pidsBefore = try nodes.map { try servicePID(shell, $0) }

        let lb = try lab.address("lb")
        let since = try sql("SELECT ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000)").first ?? "0"
        let poller = try Background(Fixtures.packageRoot.appendingPathComponent("scripts/poll-web").path, ["http://\(lb)/", "100"])
        defer { poller.stop() }
        let capture = try Fixtures.shared("the.tudors.sendto.bin").path, password = lab.secretsDirectory + "/tuner-password"
        let tuners = try (0..<2).map { _ in try Background(Fixtures.packageRoot.appendingPathComponent("scripts/live-tuner").path, [lb, capture, password]) }
        defer { for t in tuners { t.stop() } }
        for t in tuners { try await t.waitFor("\"connected\"", seconds: 10) }

        var timings: [String] = []
        for (runbook, hosts) in [("repo-node", ["repo-node", "repo-node-2"]), ("web-node", ["web-node", "web-node-2"])] {
            let r = try CCRunProcess.run([runbook, "--inventory", lab.inventory] + hosts + ["--serial", "1", "--json", "--ccr-binary", upgrade.path])
            try #require(r.status == 0, "ccrun \(runbook) --serial 1: \(r.text)")
            let report = try Self.rollout(r.stdout)
            #expect(report.batches == hosts.map { [$0] }, "batches: \(report.batches)")
            #expect(report.states == hosts.map { _ in "done" }, "\(r.stdout.prefix(3000))")
            #expect(report.phases.allSatisfy { $0 == ["drain", "apply", "health", "undrain"] }, "phases: \(report.phases)")
            timings += zip(hosts, report.seconds).map { "\($0) \(String(format: "%.1f", $1)) s" }
        }
        // Every node runs a new process: the upgrade restarted each service.
        let pidsAfter = try nodes.map { try servicePID(shell, $0) }
        for (node, (a, b)) in zip(nodes, zip(pidsBefore, pidsAfter)) { #expect(a != b, "\(node): its ccr was not restarted (pid \(a))") }

        let polled = try poller.stopJSON()
        let requests = polled["requests"] as? Int ?? 0, failed = polled["failed"] as? Int ?? -1
        #expect(requests > 50 && failed == 0, "requests through the lb during the rollout: \(polled)")

        // The tuners: each reconnect at most once per restart of its node, quickly; captions continue.
        for t in tuners { try await t.waitForExit(seconds: 120) }
        var reconnects: [Int] = []
        for t in tuners {
            let events = t.jsonLines()
            let connects = events.filter { $0["event"] as? String == "connected" }.compactMap { $0["t"] as? Double }
            let drops = events.filter { $0["event"] as? String == "disconnected" }.compactMap { $0["t"] as? Double }
            // Each node restarted once, so each tuner moved once or twice (the last "disconnected"
            // is the server closing after the capture's end).
            #expect((2...3).contains(connects.count), "a tuner should reconnect once per restart of the node holding it: \(events)")
            for (drop, back) in zip(drops, connects.dropFirst()) { #expect(back - drop < 5, "a reconnect took \(back - drop) s: \(events)") }
            reconnects.append(connects.count - 1)
        }
        // After each reconnect, the tuner's new connection (a new tuner row) carried captions.
        let perConnection = try sql("""
            SELECT t.id, n.hostname, COUNT(c.start_ms) FROM tuners t JOIN nodes n ON n.id = t.node_id
            LEFT JOIN caption_lines c ON c.tuner_id = t.id AND c.service = 0 WHERE t.connected_at >= \(since) GROUP BY t.id, n.hostname ORDER BY t.id
            """).map { $0.split(separator: "\t").map(String.init) }
        #expect(perConnection.count == 2 + reconnects.reduce(0, +), "tuner connections since the start: \(perConnection)")
        let lines = perConnection.compactMap { Int($0[2]) }.reduce(0, +)
        #expect(lines >= 2 * 22 - 2 * reconnects.reduce(0, +), "\(lines) caption lines of 2 x 22 reached the database: \(perConnection)")
        print("fleet: rolling upgrade: \(requests) requests through the lb, \(failed) failed (slowest \(polled["slowest_ms"] ?? "?") ms); "
              + "tuner reconnects \(reconnects); \(lines) of 44 caption lines; per node: \(timings.joined(separator: ", "))")
    }

    /// A rollout whose second node fails (its disk is full: the new ccr does not fit) stops there,
    /// leaving that node drained with its old ccr running; after the fix, `--resume` applies it
    /// without applying the first node again. (That the nodes after a failed one are untouched is
    /// RolloutRunTests' part: the lab has two nodes per role.)
    @Test(.timeLimit(.minutes(10)))
    func aFailedRolloutStopsAndResumesWhereItStopped() async throws {
        let lab = try Deploy.Lab.load()
        let ccrun = try Deploy.ccrunBinary(), ship = try Deploy.shipBinary()
        try deployFleet(lab, ccrun: ccrun, ship: ship)
        let shell = try LabHostShell.load()
        try await waitForServersUp(shell, count: 4)
        let upgrade = try Self.newBuild(of: ship)
        defer { try? FileManager.default.removeItem(at: upgrade) }
        // A full disk on repo-node-2: /usr/local/bin as a file system just big enough for what it holds.
        try shell.check("repo-node-2", """
            d=$(mktemp -d) && cp -a /usr/local/bin/. "$d"/ && mount -t tmpfs -o size=$(( $(du -sm "$d" | cut -f1) + 4 ))m full /usr/local/bin && cp -a "$d"/. /usr/local/bin/ && rm -rf "$d"
            """, "fill repo-node-2's /usr/local/bin")
        var fixed = false
        defer { if !fixed { _ = try? shell.run("repo-node-2", "umount /usr/local/bin || umount -l /usr/local/bin") } }
        let pid1 = try servicePID(shell, "repo-node"), pid2 = try servicePID(shell, "repo-node-2")
        let args = ["repo-node", "--inventory", lab.inventory, "repo-node", "repo-node-2", "--serial", "1", "--json", "--ccr-binary", upgrade.path]

        let failed = try CCRunProcess.run(args)
        #expect(failed.status == 1, "the rollout should fail on repo-node-2: \(failed.text)")
        let first = try Self.rollout(failed.stdout)
        #expect(first.states == ["done", "failed"], "\(failed.stdout.prefix(3000))")
        #expect(first.messages[1].contains("not enough space") && first.messages[1].contains("left drained"), "\(first.messages)")
        let pid1AfterFirst = try servicePID(shell, "repo-node")
        #expect(pid1AfterFirst != pid1, "repo-node was not upgraded")
        #expect(try servicePID(shell, "repo-node-2") == pid2, "repo-node-2's old ccr should still run")
        #expect(try serverStatus(shell, "repo-nodes", "repo-node-2") == "DRAIN", "repo-node-2 should be left drained")

        try shell.check("repo-node-2", "umount /usr/local/bin", "free repo-node-2's disk")
        fixed = true
        let resumed = try CCRunProcess.run(args + ["--resume"])
        try #require(resumed.status == 0, "the resumed rollout: \(resumed.text)")
        let second = try Self.rollout(resumed.stdout)
        #expect(second.states == ["done earlier", "done"], "\(resumed.stdout.prefix(3000))")
        #expect(try servicePID(shell, "repo-node") == pid1AfterFirst, "repo-node was applied again")
        #expect(try servicePID(shell, "repo-node-2") != pid2, "repo-node-2 was not upgraded")
        try await waitForServersUp(shell, count: 4)
    }

    /// The pid of the node's ccr (ccr serve on repository nodes, ccr web on web nodes).
    func servicePID(_ shell: LabHostShell, _ node: String) throws -> String {
        try shell.check(node, "pidof ccr", "pidof ccr").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A server's status in HAProxy's `show stat` (UP, DRAIN, DOWN...).
    func serverStatus(_ shell: LabHostShell, _ backend: String, _ server: String) throws -> String {
        let csv = try shell.check("lb", Self.runtimeAPI("show stat"), "show stat")
        let lines = csv.split(separator: "\n")
        let header = lines.first?.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false) ?? []
        guard let status = header.firstIndex(of: "status") else { return "?" }
        for line in lines.dropFirst() {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            if f.count > status && f[0] == backend && f[1] == server { return String(f[status]) }
        }
        return "absent"
    }

    /// A new ccr build for the upgrade: the shipped one with bytes appended (the same program,
    /// another file: ccrun ships it and restarts the service, as for a real new release).
    static func newBuild(of ship: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-upgrade-\(UUID().uuidString)")
        var data = try Data(contentsOf: URL(fileURLWithPath: ship))
        data.append(Data("\nccr upgrade \(UUID().uuidString)\n".utf8))
        try data.write(to: url)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        return url
    }

    /// The parts of a `ccrun.rollout/1` report the tests look at.
    struct RolloutSummary {
        var batches: [[String]] = [], states: [String] = [], phases: [[String]] = [], seconds: [Double] = [], messages: [String] = []
    }

    static func rollout(_ stdout: String) throws -> RolloutSummary {
        let start = try #require(stdout.firstIndex(of: "{"), "no JSON report: \(stdout.prefix(2000))")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(stdout[start...].utf8)) as? [String: Any])
        #expect(json["schema"] as? String == "ccrun.rollout/1")
        var s = RolloutSummary()
        for batch in json["batches"] as? [[String: Any]] ?? [] {
            let nodes = batch["nodes"] as? [[String: Any]] ?? []
            s.batches.append(nodes.compactMap { $0["host"] as? String })
            for n in nodes {
                s.states.append(n["state"] as? String ?? "?")
                s.phases.append((n["phases"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String })
                s.seconds.append(n["seconds"] as? Double ?? 0)
                s.messages.append(n["message"] as? String ?? "")
            }
        }
        return s
    }

    /// A helper process whose stdout is collected in a file (live tuners, the web poller).
    final class Background: @unchecked Sendable {
        let process = Process()
        let log: URL
        init(_ path: String, _ args: [String]) throws {
            log = FileManager.default.temporaryDirectory.appendingPathComponent("fleet-\(UUID().uuidString).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = args
            process.standardOutput = try FileHandle(forWritingTo: log)
            process.standardInput = Pipe()
            try process.run()
        }
        deinit { stop(); try? FileManager.default.removeItem(at: log) }
        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        /// SIGTERM, then SIGKILL if it is still there 5 s later.
        func stop() {
            guard process.isRunning else { return }
            process.terminate()
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(50_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        func jsonLines() -> [[String: Any]] {
            output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }
        /// Stops the process (SIGTERM) and reads the one JSON object it printed.
        func stopJSON() throws -> [String: Any] {
            stop()
            return try #require(jsonLines().last, "no JSON from \(process.executableURL?.lastPathComponent ?? "?"): \(output)")
        }
        func waitFor(_ text: String, seconds: Double) async throws {
            let deadline = Date().addingTimeInterval(seconds)
            while !output.contains(text) && Date() < deadline { try await Task.sleep(for: .milliseconds(100)) }
            try #require(output.contains(text), "\(process.executableURL?.lastPathComponent ?? "?") did not print \(text) within \(Int(seconds)) s: \(output)")
        }
        func waitForExit(seconds: Double) async throws {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(200)) }
            #expect(!process.isRunning, "\(process.executableURL?.lastPathComponent ?? "?") still runs after \(Int(seconds)) s")
        }
    }

    /// The guide's commands for the fleet, in its order (a converged fleet: about a second each).
    func deployFleet(_ lab: Deploy.Lab, ccrun: String, ship: String) throws {
        let inventory = lab.inventory
        let commands = [["database", "--inventory", inventory],
                        ["nfs-master", "--inventory", inventory, "nfs-master"],
                        ["repo-node", "--inventory", inventory, "repo-node", "repo-node-2"],
                        ["web-node", "--inventory", inventory, "web-node", "web-node-2"],
                        ["lb", "--inventory", inventory, "lb"]]
        for args in commands {
            let started = Date()
            let r = try Deploy().apply(ccrun, args, ship: ship)
            try #require(r.status == 0, "ccrun \(args.joined(separator: " ")) exited \(r.status):\n\(r.output.suffix(4000))")
            print("fleet: ccrun \(args[0]) \(args.dropFirst(3).joined(separator: " ")) in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        }
    }

    /// Rows of a query on the deployment's database (tab-separated columns, no header).
    func sql(_ query: String) throws -> [String] {
        let r = try adminSQL(query)
        try #require(r.status == 0, "\(query): \(r.output)")
        return r.output.split(separator: "\n").dropFirst().map(String.init)
    }

    /// Waits until HAProxy's runtime API says `count` servers are UP (its health checks passed).
    func waitForServersUp(_ shell: LabHostShell, count: Int) async throws {
        let deadline = Date().addingTimeInterval(30)
        var state = ""
        while Date() < deadline {
            state = try shell.run("lb", Self.runtimeAPI("show servers state")).output
            // Column 6 of `show servers state` is srv_op_state: 2 = running (UP).
            let up = state.split(separator: "\n").filter { $0.split(separator: " ").count > 5 && $0.split(separator: " ")[5] == "2" }
            if up.count >= count { return }
            try await Task.sleep(for: .milliseconds(500))
        }
        Issue.record("HAProxy's servers did not all come up within 30 s:\n\(state)")
    }

    /// A command to HAProxy's runtime API on the lb host (python3 is on every lab host; socat is not).
    static func runtimeAPI(_ command: String) -> String {
        "python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(\"/run/haproxy/admin.sock\"); s.sendall(sys.argv[1].encode()+b\"\\n\"); print(s.makefile().read())' '\(command)'"
    }

    func adminSQL(_ query: String) throws -> Deploy.CommandResult {
        try Deploy().adminSQL("USE cc; " + query)
    }
}
