import ArgumentParser

/// `ccrun`: the CC Repository deployment guide as code.
///
/// Each subcommand lives in its own file; this root only lists them.
@main
struct CCRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ccrun",
        abstract: "Deploy the CC Repository: typed, idempotent steps over SSH and the AWS API.",
        subcommands: [LabCommand.self, SampleCommand.self, ResumeCommand.self, RollbackCommand.self, UnlockCommand.self, AWSCommand.self,
                      DatabaseCommand.self, NFSMasterCommand.self, RepoNodeCommand.self, WebNodeCommand.self, DeployAllCommand.self]
    )
}
