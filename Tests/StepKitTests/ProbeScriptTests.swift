import Foundation
import Testing
@testable import StepKit
#if canImport(Glibc)
import Glibc
#endif

/// The probe scripts themselves, run by this machine's /bin/sh (dash on Debian, as `sudo -n sh -c`
/// runs them on a target): the batch's one shared `stat`, and the service checks that read the
/// kernel's tables instead of starting programs.
@Suite struct ProbeScriptTests {
    func run(_ batch: FactBatch) async throws -> FactSet {
        let out = try await LocalHost().run(batch.script, stdin: nil, timeout: .seconds(30))
        return try batch.parse(out.stdoutText)
    }

    @Test func filesAreStatedOnceForTheWholeBatchAndAwkwardNamesStillWork() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probe-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let names = ["plain", "with space", "with|bar", "with*star", "with\nnewline"]
        for (i, n) in names.enumerated() {
            try Data("content \(i)\n".utf8).write(to: URL(fileURLWithPath: dir + "/" + n))
            chmod(dir + "/" + n, mode_t(0o640 + i))
        }
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/missing-target")
        let probes = names.map { FileProbe.probe(dir + "/" + $0) } + [FileProbe.probe(dir, content: false), FileProbe.probe(dir + "/link"),
                                                                       FileProbe.probe(dir + "/absent")]
        let batch = FactBatch(probes.map(\.query))
        // One `stat` for every path the table can hold; "|" and newline names get their own.
        #expect(batch.script.components(separatedBy: "stat -c '%n|").count - 1 == 1)
        #expect(batch.script.components(separatedBy: "stat -c '%F|").count - 1 == 2)
        let facts = try await run(batch)
        for (i, n) in names.enumerated() {
            let state = try #require(try facts[probes[i]], "\(n)")
            #expect(state.kind == .file && state.mode == String(0o640 + i, radix: 8) && state.size == "content \(i)\n".utf8.count, "\(n): \(state)")
            #expect(state.content == Data("content \(i)\n".utf8))
        }
        #expect(try facts[probes[5]]?.kind == .directory)
        #expect(try facts[probes[6]]?.kind == .symlink)
        #expect(try facts[probes[7]] == nil)
    }

    @Test func existsSeesFilesDirectoriesAndDanglingLinks() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("exists-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: dir + "/nowhere")
        let probes = [FileProbe.exists(dir), FileProbe.exists(dir + "/link"), FileProbe.exists(dir + "/nothing")]
        let facts = try await run(FactBatch(probes.map(\.query)))
        #expect(try probes.map { try facts[$0] } == [true, true, false])
    }

    /// A socket listening on 127.0.0.1, on an ephemeral port. Close-on-exec: a process another
    /// test starts meanwhile must not inherit it (and keep it listening after `close`).
    func listen() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        #expect(bound == 0 && Glibc.listen(fd, 4) == 0)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    func check(_ c: ServiceCheck) async throws -> Bool {
        try await LocalHost().run("( \(c.script) ) >/dev/null 2>&1", stdin: nil, timeout: .seconds(30)).exitStatus == 0
    }

    @Test func tcpPortCheckFollowsTheListener() async throws {
        let (fd, port) = try listen()
        #expect(try await check(.tcpPort(port)))
        // Not listening on another address the check was asked about.
        #expect(try await !check(.tcpPort(port, host: "198.51.100.99")))
        close(fd)
        #expect(try await !check(.tcpPort(port)))
    }

    @Test func processCheckFindsARunningProgramByItsName() async throws {
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        defer { sleeper.terminate(); kill(sleeper.processIdentifier, SIGKILL); sleeper.waitUntilExit() }
        #expect(try await check(.process("sleep")))
        #expect(try await !check(.process("no-such-program")))
        let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("pid-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: pidFile) }
        try "\(sleeper.processIdentifier)\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        #expect(try await check(.pidFile(pidFile)))
        // Without systemd as PID 1 (this machine), the main process is the pid file's.
        #expect(try await check(.mainProcess(unit: "no-such-unit", pidFile: pidFile)))
        #expect(try await !check(.mainProcess(unit: "no-such-unit", pidFile: pidFile + ".missing")))
    }

    /// A package list is kept by the controller between runs (`AnswerSource`, `FactCache`): the
    /// host computes it again exactly when one of its source files changed. Random changes of
    /// every kind, each followed by a probe whose answer must be the file as it is now; the
    /// snippet counts its runs, so a reuse and a recomputation can be told apart.
    @Test func answersFromSourceFilesAreReusedOnlyWhileNoSourceChanged() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sourced-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/updates", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/status", counter = dir + "/runs"
        try Data("pkg-a\npkg-b\n".utf8).write(to: URL(fileURLWithPath: db))
        var gate = "true"
        func query() -> FactQuery {
            FactQuery(key: "listing", script: "echo run >> \(counter); cat \(db)", isolation: .inline,
                      source: AnswerSource(paths: [db, dir + "/updates"], onlyIf: gate))
        }
        let cache = FactCache(journal: LocalJournal(directory: URL(fileURLWithPath: dir + "/state")), host: "local")
        func runs() -> Int { ((try? String(contentsOfFile: counter, encoding: .utf8)) ?? "").split(separator: "\n").count }
        /// Probes as the engine does; returns whether the host computed the answer.
        func probe() async throws -> Bool {
            let before = runs()
            let batch = FactBatch([query()], cached: cache.load())
            let out = try await LocalHost().run(batch.script, stdin: nil, timeout: .seconds(30))
            let answers = try batch.answers(out.stdoutText)
            cache.store(answers.fresh)
            let answer = try #require(answers.facts.outputs["listing"])
            #expect(answer.stdout + "\n" == (try String(contentsOfFile: db, encoding: .utf8)), "the answer is not the file as it is now")
            return runs() > before
        }

        #expect(try await probe(), "nothing cached yet")
        #expect(try await !probe(), "unchanged sources: the copy is used")
        #expect(try await !probe())

        // Timestamps are taken at the kernel's granularity (a tick on kernels without multigrain
        // timestamps): the changes below are spaced past it, as dpkg runs are.
        var rng = SystemRandomNumberGenerator()
        for round in 0..<40 {
            usleep(12_000)
            let change = Int.random(in: 0..<7, using: &rng)
            let current = try Data(contentsOf: URL(fileURLWithPath: db))
            switch change {
            case 0: // rewritten in place, same size
                try Data(current.map { $0 == 0x0A ? 0x0A : UInt8.random(in: 0x61...0x7A, using: &rng) }).write(to: URL(fileURLWithPath: db), options: [])
            case 1: // replaced by rename, same content (dpkg's way)
                try current.write(to: URL(fileURLWithPath: db), options: .atomic)
            case 2: // grown
                let h = try FileHandle(forWritingTo: URL(fileURLWithPath: db)); try h.seekToEnd(); try h.write(contentsOf: Data("pkg-\(round)\n".utf8)); try h.close()
            case 3: // a journal entry appears, then goes
                let entry = dir + "/updates/\(round)"
                if FileManager.default.fileExists(atPath: entry) { try FileManager.default.removeItem(atPath: entry) } else { FileManager.default.createFile(atPath: entry, contents: Data()) }
            case 4: // mode changed
                chmod(db, mode_t(round % 2 == 0 ? 0o600 : 0o644))
            case 5: // the host stops qualifying (rpm appears), then qualifies again
                gate = gate == "true" ? "false" : "true"
            default: // nothing
                break
            }
            let computed = try await probe()
            if change == 6 && gate == "true" { #expect(!computed, "round \(round): nothing changed, yet the answer was computed again") }
            if change < 5 || gate == "false" { #expect(computed, "round \(round): change \(change), yet the cached answer was used") }
        }

        // A damaged cache file is only a miss.
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: dir + "/state/local/cached-answers.json"))
        gate = "true"
        #expect(try await probe())
        #expect(try await !probe())
    }

    /// A background snippet (a service's health command) starts before the batch's first
    /// snippet and answers in its turn, with its own output and exit status; its file is gone
    /// afterwards, and where no file can be made it runs in its turn instead.
    @Test func backgroundSnippetsOverlapTheBatchAndAnswerInTheirTurn() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("background-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/tmp", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let flag = dir + "/written-by-the-first-snippet"
        let queries = [
            // Runs first in order, and takes a second before writing the flag.
            FactQuery(key: "slow-first", script: "sleep 1; echo done > \(flag); echo first", isolation: .inline),
            FactQuery(key: "middle", script: "printf 'a\\\\b\\n  indented\\nno newline at end'", isolation: .subshell),
            // Last in order: started in the background, it looks for the flag before it exists.
            FactQuery(key: "background", script: "if [ -e \(flag) ]; then echo flag-present; else echo flag-absent; fi; echo second line; exit 3", isolation: .background),
            // Its output file, seen from inside: nobody else may read it.
            FactQuery(key: "background-ok", script: "echo fine; stat -L -c %a /proc/self/fd/1", isolation: .background),
        ]
        for tmp in [dir + "/tmp", dir + "/not-there"] {
            try? FileManager.default.removeItem(atPath: flag)
            let batch = FactBatch(queries)
            let out = try await LocalHost().run("TMPDIR=\(tmp)\n" + batch.script, stdin: nil, timeout: .seconds(30))
            let facts = try batch.parse(out.stdoutText)
            let started = tmp.hasSuffix("/tmp")
            #expect(facts.outputs["background"] == FactOutput(stdout: (started ? "flag-absent" : "flag-present") + "\nsecond line", status: 3), "TMPDIR \(tmp)")
            #expect(facts.outputs["background-ok"]?.stdout.hasPrefix("fine\n") == true)
            if started { #expect(facts.outputs["background-ok"]?.stdout == "fine\n600", "the waiting answer is readable by others") }
            #expect(facts.outputs["slow-first"] == FactOutput(stdout: "first", status: 0))
            #expect(facts.outputs["middle"] == FactOutput(stdout: "a\\b\n  indented\nno newline at end", status: 0))
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/tmp").isEmpty, "a background file was left behind")
        }
        // A name planted where the file would go is never written through: that snippet runs in its turn.
        let batch = FactBatch([FactQuery(key: "background", script: "echo answer", isolation: .background)])
        let planted = dir + "/tmp/.ccrun-probe-\(batch.boundary)-0"
        try FileManager.default.createSymbolicLink(atPath: planted, withDestinationPath: dir + "/victim")
        let out = try await LocalHost().run("TMPDIR=\(dir)/tmp\n" + batch.script, stdin: nil, timeout: .seconds(30))
        #expect(try batch.parse(out.stdoutText).outputs["background"] == FactOutput(stdout: "answer", status: 0))
        #expect(!FileManager.default.fileExists(atPath: dir + "/victim"))
    }
}
