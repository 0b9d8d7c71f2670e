import ArgumentParser
import Lab

/// `ccrun lab up|down|status`: real target hosts for tests, benchmarks and the demo.
struct LabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Bring up, inspect or tear down the lab of target hosts (needs root)."
    )
}
