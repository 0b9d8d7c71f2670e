// "Download repository application source, compile and install it" — replaced by: ccr is built
// once on the deploying machine (release, static Swift runtime) and uploaded, checksummed.
import Foundation
import StepKit

public enum ShipCCR {
    /// The one shared library the release ccr loads beyond glibc (scripts/check-binaries): the C++
    /// runtime, which the static Swift runtime uses. SQLite, the MariaDB client, OpenSSL and zlib are
    /// linked in. apt and dnf depend on libstdc++ themselves, so this step normally finds it there.
    public static let runtimePackagesApt = ["libstdc++6"]
    public static let runtimePackagesRPM = ["libstdc++"]

    /// The C++ runtime, the ccr user, /etc/ccr, and the binary at /usr/local/bin/ccr.
    public static func steps(_ d: Deployment) -> [any Step] {
        [
            ByFact.packages(apt: runtimePackagesApt, rpm: runtimePackagesRPM, "install the C++ runtime ccr loads (libstdc++)"),
            ccrUser(),
            Directory(Paths.configDirectory, mode: "755", description: "create \(Paths.configDirectory) for ccr's configuration"),
            Upload(d.ccrBinary, to: Paths.ccrBinary, mode: "755",
                   description: "install ccr at \(Paths.ccrBinary) (uploaded only when its SHA-256 differs)"),
        ]
    }

    /// The configuration file a ccr service reads: 0600, owned by the ccr user (it holds a password).
    public static func config(_ content: SecretText, description: String) -> any Step {
        File(Paths.config, content: content, mode: "600", owner: "ccr", group: "ccr", description: description)
    }

    /// The [database] section pointing at the deployment's MySQL/MariaDB as `user`.
    public static func databaseSection(_ d: Deployment, user: String, password: Secret) -> SecretText {
        """
        [database]
        driver = mysql
        host = \(d.admin.host)
        port = \(d.admin.port)
        name = \(d.databaseName)
        user = \(user)
        password = \(password)

        """
    }

    /// "The service works", beyond "it runs": a recent heartbeat of `service` (serve or
    /// watchdog) in the deployment's database, read back by `ccr health` with the service's own
    /// configuration. A watchdog that cannot reach the database keeps running (it retries), and
    /// only this says that it does nothing.
    public static func heartbeat(_ service: String) -> ServiceCheck {
        .command("\(Paths.ccrBinary) health \(service) --config \(Paths.config)")
    }
}
