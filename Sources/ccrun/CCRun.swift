import ArgumentParser

/// `ccrun`: the CC Repository deployment guide as code.
///
/// Each subcommand lives in its own file; this root only lists them.
@main
struct CCRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ccrun",
        abstract: "Deploy the CC Repository: typed, idempotent steps over SSH and the AWS API.",
        version: BuildInfo.versionLine,
        subcommands: [LabCommand.self, SampleCommand.self, ResumeCommand.self, RollbackCommand.self, UnlockCommand.self, AWSCommand.self,
                      DatabaseCommand.self, NFSMasterCommand.self, RepoNodeCommand.self, WebNodeCommand.self, LoadBalancerCommand.self, DeployAllCommand.self]
    )
}

/// What `ccrun --version` prints.
enum BuildInfo {
    /// The release. scripts/package names the .deb after it (it reads it from `ccrun --version`),
    /// so this line is the only place it is written.
    static let version = "0.1.0"

    /// "ccrun 0.1.0 (commit abc1234)": the commit is the one scripts/package recorded beside the
    /// package's files (no git at run time, and the binaries need no rebuild to be packaged).
    static var versionLine: String {
        let commit = InstalledFiles.current().packagedCommit.map { "commit \($0)" } ?? "commit unknown: not a packaged build"
        return "ccrun \(version) (\(commit))"
    }
}
