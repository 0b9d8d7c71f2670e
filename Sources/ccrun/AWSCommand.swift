import ArgumentParser
import CloudAPI
import LeanFoundation
import StepKit

/// `ccrun aws plan|apply|images|destroy`: the AWS half of the deployment guide (docs/aws.md).
struct AWSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aws",
        abstract: "Security groups, RDS, instances, volume, images, load balancers and autoscaling through the AWS API.",
        discussion: """
        Order: `ccrun aws apply`, then the host runbooks on the new instances, then `ccrun aws images`; `ccrun deploy` chains all three. `ccrun aws plan` exits 0 when nothing would change, 2 when something would, 1 on error.

        Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else the inventory's aws.credentialsFile, else ~/.aws/credentials and ~/.aws/config (AWS_PROFILE). Endpoint: AWS_ENDPOINT_URL, else aws.endpoint. See docs/aws.md.
        """,
        subcommands: [Plan.self, Apply.self, Images.self, Rollback.self, Destroy.self]
    )

    struct Options: ParsableArguments {
        @Option(help: "Inventory file with an \"aws\" object $CCRUN_INVENTORY sets the default.")
        var inventory: String = ProcessInfo.processInfo.environment["CCRUN_INVENTORY"] ?? "/var/lib/ccrun-lab/inventory.json"
        @Flag(help: "Print the report as JSON.")
        var json = false
        @Flag(help: "Print progress (waits, retries) to stderr.")
        var verbose = false
    }

    /// Loads the inventory, resolves credentials and builds the runner.
    static func runner(_ o: Options) throws -> DeploymentRunner {
        try makeRunner(inventory: o.inventory, journal: LocalJournal(directory: LocalJournal.defaultDirectory()), verbose: o.verbose)
    }

    /// The runner for an inventory file; `ccrun deploy` passes its own journal directory
    /// (`--state-dir`) so the aws phase and the host runbooks keep their journals together.
    static func makeRunner(inventory path: String, journal: LocalJournal, verbose: Bool) throws -> DeploymentRunner {
        let inv = try CloudInventory.load(path)
        let blueprint = try Blueprint.make(inv)
        let connection = try AWSConnection.resolve(settings: inv.aws)
        let outputs = inv.aws.outputsFile ?? journal.directory.appendingPathComponent("aws-outputs.json").path
        return DeploymentRunner(deployment: Deployment(blueprint: blueprint), client: AWSQueryClient(connection: connection),
                                journal: journal, outputsPath: outputs,
                                observer: TestHooks.observer,
                                log: { line in if verbose { FileHandle.standardError.write(Data("aws: \(line)\n".utf8)) } })
    }

    static func emit(_ report: RunReport, json: Bool) throws -> Never {
        if json { print(try report.json()) } else { print(report.awsText()) }
        throw ExitCode(report.exitCode)
    }

    /// Runs `body` and turns setup errors (inventory, credentials) into exit 1 with a message.
    static func run(_ o: Options, _ body: (DeploymentRunner) async throws -> RunReport) async throws {
        let report: RunReport
        do {
            report = try await body(try runner(o))
        } catch let e as ExitCode { throw e } catch {
            FileHandle.standardError.write(Data("aws: error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        try emit(report, json: o.json)
    }

    struct Plan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "plan",
            abstract: "Show what apply/images would change (exit 0 nothing, 2 changes pending, 1 error).")
        @OptionGroup var options: Options
        @Option(help: "base (apply), images (ccrun aws images) or all.")
        var phase: String = "all"

        func run() async throws {
            let phases: Set<Phase> = phase == "all" ? Set(Phase.allCases) : Set([Phase(rawValue: phase)].compactMap { $0 })
            guard !phases.isEmpty else { throw ValidationError("--phase must be base, images or all") }
            try await AWSCommand.run(options) { await $0.plan(phases: phases) }
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "apply",
            abstract: "Create or repair security groups, RDS, instances and the NFS volume (resumes a killed run).")
        @OptionGroup var options: Options
        func run() async throws { try await AWSCommand.run(options) { await $0.apply(phases: [.base], command: "apply") } }
    }

    struct Images: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "images",
            abstract: "After the host runbooks: images, termination protection, load balancers, launch configurations, autoscaling groups.")
        @OptionGroup var options: Options
        func run() async throws { try await AWSCommand.run(options) { await $0.apply(phases: [.images], command: "images") } }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rollback",
            abstract: "Undo the last apply or images run: delete what it created, put back the rules it changed, in reverse order.")
        @OptionGroup var options: Options
        func run() async throws { try await AWSCommand.run(options) { await $0.rollback() } }
    }

    struct Destroy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "destroy", abstract: "Delete everything ccrun aws made, in reverse dependency order.")
        @OptionGroup var options: Options
        func run() async throws { try await AWSCommand.run(options) { await $0.destroy() } }
    }
}
