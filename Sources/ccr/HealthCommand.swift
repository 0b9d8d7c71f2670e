import ArgumentParser
import LeanFoundation
import Store
import TunerServer

/// `ccr health serve|watchdog`: is this host's service working, as the database sees it?
///
/// A process can run and still do nothing useful: a watchdog that cannot reach the database
/// loops on "will retry", a ccr whose database went away spools. Each beats a heartbeat into
/// the database while it works (`ccr serve` its node row, the watchdog a row of
/// `service_heartbeats`); this command reads the newest one for this host, with the database's
/// own clock, and exits 0 when it is recent. ccrun's service steps run it after a start and in
/// every audit, so a deployment reports a service that runs without working.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Exit 0 when this host's ccr serve or ccr watchdog has beaten a heartbeat into the database recently.",
        discussion: """
        Reads the database of --config (the service's own INI file) with its account, read-only. \
        Exit status: 0 recent heartbeat; 1 none, or too old (the reason on stderr); 2 the database \
        could not be read. With SQLite and run as root, it reads as the database file's owner, so \
        it never leaves files that the service cannot open.
        """
    )

    @Argument(help: "The service: serve or watchdog.")
    var service: String

    @Option(help: "The service's INI configuration file, e.g. /etc/ccr/ccr.conf.")
    var config: String?

    @Option(help: "SQLite database file (instead of --config).")
    var database: String?

    @Option(help: "Seconds within which the newest heartbeat must lie.")
    var within: Double = 30

    func validate() throws {
        guard HeartbeatService(rawValue: service) != nil else {
            throw ValidationError("unknown service '\(service)': expected \(HeartbeatService.allCases.map(\.rawValue).joined(separator: " or "))")
        }
        guard within > 0 else { throw ValidationError("--within must be positive") }
        guard config == nil || database == nil else { throw ValidationError("use --config or --database, not both") }
    }

    func run() async throws {
        do {
            try await check()
        } catch let failure as HealthFailure {
            FileHandle.standardError.write(Data("\(failure)\n".utf8))
            throw ExitCode(failure.exitCode)
        }
    }

    func check() async throws {
        let service = HeartbeatService(rawValue: service)!
        var hostname = ServerConfiguration.hostName()
        var storeConfiguration = StoreConfiguration.sqlite(path: database ?? "ccr.sqlite")
        if let config {
            let settings = try ServerConfiguration.load(path: config, environment: currentEnvironment())
            guard let store = settings.store else {
                print("\(config): [database] driver = none: no heartbeat to check")
                return
            }
            storeConfiguration = store
            hostname = settings.nodeName
        }
        if case .sqlite(let path) = storeConfiguration {
            try Self.readAsOwner(of: path)
        }
        var options = StoreOptions(spoolDirectory: nil, readOnly: true)
        options.reads = ReadLimits(readers: 1)
        let age: Double?
        do {
            let store = try await openStore(storeConfiguration, options: options)
            do {
                age = try await store.heartbeatAge(service, hostname: hostname)
            } catch {
                await store.close()
                throw error
            }
            await store.close()
        } catch {
            throw HealthFailure.unreadable("\(error)")
        }
        let name = "ccr \(service.rawValue) on \(hostname)"
        guard let age else { throw HealthFailure.stale("\(name) has never beaten a heartbeat into the database") }
        guard age <= within else {
            throw HealthFailure.stale("\(name): its last heartbeat is \(Self.seconds(age)) s old (more than \(Self.seconds(within)) s)")
        }
        print("\(name): heartbeat \(Self.seconds(max(0, age))) s ago")
    }

    static func seconds(_ value: Double) -> String { String(format: "%.1f", value) }

    /// The service owns its SQLite file, and opening it (even read-only, in WAL mode) may create
    /// the `-shm` file: created by root, it would keep the service from opening its database.
    /// A missing file is reported, never created.
    static func readAsOwner(of path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw HealthFailure.stale("no database file at \(path): ccr has not written a heartbeat yet")
        }
        guard getuid() == 0, info.st_uid != 0 else { return }
        guard setgid(info.st_gid) == 0, setuid(info.st_uid) == 0 else {
            throw HealthFailure.unreadable("cannot read \(path) as its owner (uid \(info.st_uid)): \(String(cString: strerror(errno)))")
        }
    }
}

/// Why `ccr health` failed; the exit status tells a missing heartbeat (1) from an unreadable
/// database (2).
enum HealthFailure: Error, CustomStringConvertible {
    case stale(String)
    case unreadable(String)

    var description: String {
        switch self {
        case .stale(let why): why
        case .unreadable(let why): "cannot read the heartbeat: \(why)"
        }
    }
    var exitCode: Int32 {
        switch self {
        case .stale: 1
        case .unreadable: 2
        }
    }
}
