import ArgumentParser
import Dispatch
import Foundation
import TunerBench

/// `ccr-bench abuse HOST PORT N SECONDS`: N hostile tuner connections (`AbusiveTuners`) against a
/// running `ccr serve`, beside an honest load (bench/ccr's abused run, issue 16). The last line
/// printed, at the end or on SIGTERM/SIGINT (bench/ccr stops it so), is
/// `ABUSE flood=N names=N trickle=N silent=N garbage=N extreme=N bytes=N`: connections made per
/// attack and bytes sent.
struct AbuseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abuse",
        abstract: "N abusive tuner connections (floods, program names, trickle, silent, garbage, extreme timestamps) for SECONDS."
    )

    @Argument(help: "The server's tuner address.")
    var host: String

    @Argument(help: "The server's tuner port.")
    var port: Int

    @Argument(help: "Connections; connection i plays attack i mod 6 (flood, names, trickle, silent, garbage, extreme).")
    var connections: Int

    @Argument(help: "Seconds to attack (each connection reconnects when the server closes it, until then).")
    var seconds: Double

    @Option(help: "Local address to connect from, so the server's per-address limits tell attackers from honest tuners.")
    var source = "127.0.0.2"

    @Option(name: .customLong("connect-interval-ms"),
            help: "Least milliseconds between one connection's reconnects (0: as fast as this process can; it then spends a core connecting).")
    var connectIntervalMilliseconds = 25

    func validate() throws {
        guard (1...65535).contains(port) else { throw ValidationError("PORT must be 1-65535, not \(port)") }
        guard connections >= 1 else { throw ValidationError("N must be at least 1, not \(connections)") }
        guard seconds > 0, seconds.isFinite else { throw ValidationError("SECONDS must be a positive number, not \(seconds)") }
        guard connectIntervalMilliseconds >= 0 else { throw ValidationError("--connect-interval-ms must be 0 or more, not \(connectIntervalMilliseconds)") }
    }

    func run() async throws {
        raiseFileLimit()
        var options = AbusiveTuners.Options()
        options.host = host
        options.port = port
        options.connections = connections
        options.seconds = seconds
        options.source = source
        options.connectInterval = .milliseconds(connectIntervalMilliseconds)
        let tuners: AbusiveTuners
        do { tuners = try AbusiveTuners(options: options) } catch { throw ValidationError("\(error)") }
        // Stopped early (bench/ccr ends its run with SIGTERM): the summary all the same.
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                print(tuners.tally.summary)
                fflush(nil)
                Foundation.exit(0)
            }
            source.resume()
            sources.append(source)
        }
        await tuners.run()
        print(tuners.tally.summary)
        sources.forEach { $0.cancel() }
    }
}
