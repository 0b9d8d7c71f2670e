import ArgumentParser
import LeanFoundation
import Lab

/// `ccrun lab up|down|status|restart-host|reset-host`: real target hosts for tests, benchmarks and the demo.
struct LabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Bring up, inspect or tear down the lab of target hosts (needs root).",
        subcommands: [Up.self, Down.self, Status.self, RestartHost.self, ResetHost.self]
    )

    /// Options every lab subcommand shares.
    struct InstanceOptions: ParsableArguments {
        @Option(help: "Lab instance: main (198.51.100.0/24) or scratch (a second small lab on 198.51.100.192/26).")
        var instance: String = "main"
    }

    static func printLog(_ line: String) {
        FileHandle.standardError.write(Data("lab: \(line)\n".utf8))
    }

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "up",
            abstract: "Create or repair the lab and write its inventory (idempotent).")
        @OptionGroup var instance: InstanceOptions
        @Option(help: "Number of hosts (db, nfs-master, repo-node, web-node, then host5, host6, ...), not counting --fleet's.")
        var hosts: Int?
        @Option(help: ArgumentHelp("PID 1 of the hosts: sysv (a light shell init running sysv scripts) or systemd (systemd booted by systemd-nspawn, as on Amazon Linux 2023). Default: as the running lab's hosts, else sysv; switching remakes the hosts bare.", valueName: "sysv|systemd"))
        var `init`: String?
        @Flag(inversion: .prefixedNo, help: "Also make the guide's fleet: repo-node-2, web-node-2 and lb (HAProxy) after the other hosts. Default: as the running lab.")
        var fleet: Bool?

        func run() async throws {
            let start = Date()
            var spec = try LabSpec.named(instance.instance, hosts: hosts)
            let existing = try? Lab.existing(name: instance.instance)
            if hosts == nil, let existing { spec.hostCount = existing.spec.hostCount }
            spec.fleet = fleet ?? existing?.spec.fleet ?? false
            if let kind = `init` {
                guard let value = LabHostInit(rawValue: kind) else {
                    throw ValidationError("--init must be one of: \(LabHostInit.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                spec.hostInit = value
            } else if let existing {
                spec.hostInit = existing.spec.hostInit
            }
            let lab = Lab(spec: spec, log: LabCommand.printLog)
            try lab.up()
            print(try lab.status())
            print("inventory: \(spec.inventoryPath)")
            print(String(format: "lab up in %.1f s", Date().timeIntervalSince(start)))
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "down",
            abstract: "Stop and remove the lab (keeps the rootfs and package caches unless --purge).")
        @OptionGroup var instance: InstanceOptions
        @Flag(help: "Also remove the caches (debootstrap root filesystem, downloaded packages), keys and secrets.")
        var purge = false

        func run() async throws {
            let lab = try Lab.existing(name: instance.instance, log: LabCommand.printLog)
            try lab.down(purge: purge)
            let left = try lab.leftovers()
            guard left.isEmpty else {
                throw ValidationError("lab down left things behind:\n" + left.joined(separator: "\n"))
            }
            print("lab \(lab.spec.name) is down")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "Show each host, its address, sshd and services.")
        @OptionGroup var instance: InstanceOptions

        func run() async throws {
            print(try Lab.existing(name: instance.instance).status())
        }
    }

    struct RestartHost: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "restart-host",
            abstract: "Restart one host: kill its PID namespace and start its init again.")
        @OptionGroup var instance: InstanceOptions
        @Argument(help: "Host name as in the inventory, e.g. web-node.")
        var name: String

        func run() async throws {
            try Lab.existing(name: instance.instance, log: LabCommand.printLog).restartHost(name)
            print("\(name) restarted")
        }
    }

    struct ResetHost: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-host",
            abstract: "Make hosts bare again (fresh overlay, blank data volume), keeping address, host key and known_hosts entry.",
            discussion: "Reset an NFS server together with its client hosts: all are stopped before any volume is wiped.")
        @OptionGroup var instance: InstanceOptions
        @Argument(help: "Host names as in the inventory, e.g. host8 host9 host10.")
        var names: [String]

        func run() async throws {
            let start = Date()
            try Lab.existing(name: instance.instance, log: LabCommand.printLog).resetHosts(names)
            print(String(format: "\(names.joined(separator: " ")) reset in %.1f s", Date().timeIntervalSince(start)))
        }
    }
}
