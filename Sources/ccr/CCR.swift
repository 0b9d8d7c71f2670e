import ArgumentParser

/// `ccr`: the CC Repository server. Receives captions from CCExtractor tuners, decodes them,
/// archives them and serves them on the web.
@main
struct CCR: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ccr",
        abstract: "The CC Repository server: tuners in, captions archived, searchable and live.",
        subcommands: [DecodeCommand.self, ServeCommand.self, SchemaCommand.self, WatchdogCommand.self, WebCommand.self, BenchTunersCommand.self]
    )
}
