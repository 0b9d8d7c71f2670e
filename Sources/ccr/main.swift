import ArgumentParser

/// `ccr`: the CC Repository server. Receives captions from CCExtractor tuners, decodes them,
/// archives them and serves them on the web.
struct CCR: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ccr",
        abstract: "The CC Repository server: tuners in, captions archived, searchable and live.",
        subcommands: [DecodeCommand.self, ServeCommand.self, SchemaCommand.self, WatchdogCommand.self, HealthCommand.self, WebCommand.self]
    )

    /// What `@main` would do (parse, run, exit with the error's code), callable from top-level
    /// code: ArgumentParser's own `main()` resolves to its synchronous variant there.
    static func parseAndRun() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

// Top-level code instead of `@main`, so that this runs on the process's first thread before the
// concurrency runtime and Dispatch start theirs (which inherit its signal mask).
TerminationSignals.unblockInheritedMask()
await CCR.parseAndRun()
