import ArgumentParser
import Store

/// `ccr schema --dialect mysql|sqlite`: prints the database schema that this ccr needs.
///
/// ccr migrates SQLite itself; for MySQL/MariaDB the database runbook applies this script with
/// the admin account, so that the accounts ccr runs with (cc_rw, cc_ro) need no DDL rights.
struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the database schema (SQL) for MySQL/MariaDB or SQLite.",
        discussion: "The script is idempotent: applying it again changes nothing."
    )

    @Option(help: "SQL dialect: mysql (also for MariaDB) or sqlite.")
    var dialect: String = "mysql"

    func run() throws {
        let name = dialect.lowercased() == "mariadb" ? "mysql" : dialect.lowercased()
        guard let sqlDialect = SQLDialect(rawValue: name) else {
            throw ValidationError("--dialect: expected mysql, mariadb or sqlite, got `\(dialect)`")
        }
        print(Schema.script(for: sqlDialect), terminator: "")
    }
}
