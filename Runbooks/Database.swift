// Guide: "Creating Database" — the cc database, its tables (misc/tables.sql, now
// `ccr schema --dialect mysql`) and the users cc_ro and cc_rw (misc/users.sql), applied with the
// admin account from the deploying machine. Passwords travel only inside the MySQL protocol.
import LeanFoundation
import StepKit

public enum DatabaseRunbook {
    public static let name = "database"

    public static func make(_ d: Deployment) -> Runbook {
        let admin = d.admin
        let db = d.databaseName
        let tables = tableNames(in: d.schemaSQL)
        let tableList = tables.map { "'\($0)'" }.joined(separator: ", ")
        // Tables that all exist are not enough: a newer schema may add a column. The script names
        // its version in schema_version's comment, which information_schema shows even where the
        // table does not exist yet; a database with an older (or no) version gets the script.
        let versionCheck = schemaVersion(in: d.schemaSQL).map { version in
            " AND SUM(table_name = 'schema_version' AND table_comment LIKE '\(versionCommentPrefix)%'"
                + " AND CAST(SUBSTRING(table_comment, \(versionCommentPrefix.count + 1)) AS UNSIGNED) >= \(version)) = 1"
        } ?? ""
        return Runbook(name, steps: [
            SQLScript(id: "database-\(db)", "create the \(db) database", on: admin,
                      script: "CREATE DATABASE IF NOT EXISTS `\(db)` DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;",
                      unless: "SELECT 1 FROM information_schema.schemata WHERE schema_name = '\(db)'",
                      undo: "DROP DATABASE IF EXISTS `\(db)`;"),
            SQLScript(id: "tables-\(db)", "create the tables (mysql ... cc < misc/tables.sql; now `ccr schema --dialect mysql`)", on: admin,
                      script: SecretText("USE `\(db)`;\n" + d.schemaSQL),
                      unless: SecretText("SELECT 1 FROM information_schema.tables WHERE table_schema = '\(db)' AND table_name IN (\(tableList)) HAVING COUNT(*) = \(tables.count)\(versionCheck)"),
                      undo: "SET FOREIGN_KEY_CHECKS = 0; DROP TABLE IF EXISTS \(tables.map { "`\(db)`.`\($0)`" }.joined(separator: ", ")); SET FOREIGN_KEY_CHECKS = 1;",
                      existed: SecretText("SELECT 1 FROM information_schema.tables WHERE table_schema = '\(db)' AND table_name IN (\(tableList))"),
                      existedReason: "some of the tables existed before this run; rollback keeps them all, with their rows"),
            user(d.readOnlyUser, password: d.readOnlyPassword, privileges: ["SELECT"], db: db, admin: admin,
                 description: "create the read-only user \(d.readOnlyUser) (SELECT on \(db).*), for the web servers"),
            user(d.readWriteUser, password: d.readWritePassword, privileges: ["SELECT", "INSERT", "UPDATE", "DELETE"], db: db, admin: admin,
                 description: "create the read-write user \(d.readWriteUser) (SELECT, INSERT, UPDATE, DELETE on \(db).*, no DDL), for ccr"),
        ])
    }

    /// How `ccr schema --dialect mysql` names its version in schema_version's table comment.
    static let versionCommentPrefix = "ccr schema version "

    /// The version a schema script leaves in schema_version's comment (`COMMENT = 'ccr schema
    /// version N'`); nil for a script from before ccr wrote one.
    public static func schemaVersion(in sql: String) -> Int? {
        guard let start = sql.range(of: "COMMENT = '" + versionCommentPrefix)?.upperBound else { return nil }
        return Int(sql[start...].prefix { $0.isNumber })
    }

    /// Table names created by a schema script (`CREATE TABLE IF NOT EXISTS name`).
    public static func tableNames(in sql: String) -> [String] {
        sql.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ")
            guard words.count > 5, words[0].uppercased() == "CREATE", words[1].uppercased() == "TABLE",
                  words[2].uppercased() == "IF", words[3].uppercased() == "NOT", words[4].uppercased() == "EXISTS" else { return nil }
            return String(words[5].prefix { $0 != "(" }).trimmingCharacters(in: CharacterSet(charactersIn: "`"))
        }
    }

    /// A user with exactly these privileges on db.* and this password, in SQL that MySQL 5.7,
    /// 8.0, 8.4 and MariaDB 10.x all run: `CREATE USER IF NOT EXISTS ... IDENTIFIED BY` then
    /// `ALTER USER` (no PASSWORD(), removed in MySQL 8.0.11; no `GRANT ... IDENTIFIED BY`), values
    /// as escaped literals. Satisfied only when the account logs in with this password and sees
    /// exactly these privileges on db, none on other databases and no global ones: a changed
    /// password or a drifted grant is applied again.
    static func user(_ name: String, password: Secret, privileges: [String], db: String, admin: DatabaseEndpoint, description: String) -> SQLScript {
        let account = "\(SQLLiteral.quoted(name))@'%'"
        let literal = SQLLiteral.quoted(password)
        let wanted = privileges.map { $0.uppercased() }.sorted().joined(separator: ",")
        return SQLScript(id: "user-\(name)", description, on: admin,
            script: """
                \(SQLLiteral.standardEscapes)\
                CREATE USER IF NOT EXISTS \(account) IDENTIFIED BY \(literal);
                ALTER USER \(account) IDENTIFIED BY \(literal);
                REVOKE ALL PRIVILEGES, GRANT OPTION FROM \(account);
                GRANT \(privileges.joined(separator: ", ")) ON `\(db)`.* TO \(account);
                """,
            unless: """
                SELECT 1 FROM DUAL WHERE \
                (SELECT GROUP_CONCAT(DISTINCT PRIVILEGE_TYPE ORDER BY PRIVILEGE_TYPE SEPARATOR ',') \
                 FROM information_schema.SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA = \(SQLLiteral.quoted(db))) = '\(wanted)' \
                AND (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA <> \(SQLLiteral.quoted(db))) = 0 \
                AND (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE IS_GRANTABLE = 'YES') = 0 \
                AND (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE PRIVILEGE_TYPE <> 'USAGE') = 0
                """,
            unlessAs: DatabaseEndpoint(host: admin.host, port: admin.port, user: name, password: password),
            undo: "DROP USER IF EXISTS \(account);",
            existed: SecretText("SELECT 1 FROM mysql.user WHERE User = \(SQLLiteral.quoted(name)) AND Host = '%'"),
            existedReason: "the account \(name) existed before this run and was only corrected; its former password is not kept (a MySQL password hash logs in as well as the password), so it stays as this run left it")
    }
}
