import CMariaDB
import LeanFoundation
import StepKit

/// MariaDB Connector/C. Each call opens its own connection (steps are few; no shared handle
/// crosses threads). The password reaches only `mysql_real_connect`. Error messages are
/// scrubbed of the script's secrets, since a server may echo a failing statement.
public struct MariaDBExecutor: SQLExecutor {
    public init() {}

    public func execute(_ sql: SecretText, on endpoint: DatabaseEndpoint) throws -> [[String?]] {
        let scrub = SecretScrubber(sql.secrets + [endpoint.password])
        guard let h = mysql_init(nil) else { throw SQLError.connect(endpoint.description, "mysql_init failed") }
        defer { mysql_close(h) }
        var timeout: UInt32 = 10
        mysql_options(h, MYSQL_OPT_CONNECT_TIMEOUT, &timeout)
        mysql_options(h, MYSQL_OPT_READ_TIMEOUT, &timeout)
        let flags = UInt(CLIENT_MULTI_STATEMENTS) | UInt(CLIENT_MULTI_RESULTS)
        guard mysql_real_connect(h, endpoint.host, endpoint.user, endpoint.password.reveal(), endpoint.database,
                                 UInt32(endpoint.port), nil, flags) != nil else {
            let message = scrub.scrub(String(cString: mysql_error(h)))
            // 1045 ER_ACCESS_DENIED_ERROR, 1698 ER_ACCESS_DENIED_NO_PASSWORD_ERROR.
            if [1045, 1698].contains(mysql_errno(h)) { throw SQLError.accessDenied(endpoint.description, message) }
            throw SQLError.connect(endpoint.description, message)
        }
        let text = sql.revealed()
        let rc = text.withCString { mysql_real_query(h, $0, UInt(strlen($0))) }
        if rc != 0 { throw SQLError.statement(endpoint.description, scrub.scrub(String(cString: mysql_error(h)))) }
        var rows: [[String?]] = []
        while true {
            if let res = mysql_store_result(h) {
                rows = []
                let n = Int(mysql_num_fields(res))
                while let row = mysql_fetch_row(res) {
                    rows.append((0..<n).map { i in row[i].map { String(cString: $0) } })
                }
                mysql_free_result(res)
            } else if mysql_field_count(h) != 0 {
                throw SQLError.statement(endpoint.description, scrub.scrub(String(cString: mysql_error(h))))
            }
            let next = mysql_next_result(h)
            if next == -1 { break }
            if next > 0 { throw SQLError.statement(endpoint.description, scrub.scrub(String(cString: mysql_error(h)))) }
        }
        return rows
    }
}
