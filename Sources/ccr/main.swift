import ArgumentParser

/// `ccr`: the CC Repository server. Receives captions from CCExtractor tuners, decodes them,
/// archives them and serves them on the web.
struct CCR: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ccr",
        abstract: "The CC Repository server: tuners in, captions archived, searchable and live.",
        subcommands: [DecodeCommand.self, ServeCommand.self, SchemaCommand.self, WatchdogCommand.self, WebCommand.self, BenchTunersCommand.self]
    )
}

// Top-level code instead of `@main`, so that this runs on the process's first thread before the
// concurrency runtime and Dispatch start theirs (which inherit its signal mask).
TerminationSignals.unblockInheritedMask()
await CCR.main()
