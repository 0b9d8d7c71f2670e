import LeanFoundation

/// What `ccrun lab status` shows: per host its address, whether sshd answers and what runs there,
/// plus the lab-wide services. Every "up" is a live check (a port answers), not a remembered state.
public struct LabStatusReport: Sendable, CustomStringConvertible {
    public struct Host: Sendable {
        public var name: String
        public var address: String
        public var running: Bool
        public var sshAnswers: Bool
        /// `S` links in the host's /etc/rc2.d (what its init starts).
        public var enabledServices: [String]
        /// TCP ports listening in the host's network namespace.
        public var listeningPorts: [Int]
    }

    public struct Service: Sendable {
        public var name: String
        public var endpoint: String
        public var up: Bool
    }

    public var lab: String
    public var bridge: String
    public var hosts: [Host]
    public var services: [Service]

    public var description: String {
        var lines = ["lab \(lab): bridge \(bridge)"]
        if hosts.isEmpty { lines.append("  no hosts (run `ccrun lab up`)") }
        let width = max(10, (hosts.map(\.name.count).max() ?? 0) + 2)
        for host in hosts {
            let name = host.name.padding(toLength: width, withPad: " ", startingAt: 0)
            let address = host.address.padding(toLength: 16, withPad: " ", startingAt: 0)
            let state = !host.running ? "down   " : (host.sshAnswers ? "ssh up " : "ssh DOWN")
            let ports = host.listeningPorts.map(String.init).joined(separator: ",")
            lines.append("  \(name)\(address)\(state)  services: \(host.enabledServices.joined(separator: " "))"
                         + (ports.isEmpty ? "" : "  listening: \(ports)"))
        }
        for service in services {
            lines.append("  \(service.name.padding(toLength: 16, withPad: " ", startingAt: 0))\(service.endpoint)  \(service.up ? "up" : "DOWN")")
        }
        return lines.joined(separator: "\n")
    }
}

extension Lab {
    public func status() throws -> LabStatusReport {
        try Self.requireRoot()
        var hosts: [LabStatusReport.Host] = []
        for (index, name) in spec.hostNames.enumerated() {
            let address = spec.address(ofHostAt: index)
            let running = initPID(of: name) != nil
            let rc = "\(spec.mergedPath(name))/etc/rc2.d"
            var services = ((try? FileManager.default.contentsOfDirectory(atPath: rc)) ?? [])
                .filter { $0.hasPrefix("S") }.sorted().map { String($0.dropFirst(3)) }
            if spec.hostInit == .systemd {
                // What `systemctl enable` links for boot (sysv scripts too go through it there).
                let wants = "\(spec.mergedPath(name))/etc/systemd/system/multi-user.target.wants"
                services = ((try? FileManager.default.contentsOfDirectory(atPath: wants)) ?? [])
                    .filter { $0.hasSuffix(".service") }.map { String($0.dropLast(".service".count)) }.sorted()
            }
            var ports: [Int] = []
            if running, let out = try? shell.run("ip", ["netns", "exec", spec.namespace(of: name), "ss", "-Hltn"], check: false) {
                ports = Array(Set(out.stdout.split(separator: "\n").compactMap { line -> Int? in
                    let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                    guard fields.count >= 4, let colon = fields[3].lastIndex(of: ":") else { return nil }
                    return Int(fields[3][fields[3].index(after: colon)...])
                })).sorted()
            }
            hosts.append(.init(name: name, address: address, running: running,
                               sshAnswers: running && Probe.sshAnswers(address), enabledServices: services,
                               listeningPorts: ports))
        }
        let db = spec.address(ofHostAt: 0)
        let services: [LabStatusReport.Service] = [
            .init(name: "apt repository", endpoint: "http://\(spec.bridgeAddress)/",
                  up: Probe.connect(spec.bridgeAddress, 80) != nil),
            .init(name: "mariadb", endpoint: "\(db):\(spec.mariaDBPort) (user \(spec.mariaDBAdminUser))",
                  up: Probe.connect(db, spec.mariaDBPort) != nil),
            .init(name: "moto (AWS)", endpoint: spec.motoEndpoint, up: Probe.connect("127.0.0.1", spec.motoPort) != nil),
        ]
        return LabStatusReport(lab: spec.name, bridge: "\(spec.bridge) \(spec.bridgeAddress)/\(spec.bridgePrefixLength)",
                               hosts: hosts, services: services)
    }
}
