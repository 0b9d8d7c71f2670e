import LeanFoundation
import Runbooks
import StepKit

/// A runbook that uses every standard step type, for trying ccrun (and its tests) on a lab
/// host. The CC Repository's own runbooks live in the Runbooks module.
enum SampleRunbook {
    static let name = "sample"

    struct Parameters {
        /// Block device to format and mount (the lab's `vars.dataDevice`); nil leaves those steps out.
        var dataDevice: String?
        /// Database for the SQL step; nil leaves it out.
        var database: DatabaseEndpoint?
        /// Written into the config file and used as the SQL user's password.
        var secret: Secret
        /// The binary to ship, from a file as a real runbook's (see `RunbookCatalog.sampleBinary`).
        var binary: Payload
        var forceMkfs = false
    }

    static let root = "/srv/ccr-sample"

    /// 5 MB of deterministic bytes standing in for a binary (same bytes every run).
    static func blob() -> Data {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var bytes = [UInt8](repeating: 0, count: 5 << 20)
        for i in bytes.indices {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
        }
        return Data(bytes)
    }

    static func make(_ p: Parameters) -> Runbook {
        var steps: [any Step] = [
            PackageInstalled(["rpcbind", "tree"], description: "Install rpcbind and tree"),
            ServiceRunning("rpcbind", answers: .tcpPort(111), description: "rpcbind running and answering on port 111"),
            ServiceEnabled("rpcbind", description: "rpcbind started at boot"),
            Directory(root, mode: "755", description: "Create \(root)"),
            Directory(root + "/data", mode: "755", description: "Create \(root)/data"),
            Directory("/etc/ccr-sample", mode: "750", description: "Create /etc/ccr-sample"),
            File("/etc/ccr-sample/ccr.conf", content: """
                # ccr sample configuration (written by ccrun)
                listen = 0.0.0.0:3000
                archive = \(root)/data
                db.user = ccr_sample
                db.password = \(p.secret)

                """, mode: "600", description: "Write /etc/ccr-sample/ccr.conf (0600, holds the database password)"),
            LineInFile("/etc/exports", line: "\(root)/data 198.51.100.0/24(rw,sync,no_subtree_check)", key: .exportPath,
                       description: "Export \(root)/data to the lab network in /etc/exports"),
        ]
        if let dev = p.dataDevice {
            steps += [
                FileSystem("ext4", on: dev, force: p.forceMkfs, description: "Make an ext4 file system on \(dev)"),
                Mount(dev, at: root + "/data", type: "ext4", options: "defaults,nofail",
                      description: "Mount \(dev) on \(root)/data (and add it to /etc/fstab)"),
            ]
        }
        steps += [
            Upload(p.binary, to: root + "/ccr.bin", mode: "755", description: "Upload the 5 MB ccr.bin to \(root)"),
            GuardedCommand(id: "init-data", "Initialise the data directory",
                           command: "date -u > \(root)/data/.initialised", creates: root + "/data/.initialised",
                           undo: "rm -f \(root)/data/.initialised"),
        ]
        if let db = p.database {
            steps.append(SQLScript(id: "ccr-sample-db", "Create the ccr_sample database and user", on: db,
                script: """
                    CREATE DATABASE IF NOT EXISTS ccr_sample;
                    CREATE USER IF NOT EXISTS 'ccr_sample'@'%' IDENTIFIED BY '\(p.secret)';
                    GRANT ALL PRIVILEGES ON ccr_sample.* TO 'ccr_sample'@'%';
                    """,
                unless: "SELECT 1 FROM mysql.user u JOIN information_schema.schemata s ON s.schema_name = 'ccr_sample' WHERE u.User = 'ccr_sample'",
                undo: "DROP USER IF EXISTS 'ccr_sample'@'%'; DROP DATABASE IF EXISTS ccr_sample;"))
        }
        return Runbook(name, steps: steps)
    }
}

/// Finds runbooks by the name recorded in the journal, so `resume` can rebuild them.
enum RunbookCatalog {
    struct Context {
        var hostName: String
        var inventory: DeploymentInventory?
        var secretFile: String?
        var stateDirectory: URL
        var forceMkfs = false
    }

    static func make(_ name: String, _ c: Context) throws -> Runbook {
        switch name {
        case SampleRunbook.name:
            let vars = c.inventory?.hosts[c.hostName]?.vars ?? [:]
            return SampleRunbook.make(.init(dataDevice: vars["dataDevice"], database: try c.inventory?.database?.adminEndpoint(),
                                            secret: try sampleSecret(c), binary: try sampleBinary(c), forceMkfs: c.forceMkfs))
        default:
            throw StepRefusal("unknown runbook \(name) (known: \(SampleRunbook.name))")
        }
    }

    /// The sample's binary: written once into the state directory, then shipped from that file
    /// like any runbook's binary (mapped, its digest remembered by `LocalDigestCache`).
    static func sampleBinary(_ c: Context) throws -> Payload {
        let path = c.stateDirectory.appendingPathComponent("sample-ccr.bin").path
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        if size != 5 << 20 {
            try FileManager.default.createDirectory(at: c.stateDirectory, withIntermediateDirectories: true)
            try SampleRunbook.blob().write(to: URL(fileURLWithPath: path), options: .atomic)
        }
        return try Payload.mapping(file: path)
    }

    /// The sample's secret: from --secret-file, else generated once into the state directory (0600).
    static func sampleSecret(_ c: Context) throws -> Secret {
        let path = c.secretFile ?? c.stateDirectory.appendingPathComponent("sample-secret").path
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(), withIntermediateDirectories: true)
            let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
            var rng = SystemRandomNumberGenerator()
            let value = String((0..<24).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
            FileManager.default.createFile(atPath: path, contents: Data((value + "\n").utf8), attributes: [.posixPermissions: 0o600])
        }
        return try Secret(label: "sample-secret", contentsOfFile: path)
    }
}
