// "Download repository application source, compile and install it" — replaced by: ccr is built
// once on the deploying machine (release, static Swift runtime) and uploaded, checksummed.
import LeanFoundation
import StepKit

public enum ShipCCR {
    /// What ccr needs on the host beyond glibc: the C++ runtime, the one shared library it loads
    /// (scripts/check-binaries; SQLite, the MariaDB client, OpenSSL and zlib are linked in), and
    /// MariaDB Connector/C's login plugins. The static client holds only mysql_native_password;
    /// RDS MySQL 8.4 gives cc_ro and cc_rw caching_sha2_password, which the client loads from the
    /// distribution's plugin folder at login (`MySQLConnection.pluginDirectories`).
    public static let runtimePackagesApt = ["libstdc++6", "libmariadb3"]
    public static let runtimePackagesRPM = ["libstdc++", "mariadb-connector-c"]

    /// The C++ runtime and login plugins, the ccr user, /etc/ccr, and the binary at /usr/local/bin/ccr.
    public static func steps(_ d: Deployment) -> [any Step] {
        [
            ByFact.packages(apt: runtimePackagesApt, rpm: runtimePackagesRPM, "install the C++ runtime ccr loads and the MySQL 8 login plugins (libstdc++, MariaDB Connector/C)"),
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
