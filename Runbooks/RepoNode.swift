// Guide: "Configuring repository servers" — NFS client, the three NFS mounts (rw), ccr with
// cc_rw, the ccr service started, enabled and answering tuners on 3030.
import LeanFoundation
import StepKit

public enum RepoNodeRunbook {
    public static let name = "repo-node"
    public static let tunerPort = 3030
    /// A working repository server: it accepts tuners and beats its heartbeat into the database
    /// (the service step's check, and a rolling upgrade's health gate before the node goes back
    /// into the load balancer).
    public static let health = ServiceCheck.all([.tcpPort(tunerPort), ShipCCR.heartbeat("serve")])

    public static func make(_ d: Deployment) throws -> Runbook {
        var steps: [any Step] = NFSClient.steps()
        steps += NFSClient.mounts(server: d.nfsServer,
                                  web: "rw,noac,noacl,nocto,nodiratime",
                                  logs: "rw,noac,noacl,nocto,nodiratime",
                                  archive: "rw,async,noacl,nocto,nodiratime")
        steps += ShipCCR.steps(d)
        steps += [
            ShipCCR.config("""
                # ccr serve (written by ccrun): tuners on \(tunerPort), recordings on the NFS volume
                [server]
                listen = 0.0.0.0
                port = \(tunerPort)

                """ + tunerPasswordLine(d) + proxyProtocolLine(d) + """

                [archive]
                dir = \(Paths.archive)

                """ + ShipCCR.databaseSection(d, user: d.readWriteUser, password: d.readWritePassword),
                description: "write /etc/ccr/ccr.conf (tuner password, database host, cc_rw and its password; archive /srv/archive; 0600)"),
            serviceDefinition("ccr", files: try d.files("ccr")),
            restartWhenChanged("ccr", files: [Paths.config, Paths.ccrBinary]),
            ServiceRunning("ccr", answers: health, waitSeconds: 30, logFile: Paths.serviceLog("ccr"),
                           description: "ccr started, answering on port \(tunerPort) and beating its heartbeat in the database (the guide's service ccr start)"),
            ServiceEnabled("ccr", description: "ccr enabled at boot (the guide's chkconfig ccr on)"),
        ]
        return Runbook(name, steps: steps)
    }

    /// The load balancers whose connections start with a PROXY header (their `send-proxy-v2`):
    /// without it, every tuner behind the balancer would share its address, and one abuser's
    /// lockout or spent budget would refuse them all.
    static func proxyProtocolLine(_ d: Deployment) -> SecretText {
        guard !d.loadBalancers.isEmpty else { return "" }
        return SecretText("proxy_protocol_from = \(d.loadBalancers.joined(separator: ","))\n")
    }

    /// The tuners' password in [server]: tuners send it with `ccextractor -tcppassword`. Without
    /// one, anybody who reaches port 3030 can stream into the archive and the database.
    static func tunerPasswordLine(_ d: Deployment) -> SecretText {
        guard let password = d.tunerPassword else { return "" }
        return "password = \(password)\n"
    }
}
