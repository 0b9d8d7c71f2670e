import Foundation
import SupportKit

/// Runs ccrun and the peer tools of bench/peers/ against lab hosts, the way bench/run does.
///
/// Secrets stay in files: the inventories name the cc_rw password file, never its value.
struct PeerTools {
    struct Result {
        var status: Int32
        var output: String
    }

    /// One host's `PLAY RECAP` counters.
    struct Recap: Equatable {
        var ok: Int, changed: Int, unreachable: Int, failed: Int
    }

    struct AnsibleResult {
        var status: Int32
        var output: String
        var recap: [String: Recap]
    }

    struct PyinfraResult {
        var status: Int32
        var output: String
        /// Operations reported as changing (dry run: Change + Conditional Change; run: Success + Error).
        var changes: Int
        /// Operation rows in the table (so a run that planned nothing is not mistaken for a no-op).
        var operations: Int
    }

    enum PeerError: Error, CustomStringConvertible {
        case missing(String)
        case failed(String)
        var description: String {
            switch self {
            case let .missing(what): "not found: \(what)"
            case let .failed(what): what
            }
        }
    }

    static let venv = ProcessInfo.processInfo.environment["CCRUN_PEERS_VENV"] ?? "/opt/ccrun-peers"
    static var venvAvailable: Bool { FileManager.default.isExecutableFile(atPath: venv + "/bin/ansible-playbook") }
    static var shouldRun: Bool { venvAvailable || Fixtures.isCI }

    /// The package root (bench/peers and packaging/ live there).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    let ccrunPath: String
    let ccrBinary: String
    let inventoryPath: String
    let inventory: [String: Any]
    let hosts: [String: [String: Any]]
    let work: URL

    static func load() throws -> PeerTools {
        guard venvAvailable else { throw PeerError.missing("\(venv)/bin/ansible-playbook (run scripts/setup, or set CCRUN_PEERS_VENV)") }
        let path = LabEnvironment.inventoryPath
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("peertests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        return PeerTools(ccrunPath: try ccrun(), ccrBinary: try shipBinary(), inventoryPath: path, inventory: json,
                         hosts: json["hosts"] as? [String: [String: Any]] ?? [:], work: work)
    }

    /// `$CCRUN_BINARY`, else the ccrun that `swift test` built beside this test bundle.
    static func ccrun() throws -> String {
        if let p = ProcessInfo.processInfo.environment["CCRUN_BINARY"], !p.isEmpty { return p }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("ccrun").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        throw PeerError.missing("the ccrun executable beside the tests (swift test builds it; or set CCRUN_BINARY)")
    }

    /// The ccr all three tools ship: one file, so their checksums agree. Must run on the hosts
    /// (Swift runtime linked in): `$CCR_SHIP_BINARY` (scripts/test sets it) or .build-ship's.
    static func shipBinary() throws -> String {
        if let p = ProcessInfo.processInfo.environment["CCR_SHIP_BINARY"], !p.isEmpty { return p }
        let built = packageRoot.appendingPathComponent(".build-ship/release/ccr").path
        if FileManager.default.isExecutableFile(atPath: built) { return built }
        throw PeerError.missing("a shippable ccr: set CCR_SHIP_BINARY (scripts/test builds it with scripts/build-ship in .build-ship)")
    }

    /// Hosts with the lb role, in name order (as ccrun's `Inventory.hosts(withRole:)`).
    func lbHosts() -> [String] {
        hosts.filter { ($0.value["roles"] as? [String])?.contains("lb") == true }.keys.sorted()
    }

    func address(_ host: String) throws -> String {
        guard let a = hosts[host]?["address"] as? String else { throw PeerError.missing("host \(host) in \(inventoryPath)") }
        return a
    }

    func string(_ host: String, _ key: String) throws -> String {
        guard let v = hosts[host]?[key] as? String else { throw PeerError.missing("\(key) of \(host) in \(inventoryPath)") }
        return v
    }

    // MARK: - Running things

    @discardableResult
    static func run(_ path: String, _ args: [String], environment: [String: String]? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        if let environment { p.environment = environment }
        p.standardInput = FileHandle.nullDevice
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("peertests-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let handle = try FileHandle(forWritingTo: out)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        p.waitUntilExit()
        try handle.close()
        return Result(status: p.terminationStatus, output: String(decoding: (try? Data(contentsOf: out)) ?? Data(), as: UTF8.self))
    }

    /// ccrun with the lab inventory, the shared ccr and a private state directory.
    func ccrun(_ args: [String]) throws -> Result {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "CCR_BINARY")
        let extra = ["--inventory", inventoryPath, "--ccr-binary", ccrBinary, "--state-dir", work.appendingPathComponent("state").path]
        return try Self.run(ccrunPath, args + extra, environment: env)
    }

    func ssh(_ host: String, _ script: String) throws -> Result {
        let r = try Self.run("/usr/bin/ssh", ["-i", try string(host, "identityFile"), "-o", "UserKnownHostsFile=\(try string(host, "knownHosts"))",
                                              "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "root@\(try address(host))", script])
        guard r.status == 0 else { throw PeerError.failed("ssh \(host) exited \(r.status): \(r.output.suffix(2000))") }
        return r
    }

    /// Bare hosts again: `ccrun lab reset-host` when this ccrun has it, else the same explicit
    /// cleanup bench/run uses (what the repo-node runbook and the peers put on a host, undone).
    func reset(_ names: [String]) throws {
        let help = try Self.run(ccrunPath, ["lab", "--help"])
        if help.output.contains("reset-host") {
            let r = try Self.run(ccrunPath, ["lab", "reset-host"] + names)
            guard r.status == 0 else { throw PeerError.failed("ccrun lab reset-host exited \(r.status): \(r.output.suffix(2000))") }
            return
        }
        for n in names {
            _ = try ssh(n, """
                service ccr stop >/dev/null 2>&1; update-rc.d -f ccr remove >/dev/null 2>&1
                rm -f /etc/init.d/ccr /usr/local/bin/ccr /run/ccr.pid; rm -rf /etc/ccr /var/lib/ccrun /var/lib/ccr
                for m in /srv/archive /srv/logs /srv/web; do umount "$m" 2>/dev/null; done
                sed -i -E '\\#^[^ ]+ /srv/(web|logs|archive) #d' /etc/fstab
                userdel ccr 2>/dev/null; groupdel ccr 2>/dev/null; service rpcbind stop >/dev/null 2>&1
                DEBIAN_FRONTEND=noninteractive apt-get purge -y -q --autoremove nfs-common rpcbind libmariadb3 libcurl4 >/dev/null 2>&1
                true
                """)
        }
    }

    /// Ansible's managed-node requirements (Python 3 with its standard library, python3-apt for the
    /// apt module); the lab's hosts have only python3-minimal.
    func installAnsibleRequirements(_ host: String) throws {
        _ = try ssh(host, """
            set -e
            ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -q >/dev/null
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 python3-apt >/dev/null
            """)
    }

    // MARK: - Peer inventories

    /// The values the inventory templates in bench/peers/ take (secrets as paths only).
    func templateValues(_ hosts: [String], ansible: Bool) throws -> [String: String] {
        guard let first = hosts.first else { throw PeerError.missing("hosts for the inventory") }
        let db = inventory["database"] as? [String: Any] ?? [:]
        guard let dbHost = db["host"] as? String, let adminFile = db["adminPasswordFile"] as? String else {
            throw PeerError.missing("database host and adminPasswordFile in \(inventoryPath)")
        }
        let nfs = (inventory["nfsServer"] as? String) ?? "nfs-master"
        let list = ansible ? try hosts.map { "\($0) ansible_host=\(try address($0))" }.joined(separator: "\n")
                           : try hosts.map { "\"\(try address($0))\"" }.joined(separator: ", ")
        return [
            "hosts": list,
            "identity_file": try string(first, "identityFile"),
            "known_hosts": try string(first, "knownHosts"),
            "nfs_server": try address(nfs),
            "db_host": dbHost,
            "db_port": String(db["port"] as? Int ?? 3306),
            "db_name": "cc",
            "ccr_binary": ccrBinary,
            "ccr_init_script": Self.packageRoot.appendingPathComponent("packaging/init.d/ccr").path,
            "ccr_rw_password_file": URL(fileURLWithPath: adminFile).deletingLastPathComponent().appendingPathComponent("cc_rw-password").path,
            "ccr_tuner_password_file": URL(fileURLWithPath: adminFile).deletingLastPathComponent().appendingPathComponent("tuner-password").path,
            // As ccrun's repo-node runbook: the inventory's lb hosts, in name order.
            "ccr_proxy_from": try lbHosts().map(address).joined(separator: ","),
        ]
    }

    /// Python string.Template substitution ($name, $$), as bench/run renders the same files.
    static func render(_ template: String, _ values: [String: String]) -> String {
        var out = "", rest = Substring(template)
        while let dollar = rest.firstIndex(of: "$") {
            out += rest[..<dollar]
            rest = rest[rest.index(after: dollar)...]
            if rest.first == "$" { out += "$"; rest = rest.dropFirst(); continue }
            let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
            out += values[String(name)] ?? "$" + name
            rest = rest.dropFirst(name.count)
        }
        return out + rest
    }

    func renderInventory(_ template: String, _ hosts: [String], ansible: Bool, as name: String) throws -> String {
        let text = try String(contentsOf: Self.packageRoot.appendingPathComponent("bench/peers/\(template)"), encoding: .utf8)
        let path = work.appendingPathComponent(name).path
        try Self.render(text, try templateValues(hosts, ansible: ansible)).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: - The peers

    func ansible(_ hosts: [String], check: Bool) throws -> AnsibleResult {
        let inv = try renderInventory("ansible/inventory.ini.template", hosts, ansible: true, as: "ansible-\(UUID().uuidString).ini")
        var env = ProcessInfo.processInfo.environment
        env["ANSIBLE_CONFIG"] = Self.packageRoot.appendingPathComponent("bench/peers/ansible/ansible.cfg").path
        env["ANSIBLE_NOCOLOR"] = "1"
        env["ANSIBLE_LOCAL_TEMP"] = work.appendingPathComponent("ansible-tmp").path
        let playbook = Self.packageRoot.appendingPathComponent("bench/peers/ansible/repo-node.yml").path
        let r = try Self.run(Self.venv + "/bin/ansible-playbook", ["-i", inv, playbook] + (check ? ["--check", "--diff"] : []), environment: env)
        return AnsibleResult(status: r.status, output: r.output, recap: Self.parseRecap(r.output))
    }

    static func parseRecap(_ output: String) -> [String: Recap] {
        var out: [String: Recap] = [:]
        guard let start = output.range(of: "PLAY RECAP") else { return out }
        for line in output[start.upperBound...].split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " })
            guard fields.count > 2, fields[1] == ":" else { continue }
            var counts: [String: Int] = [:]
            for f in fields.dropFirst(2) {
                let kv = f.split(separator: "=")
                if kv.count == 2, let n = Int(kv[1]) { counts[String(kv[0])] = n }
            }
            out[String(fields[0])] = Recap(ok: counts["ok"] ?? 0, changed: counts["changed"] ?? 0,
                                           unreachable: counts["unreachable"] ?? 0, failed: counts["failed"] ?? 0)
        }
        return out
    }

    func pyinfra(_ hosts: [String], dry: Bool) throws -> PyinfraResult {
        let inv = try renderInventory("pyinfra/inventory.py.template", hosts, ansible: false, as: "pyinfra_\(UUID().uuidString.replacingOccurrences(of: "-", with: "")).py")
        let deploy = Self.packageRoot.appendingPathComponent("bench/peers/pyinfra/deploy.py").path
        var env = ProcessInfo.processInfo.environment
        env["PYINFRA_PROGRESS"] = "off"
        let r = try Self.run(Self.venv + "/bin/pyinfra", (dry ? ["--dry"] : ["-y"]) + [inv, deploy], environment: env)
        let (changes, operations) = Self.parsePyinfraTable(r.output, dry: dry)
        return PyinfraResult(status: r.status, output: r.output, changes: changes, operations: operations)
    }

    /// pyinfra's summary table: after `--> Detected changes:` (dry run; Change and Conditional
    /// Change columns) or `--> Results:` (run; Success and Error columns). Columns are separated
    /// by runs of three or more spaces; a count is a number, "-" is none.
    static func parsePyinfraTable(_ output: String, dry: Bool) -> (changes: Int, operations: Int) {
        let header = dry ? "--> Detected changes:" : "--> Results:"
        guard let start = output.range(of: header) else { return (-1, 0) }
        var changes = 0, operations = 0
        for line in output[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).dropFirst(2) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("-->") || trimmed.hasPrefix("Detected changes may") { break }
            let cols = trimmed.components(separatedBy: "   ").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard cols.count >= 3, cols[0] != "Grand total" else { continue }
            operations += 1
            let counted = dry ? Array(cols.dropFirst().prefix(2)) : Array(cols.dropFirst(2).prefix(2))
            for c in counted { changes += Int(c.split(separator: " ").first ?? "") ?? 0 }
        }
        return (changes, operations)
    }
}
