import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import TunerServer

/// `ccr bench-tuners`: a benchmark, not a test. Starts `ccr serve` as a separate process (or
/// measures one already running), connects N simulated tuners from this process replaying a
/// capture at real-time rate, and prints the server's resident memory per connected tuner and
/// its CPU use.
struct BenchTunersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-tuners",
        abstract: "Benchmark: N tuners streaming at real rate; prints server RSS per tuner and CPU.",
        shouldDisplay: false
    )

    @Option(help: "Number of tuners.")
    var tuners = 1000

    @Option(help: "Capture to replay (a *.sendto.bin).")
    var capture = "../shared/fixtures/89.sendto.bin"

    @Option(help: "Seconds to measure after all tuners are connected.")
    var duration: Double = 30

    @Option(help: "Connections opened per second.")
    var ramp = 1000

    @Option(help: "Replay speed (1 = real time).")
    var speed: Double = 1

    @Option(help: "Server store: none or sqlite.")
    var store = "sqlite"

    @Option(name: .customLong("server-pid"), help: "Measure this running server instead of starting one (needs --port).")
    var serverPID: Int32?

    @Option(help: "Port of the server given by --server-pid.")
    var port: Int?

    @Option(name: .customLong("client-threads"))
    var clientThreads = 1

    func run() async throws {
        let captureBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: capture)))
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-bench-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }

        var child: Process?
        let pid: Int32
        let serverPort: Int
        var metricsPort: Int?
        if let serverPID {
            guard let port else { throw ValidationError("--server-pid needs --port") }
            pid = serverPID
            serverPort = port
        } else {
            let ready = work.appendingPathComponent("ready").path
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            var arguments = ["serve", "--port", "0", "--listen", "127.0.0.1", "--metrics-port", "0", "--log-level", "error",
                             "--archive", work.appendingPathComponent("archive").path, "--ready-file", ready,
                             "--max-tuners", String(tuners + 10)]
            arguments += store == "none" ? ["--no-store"] : ["--database", work.appendingPathComponent("ccr.sqlite").path]
            process.arguments = arguments
            process.currentDirectoryURL = work
            try process.run()
            child = process
            pid = process.processIdentifier
            var found: Int?
            for _ in 0..<300 where found == nil {
                try await Task.sleep(for: .milliseconds(50))
                if let text = try? String(contentsOfFile: ready, encoding: .utf8) {
                    found = text.split(separator: "\n").first { $0.hasPrefix("port=") }.flatMap { Int($0.dropFirst(5)) }
                    metricsPort = text.split(separator: "\n").first { $0.hasPrefix("metrics=") }.flatMap { Int($0.dropFirst(8)) }
                }
            }
            guard let found else { process.terminate(); throw ValidationError("ccr serve did not start") }
            serverPort = found
        }
        defer {
            if let child { child.terminate(); child.waitUntilExit() }
        }

        try await Task.sleep(for: .seconds(1))
        let baseline = try ProcessStats(pid: pid)
        print("server pid \(pid), port \(serverPort); baseline RSS \(baseline.rssKB) KB")

        var options = TunerLoadGenerator.Options()
        options.port = serverPort
        options.connections = tuners
        options.rampPerSecond = ramp
        options.speed = speed
        options.threads = clientThreads
        let generator = TunerLoadGenerator(capture: captureBytes, options: options)
        let rampStart = Date()
        await generator.start()
        // Let the last connections finish connecting, and the server accept them all (on a
        // loaded machine its accept queue can lag well behind the client's connects).
        for _ in 0..<1200 {
            let s = generator.snapshot
            let accepted = metricsPort.flatMap { serverConnectedTuners(metricsPort: $0) } ?? s.connected
            if s.connected + s.failed >= tuners && accepted >= s.connected - s.finished { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        print(String(format: "connected %d tuners in %.1f s (%d failed)", generator.snapshot.connected,
                     Date().timeIntervalSince(rampStart), generator.snapshot.failed))
        if let error = generator.snapshot.firstError { print("first connection error: \(error)") }
        try await Task.sleep(for: .seconds(2))
        let start = try ProcessStats(pid: pid)
        let startTime = Date()
        let startBytes = generator.snapshot.bytesSent
        var peakRSS = start.rssKB
        while Date().timeIntervalSince(startTime) < duration {
            try await Task.sleep(for: .seconds(1))
            peakRSS = max(peakRSS, try ProcessStats(pid: pid).rssKB)
        }
        let end = try ProcessStats(pid: pid)
        let elapsed = Date().timeIntervalSince(startTime)
        let progress = generator.snapshot
        let connected = metricsPort.flatMap { serverConnectedTuners(metricsPort: $0) } ?? (progress.connected - progress.closedByServer)
        let perTuner = Double(end.rssKB - baseline.rssKB) / Double(max(connected, 1))
        let cpu = Double(end.cpuTicks - start.cpuTicks) / Double(ProcessStats.ticksPerSecond) / elapsed * 100
        let rate = Double(progress.bytesSent - startBytes) / elapsed
        print(String(format: "tuners connected at the server: %d (client: %d opened, %d failed, %d closed)", connected,
                     progress.connected, progress.failed, progress.closedByServer))
        print(String(format: "server RSS: baseline %d KB, now %d KB, peak %d KB", baseline.rssKB, end.rssKB, peakRSS))
        print(String(format: "RSS per tuner: %.2f KB (anonymous memory only: %.2f KB; RssAnon %d -> %d KB)", perTuner,
                     Double(end.anonKB - baseline.anonKB) / Double(max(connected, 1)), baseline.anonKB, end.anonKB))
        print(String(format: "server CPU: %.1f%% of one core over %.0f s; tuners sent %.0f KB/s (%.0f B/s per tuner)",
                     cpu, elapsed, rate / 1024, rate / Double(max(connected, 1))))
        await generator.stop()
    }
}

/// `ccr_connected_tuners` from the server's /metrics.
func serverConnectedTuners(metricsPort: Int) -> Int? {
    guard let url = URL(string: "http://127.0.0.1:\(metricsPort)/metrics"),
          let text = try? String(contentsOf: url, encoding: .utf8) else { return nil }
    return text.split(separator: "\n").first { $0.hasPrefix("ccr_connected_tuners ") }.flatMap { Int($0.split(separator: " ")[1]) }
}

/// Resident memory and CPU time of a process, from /proc.
struct ProcessStats {
    static let ticksPerSecond = Int(sysconf(Int32(_SC_CLK_TCK)))
    let rssKB: Int
    /// Heap and stacks only (RSS without file-backed and shared pages such as SQLite's WAL index).
    let anonKB: Int
    let cpuTicks: Int

    init(pid: Int32) throws {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        func field(_ name: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name) } ?? ""
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        rssKB = field("VmRSS:")
        anonKB = field("RssAnon:")
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // Fields after the command name (which may contain spaces) start after the last ')'.
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        cpuTicks = (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }
}
