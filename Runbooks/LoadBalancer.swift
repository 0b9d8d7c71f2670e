// Guide: "Creating Load Balancers" — the repository servers' load balancer (TCP 3030, for the
// tuners) and the web servers' one (HTTP 80), as HAProxy on one host: the ELBs' stand-in in the
// lab, and the on-premises deployment without AWS. Servers are the inventory's hosts with roles
// repo-node and web-node; HAProxy's runtime API drains one of them before it is upgraded.
import LeanFoundation
import StepKit

/// One server behind the load balancer: its inventory name (HAProxy's server name, which the
/// runtime API takes: `set server repo-nodes/NAME state drain`) and address.
public struct BalancedServer: Sendable, Hashable {
    public var name: String
    public var address: String
    public init(name: String, address: String) { self.name = name; self.address = address }
}

public enum LoadBalancerRunbook {
    public static let name = "lb"
    public static let configPath = "/etc/haproxy/haproxy.cfg"
    /// HAProxy's runtime API (admin level): `echo "set server repo-nodes/repo-node state drain" | socat stdio UNIX:...`.
    public static let adminSocket = "/run/haproxy/admin.sock"
    public static let tunerPort = RepoNodeRunbook.tunerPort
    public static let webPort = 80
    /// The backends' names in haproxy.cfg, as the runtime API addresses them.
    public static let tunerBackend = "repo-nodes"
    public static let webBackend = "web-nodes"

    /// haproxy.cfg for these servers.
    ///
    /// Timeouts, and why:
    /// - Tuners stay connected for days and a `-in=bin` tuner never reads: HAProxy's TCP
    ///   inactivity timeouts (`client`, `server`, and `tunnel`, which counts silence in both
    ///   directions) are 3 minutes, longer than ccr's own `idle_timeout` (120 s), so a silent tuner
    ///   is closed by ccr with a logged reason, never cut by the load balancer. `balance leastconn`:
    ///   connections are long-lived, so round robin would pile them on whichever node came back
    ///   last; the least loaded node takes the next tuner.
    /// - The web's live feed (server-sent events) sends a comment every 15 s: 45 s of silence from
    ///   a web node means it is gone (as Apache's `timeout=45` on the feed), and `ccr web` ends a
    ///   feed after its `live_max_seconds` anyway (the browser reconnects).
    /// - Health: a tuner node is healthy when it accepts TCP on 3030, a web node when `GET /`
    ///   answers 200 through Apache (both every 2 s; down after 2 failures, up after 2 successes).
    /// - A node that died is marked down only after its checks fail (up to 4 s): meanwhile a
    ///   connection it refuses is retried on another node (`option redispatch`), so a tuner that
    ///   reconnects at once, or a visitor's request, does not land on the dead node again.
    /// - Tuner connections start with a PROXY v2 header (`send-proxy-v2`, also on the health
    ///   checks) naming the tuner's address: ccr serve, told the balancer's address by the
    ///   repo-node runbook (`proxy_protocol_from`), applies its per-address limits to each tuner,
    ///   not to the balancer, and logs and stores the tuner's address.
    public static func haproxyConfig(repoNodes: [BalancedServer], webNodes: [BalancedServer]) -> String {
        func servers(_ list: [BalancedServer], port: Int, options: String = "") -> String {
            list.map { "    server \($0.name) \($0.address):\(port)\(options) check inter 2s fall 2 rise 2\n" }.joined()
        }
        return """
            # CC Repository load balancer (written by ccrun): the guide's two load balancers as HAProxy.
            global
                chroot /var/lib/haproxy
                stats socket \(adminSocket) mode 600 level admin
                stats timeout 30s
                user haproxy
                group haproxy
                daemon

            defaults
                timeout connect 5s
                retries 2
                option redispatch

            # Tuners (ccextractor -sendto LB:\(tunerPort)): TCP, to the repository servers.
            frontend tuners
                mode tcp
                bind :\(tunerPort)
                timeout client 3m
                default_backend \(tunerBackend)

            backend \(tunerBackend)
                mode tcp
                balance leastconn
                option tcpka
                timeout server 3m
                timeout tunnel 3m
            \(servers(repoNodes, port: tunerPort, options: " send-proxy-v2"))
            # The web site: HTTP, to the web servers' Apache.
            frontend web
                mode http
                bind :\(webPort)
                timeout client 45s
                timeout http-request 10s
                timeout http-keep-alive 10s
                default_backend \(webBackend)

            backend \(webBackend)
                mode http
                balance roundrobin
                option httpchk
                http-check send meth GET uri /
                http-check expect status 200
                timeout server 45s
            \(servers(webNodes, port: webPort))
            """
    }

    public static func make(_ d: Deployment) throws -> Runbook {
        for (role, list) in [("repo-node", d.repoNodes), ("web-node", d.webNodes)] where list.isEmpty {
            throw StepRefusal("the inventory has no host with role \(role): the load balancer would have no server to send to (add one, e.g. \"roles\": [\"\(role)\"])")
        }
        for server in d.repoNodes + d.webNodes where server.name.contains(where: { !($0.isLetter || $0.isNumber || "-_.:".contains($0)) }) {
            throw StepRefusal("inventory host \"\(server.name)\" cannot name an HAProxy server (letters, digits, - _ . : only)")
        }
        let config = haproxyConfig(repoNodes: d.repoNodes, webNodes: d.webNodes)
        let listeners = ServiceCheck.all([.tcpPort(tunerPort), .tcpPort(webPort)])
        return Runbook(name, steps: [
            // python3: the rolling upgrade drains servers through HAProxy's admin socket with it (HAProxyRuntime).
            PackageInstalled(["haproxy", "python3"], description: "install HAProxy, and python3 for its runtime API (apt or dnf, as probed)"),
            // Quiet when valid; when not, checked again for its words, without the version notices
            // that would fill the failure report's lines before the [ALERT]s.
            File(configPath, content: SecretText(config), validate: "haproxy -c -q -f %s || { haproxy -c -f %s 2>&1 | grep -v NOTICE; false; }",
                 description: "write \(configPath): tuners on \(tunerPort) to \(d.repoNodes.map(\.name).joined(separator: ", ")), the web on \(webPort) to \(d.webNodes.map(\.name).joined(separator: ", ")) (checked with haproxy -c before it replaces the old one)"),
            // A reload keeps established connections (tuners) on the old process until they end.
            restartWhenChanged("haproxy", files: [configPath], reload: true),
            ServiceRunning("haproxy", answers: listeners, description: "HAProxy started, answering on \(tunerPort) and \(webPort)"),
            ServiceEnabled("haproxy", description: "HAProxy enabled at boot"),
        ])
    }
}
