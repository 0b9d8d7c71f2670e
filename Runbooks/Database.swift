// Guide: "Creating Database" — the cc database, its tables (misc/tables.sql, now
// `ccr schema --dialect mysql`) and the users cc_ro and cc_rw (misc/users.sql), applied with the
// admin account from the deploying machine. Passwords travel only inside the MySQL protocol.
import Foundation
import StepKit

public enum DatabaseRunbook {
    public static let name = "database"

    public static func make(_ d: Deployment) -> Runbook {
        let admin = d.admin
        let db = d.databaseName
        let tables = tableNames(in: d.schemaSQL)
        let tableList = tables.map { "'\($0)'" }.joined(separator: ", ")
        return Runbook(name, steps: [
            SQLScript(id: "database-\(db)", "create the \(db) database", on: admin,
                      script: "CREATE DATABASE IF NOT EXISTS `\(db)` DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;",
                      unless: "SELECT 1 FROM information_schema.schemata WHERE schema_name = '\(db)'",
                      undo: "DROP DATABASE IF EXISTS `\(db)`;"),
            SQLScript(id: "tables-\(db)", "create the tables (mysql ... cc < misc/tables.sql; now `ccr schema --dialect mysql`)", on: admin,
                      script: SecretText("USE `\(db)`;\n" + d.schemaSQL),
                      unless: SecretText("SELECT 1 FROM information_schema.tables WHERE table_schema = '\(db)' AND table_name IN (\(tableList)) HAVING COUNT(*) = \(tables.count)"),
                      undo: "SET FOREIGN_KEY_CHECKS = 0; DROP TABLE IF EXISTS \(tables.map { "`\(db)`.`\($0)`" }.joined(separator: ", ")); SET FOREIGN_KEY_CHECKS = 1;",
                      existed: SecretText("SELECT 1 FROM information_schema.tables WHERE table_schema = '\(db)' AND table_name IN (\(tableList))"),
                      existedReason: "some of the tables existed before this run; rollback keeps them all, with their rows"),
            user(d.readOnlyUser, password: d.readOnlyPassword, privileges: ["SELECT"], db: db, admin: admin,
                 description: "create the read-only user \(d.readOnlyUser) (SELECT on \(db).*), for the web servers"),
            user(d.readWriteUser, password: d.readWritePassword, privileges: ["SELECT", "INSERT", "UPDATE", "DELETE"], db: db, admin: admin,
                 description: "create the read-write user \(d.readWriteUser) (SELECT, INSERT, UPDATE, DELETE on \(db).*, no DDL), for ccr"),
        ])
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

    static let allPrivileges = ["Select", "Insert", "Update", "Delete", "Create", "Drop", "Alter", "Index", "Grant", "References",
                                "Create_tmp_table", "Lock_tables", "Create_view", "Show_view", "Create_routine", "Alter_routine", "Execute", "Event", "Trigger"]

    /// A user with exactly these privileges on db.* and this password. Satisfied only when the
    /// user exists, its password hash matches (MariaDB's PASSWORD()), and the grants match: a
    /// changed password or a drifted grant is applied again.
    static func user(_ name: String, password: Secret, privileges: [String], db: String, admin: DatabaseEndpoint, description: String) -> SQLScript {
        let wanted = Set(privileges.map { $0.capitalized })
        let grantCheck = allPrivileges.map { "d.\($0)_priv = '\(wanted.contains($0) ? "Y" : "N")'" }.joined(separator: " AND ")
        return SQLScript(id: "user-\(name)", description, on: admin,
            script: """
                CREATE USER IF NOT EXISTS '\(name)'@'%' IDENTIFIED BY '\(password)';
                ALTER USER '\(name)'@'%' IDENTIFIED BY '\(password)';
                REVOKE ALL PRIVILEGES, GRANT OPTION FROM '\(name)'@'%';
                GRANT \(privileges.joined(separator: ", ")) ON `\(db)`.* TO '\(name)'@'%';
                """,
            unless: """
                SELECT 1 FROM mysql.user u JOIN mysql.db d ON d.User = u.User AND d.Host = u.Host \
                WHERE u.User = '\(name)' AND u.Host = '%' AND u.authentication_string = PASSWORD('\(password)') \
                AND d.Db = '\(db)' AND \(grantCheck) \
                AND (SELECT COUNT(*) FROM mysql.db x WHERE x.User = '\(name)') = 1
                """,
            undo: "DROP USER IF EXISTS '\(name)'@'%';",
            existed: SecretText("SELECT 1 FROM mysql.user WHERE User = '\(name)' AND Host = '%'"),
            existedReason: "the account \(name) existed before this run and was only corrected; its former password is not kept (a MySQL password hash logs in as well as the password), so it stays as this run left it")
    }
}
