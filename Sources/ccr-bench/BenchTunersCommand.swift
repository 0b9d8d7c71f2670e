import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Store
import Synchronization
import TunerBench
import TunerServer

/// `ccr-bench`: a benchmark, not a test, and an executable of its own so that the shipped ccr
/// carries no load generator (bench/ccr runs it). Starts `ccr serve` as a separate process (or
/// measures one already running), connects N simulated tuners from this process replaying a
/// capture at real-time rate, and prints the server's resident memory per connected tuner and
/// its CPU use. Some tuners are latency probes (`LatencyProbe`): a reader polls the store's live
/// feed query (`liveLines`, what `ccr web`'s live page uses) and times each probe line from its
/// completing bytes being sent to the line being readable. The last line printed, `RESULT ...`,
/// is for scripts (bench/ccr).
@main
struct CCRBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ccr-bench",
        abstract: "Benchmarks of ccr serve (not shipped).",
        subcommands: [BenchTunersCommand.self, SessionReplayCommand.self, AbuseCommand.self],
        defaultSubcommand: BenchTunersCommand.self
    )
}

struct BenchTunersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tuners",
        abstract: "Benchmark: N tuners streaming at real rate; prints server RSS per tuner and CPU."
    )

    @Option(help: "The ccr whose `serve` is measured (default: the ccr beside this executable).")
    var ccr: String?

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

    @Option(help: "Latency probe tuners among --tuners (default: a tenth, at most 100).")
    var probes: Int?

    @Option(name: .customLong("probe-interval-ms"), help: "Milliseconds between a probe's captions.")
    var probeIntervalMilliseconds = 1000

    @Option(name: .customLong("poll-ms"), help: "How often the reader polls the live feed query.")
    var pollMilliseconds = 10

    @Option(help: "The server's SQLite database (with --server-pid), for the latency reader.")
    var database: String?

    @Option(name: .customLong("connect-timeout"), help: "Seconds to wait for all tuners to be connected and accepted.")
    var connectTimeout: Double = 600

    @Option(name: .customLong("samples"), help: "Write each probe line's send time (epoch ms) and latency parts (ms) to this file.")
    var samplesPath: String?

    func run() async throws {
        raiseFileLimit()
        let loadAtStart = loadAverage()
        let captureBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: capture)))
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("ccr-bench-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }

        var child: Process?
        let pid: Int32
        let serverPort: Int
        var metricsPort: Int?
        var databasePath = database
        if let serverPID {
            guard let port else { throw ValidationError("--server-pid needs --port") }
            pid = serverPID
            serverPort = port
        } else {
            let ready = work.appendingPathComponent("ready").path
            let process = Process()
            let beside = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("ccr")
            process.executableURL = ccr.map { URL(fileURLWithPath: $0) } ?? beside
            var arguments = ["serve", "--port", "0", "--listen", "127.0.0.1", "--metrics-port", "0", "--log-level", "error",
                             "--archive", work.appendingPathComponent("archive").path, "--ready-file", ready,
                             "--max-tuners", String(tuners + 10)]
            if store != "none" { databasePath = work.appendingPathComponent("ccr.sqlite").path }
            arguments += databasePath.map { ["--database", $0] } ?? ["--no-store"]
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
        print("server pid \(pid), port \(serverPort); baseline RSS \(baseline.rssKB) KB; load average \(loadAtStart)")

        let probeCount = min(tuners, max(0, probes ?? min(100, max(1, tuners / 10))))
        var liveReader: LiveLatencyReader?
        if let databasePath, probeCount > 0 {
            let readerStore = try await openStore(.sqlite(path: databasePath), options: StoreOptions(readOnly: true))
            liveReader = try await LiveLatencyReader(store: readerStore, pollMilliseconds: pollMilliseconds)
        }

        var options = TunerLoadGenerator.Options()
        options.port = serverPort
        options.connections = tuners
        options.rampPerSecond = ramp
        options.speed = speed
        options.threads = clientThreads
        options.probes = liveReader == nil ? 0 : probeCount
        options.probeIntervalMilliseconds = Int64(probeIntervalMilliseconds)
        let generator = TunerLoadGenerator(capture: captureBytes, options: options)
        let readerTask = liveReader.map { reader in Task { await reader.run(ledger: generator.ledger) } }
        defer { readerTask?.cancel() }
        let rampStart = Date()
        await generator.start()
        // Let the last connections finish connecting, and the server accept them all (on a
        // loaded machine its accept queue can lag well behind the client's connects).
        var allConnected = false
        let connectDeadline = Date().addingTimeInterval(connectTimeout)
        while Date() < connectDeadline {
            let s = generator.snapshot
            let accepted = metricsPort.flatMap { serverConnectedTuners(metricsPort: $0) } ?? s.connected
            if s.connected + s.failed >= tuners && accepted >= s.connected - s.finished {
                allConnected = true
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        print(String(format: "connected %d tuners in %.1f s (%d failed)", generator.snapshot.connected,
                     Date().timeIntervalSince(rampStart), generator.snapshot.failed))
        if let error = generator.snapshot.firstError { print("first connection error: \(error)") }
        if !allConnected { print("NOT all tuners connected within \(Int(connectTimeout)) s: measuring those that are") }
        try await Task.sleep(for: .seconds(2))
        // Latency counts only probe lines completed during the measurement.
        liveReader?.startMeasuring(ledger: generator.ledger)
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
        let loadAtEnd = loadAverage()
        // Lines completed in the last second may still be on their way: give them that second.
        let measuredUntil = ContinuousClock.now - .seconds(1)
        try await Task.sleep(for: .seconds(1))
        let latency = liveReader?.finish(ledger: generator.ledger, sentBefore: measuredUntil, samplesPath: samplesPath)
        let progress = generator.snapshot
        let connected = metricsPort.flatMap { serverConnectedTuners(metricsPort: $0) } ?? (progress.connected - progress.closedByServer)
        let perTuner = Double(end.rssKB - baseline.rssKB) / Double(max(connected, 1))
        let cpu = Double(end.cpuTicks - start.cpuTicks) / Double(ProcessStats.ticksPerSecond) / elapsed * 100
        let rate = Double(progress.bytesSent - startBytes) / elapsed
        print(String(format: "tuners connected at the server: %d (client: %d opened, %d failed, %d closed; %d sends held back while the server lagged)",
                     connected, progress.connected, progress.failed, progress.closedByServer, progress.heldBack))
        print(String(format: "server RSS: baseline %d KB, now %d KB, peak %d KB", baseline.rssKB, end.rssKB, peakRSS))
        print(String(format: "RSS per tuner: %.2f KB (anonymous memory only: %.2f KB; RssAnon %d -> %d KB)", perTuner,
                     Double(end.anonKB - baseline.anonKB) / Double(max(connected, 1)), baseline.anonKB, end.anonKB))
        print(String(format: "server CPU: %.1f%% of one core over %.0f s; tuners sent %.0f KB/s (%.0f B/s per tuner)",
                     cpu, elapsed, rate / 1024, rate / Double(max(connected, 1))))
        if let latency {
            print(String(format: "live feed latency (%d probe tuners, a caption each %d ms; reader polls each %d ms): %d lines, p50 %.1f ms, p99 %.1f ms, max %.1f ms, %d not seen",
                         probeCount, probeIntervalMilliseconds, pollMilliseconds, latency.samples, latency.p50, latency.p99,
                         latency.max, latency.missing))
            print(String(format: "  its parts (wall clock, ms resolution): p99 %.0f ms from the bytes sent to the line decoded (network, event loops), p99 %.0f ms from decoded to read (store, poll)",
                         latency.p99ToDecoder, latency.p99ThroughStore))
        }
        print("load average: at start \(loadAtStart), at end \(loadAtEnd)")
        var result = "RESULT tuners=\(tuners) connected=\(connected) all_connected=\(allConnected ? "yes" : "no") store=\(store)"
        result += String(format: " rss_base_kb=%d rss_kb=%d rss_peak_kb=%d per_tuner_kb=%.2f anon_per_tuner_kb=%.2f cpu_pct=%.1f seconds=%.0f",
                         baseline.rssKB, end.rssKB, peakRSS, perTuner, Double(end.anonKB - baseline.anonKB) / Double(max(connected, 1)),
                         cpu, elapsed)
        if let latency {
            result += String(format: " latency_samples=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f missing=%d p99_to_decoder_ms=%.0f p99_through_store_ms=%.0f",
                             latency.samples, latency.p50, latency.p99, latency.max, latency.missing, latency.p99ToDecoder,
                             latency.p99ThroughStore)
        }
        result += " load_start=\(loadAtStart.split(separator: " ").first ?? "?") load_end=\(loadAtEnd.split(separator: " ").first ?? "?")"
        print(result)
        readerTask?.cancel()
        await readerTask?.value
        await liveReader?.close()
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

/// The 1, 5 and 15 minute load averages, as /proc/loadavg gives them.
func loadAverage() -> String {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "?" }
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}

/// 10,000 tuners need 10,000 sockets here and in the server (which inherits the limit).
func raiseFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

/// Polls the live feed query and times each probe line against the ledger's send time.
final class LiveLatencyReader: Sendable {
    struct Summary {
        let samples: Int
        let p50: Double
        let p99: Double
        let max: Double
        let missing: Int
        /// p99 of the part from the bytes being sent to the server decoding the line (network,
        /// event loop), and of the part from decoding to the line being read (store, poll).
        let p99ToDecoder: Double
        let p99ThroughStore: Double
    }

    /// One probe line's latency and its two parts, in ms.
    private struct Sample {
        let sentAt: Int64
        let total: Double
        let toDecoder: Double
        let throughStore: Double
    }

    private let store: any CaptionStore
    private let pollMilliseconds: Int
    private let cursor: Mutex<LiveCursor>
    /// Lines read while measuring; nil before `startMeasuring`.
    private let samples = Mutex<[Sample]?>(nil)

    init(store: any CaptionStore, pollMilliseconds: Int) async throws {
        self.store = store
        self.pollMilliseconds = max(1, pollMilliseconds)
        self.cursor = Mutex(try await store.liveCursorNow())
    }

    func run(ledger: ProbeLedger) async {
        while !Task.isCancelled {
            let after = cursor.withLock { $0 }
            guard let page = try? await store.liveLines(after: after, tunerID: nil, limit: 5000) else {
                try? await Task.sleep(for: .milliseconds(pollMilliseconds))
                continue
            }
            let seenAt = ContinuousClock.now
            let seenAtWall = wallClockMilliseconds()
            var latencies: [Sample] = []
            for line in page.lines {
                guard let id = LatencyProbe.id(in: line.text), let sent = ledger.take(id: id) else { continue }
                let waited = (seenAt - sent.instant).components
                latencies.append(Sample(sentAt: sent.wallMilliseconds, total: Double(waited.seconds) * 1000 + Double(waited.attoseconds) / 1e15,
                                        toDecoder: Double(line.capturedAt - sent.wallMilliseconds),
                                        throughStore: Double(seenAtWall - line.capturedAt)))
            }
            cursor.withLock { $0 = page.next }
            if !latencies.isEmpty { samples.withLock { $0?.append(contentsOf: latencies) } }
            if !page.hasMore { try? await Task.sleep(for: .milliseconds(pollMilliseconds)) }
        }
    }

    /// Forgets probe lines sent so far (the ramp) and starts collecting.
    func startMeasuring(ledger: ProbeLedger) {
        ledger.reset()
        samples.withLock { $0 = [] }
    }

    func finish(ledger: ProbeLedger, sentBefore deadline: ContinuousClock.Instant, samplesPath: String?) -> Summary {
        let taken = samples.withLock { $0 } ?? []
        if let samplesPath {
            let text = taken.map { "\($0.sentAt) \($0.total) \($0.toDecoder) \($0.throughStore)\n" }.joined()
            FileManager.default.createFile(atPath: samplesPath, contents: Data(("sent_ms total_ms to_decoder_ms through_store_ms\n" + text).utf8))
        }
        func percentile(_ p: Double, _ part: (Sample) -> Double) -> Double {
            let values = taken.map(part).sorted()
            guard !values.isEmpty else { return .nan }
            return values[max(0, min(values.count - 1, Int((p * Double(values.count)).rounded(.up)) - 1))]
        }
        return Summary(samples: taken.count, p50: percentile(0.5, \.total), p99: percentile(0.99, \.total),
                       max: percentile(1, \.total), missing: ledger.outstanding(sentBefore: deadline),
                       p99ToDecoder: percentile(0.99, \.toDecoder), p99ThroughStore: percentile(0.99, \.throughStore))
    }

    func close() async { await store.close() }
}
