// Guide: "Configuring web servers" — NFS client, the three NFS mounts (web and archive
// read-only), `ccr web` with cc_ro in its own 0600 file, Apache in front of it as a reverse proxy.
import LeanFoundation
import StepKit

public enum WebNodeRunbook {
    public static let name = "web-node"
    /// Where `ccr web` listens; only Apache talks to it.
    public static let webListen = "127.0.0.1:8080"
    /// A working web server, as the load balancer's check sees one: `GET /` answers 200 through
    /// Apache (so ccr web behind it answers too). bash's /dev/tcp, bounded by `timeout`: no curl
    /// on a minimal host. A rolling upgrade's health gate before the node goes back into the lb.
    public static let health = ServiceCheck.command(
        "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/80 && printf \"GET / HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n\" >&3 && read -r v c r <&3 && [ \"$c\" = 200 ]'")

    /// The Apache site: no password in it (the guide's SetEnv CC_DB_PASSWORD is gone; `ccr web`
    /// reads cc_ro's password from /etc/ccr/ccr.conf, 0600). The live feed (server-sent events)
    /// is passed through unbuffered.
    ///
    /// Timeouts (issue #16: a live viewer pinned an Apache worker for up to an hour): the feed
    /// sends a comment every 15 s, so a backend silent for 45 s is dead and its viewer's worker
    /// is freed; `ccr web` itself ends every feed response after `[web] live_max_seconds` (the
    /// browser reconnects and resumes). Pooled backend connections are dropped by Apache (ttl 30 s)
    /// before `ccr web`'s idle timeout (60 s) closes them, so no request goes to a closing one.
    public static func apacheSite(errorLog: String) -> String {
        """
        # CC Repository web site (written by ccrun): Apache in front of `ccr web` on \(webListen).
        <VirtualHost *:80>
            ErrorLog \(errorLog)
            ProxyRequests Off
            ProxyPreserveHost On
            # Live captions (server-sent events): flushed as written, never buffered or compressed.
            ProxyPass /live/events http://\(webListen)/live/events flushpackets=on timeout=45 ttl=30
            <Location /live/events>
                SetEnv proxy-sendchunked 1
                SetEnv no-gzip 1
            </Location>
            ProxyPass / http://\(webListen)/ timeout=30 ttl=30
            ProxyPassReverse / http://\(webListen)/
        </VirtualHost>

        """
    }

    public static func make(_ d: Deployment) throws -> Runbook {
        let errorLog = "\(Paths.logs)/apache.log"
        var steps: [any Step] = NFSClient.steps()
        steps += NFSClient.mounts(server: d.nfsServer,
                                  web: "ro,noac,noacl,nocto,nodiratime",
                                  logs: "rw,noac,noacl,nocto,nodiratime",
                                  archive: "ro,noac,noacl,nocto,nodiratime")
        steps += ShipCCR.steps(d)
        steps += [
            ShipCCR.config("""
                # ccr web (written by ccrun): read-only account, behind Apache
                [web]
                listen = \(webListen)
                archive_dir = \(Paths.archive)

                """ + ShipCCR.databaseSection(d, user: d.readOnlyUser, password: d.readOnlyPassword),
                description: "write /etc/ccr/ccr.conf for ccr web (database host, the read-only account and its password; 0600, not Apache's config)"),
            serviceDefinition("ccr-web", files: try d.files("ccr-web")),
            restartWhenChanged("ccr-web", files: [Paths.config, Paths.ccrBinary]),
            ServiceRunning("ccr-web", answers: .tcpPort(8080), waitSeconds: 30, logFile: Paths.serviceLog("ccr-web"),
                           description: "start ccr web (answering on \(webListen))"),
            ServiceEnabled("ccr-web", description: "enable ccr web at boot"),
            // Apache, PHP and the MySQL client of the guide become Apache as a reverse proxy.
            ByFact.packages(apt: ["apache2"], rpm: ["httpd"], "install Apache (httpd or apache2)"),
            ByFact.perDistribution(id: "apache-site", "the Apache site: proxy to ccr web, ErrorLog \(errorLog)",
                apt: File("/etc/apache2/sites-available/ccr.conf", content: SecretText(apacheSite(errorLog: errorLog))),
                rpm: File("/etc/httpd/conf.d/ccr.conf", content: SecretText(apacheSite(errorLog: errorLog)))),
            ByFact.perDistribution(id: "apache-modules", "enable mod_proxy, mod_proxy_http and the site",
                apt: GuardedCommand(id: "a2enmod", "a2enmod proxy proxy_http; a2ensite ccr; a2dissite 000-default",
                    command: "a2enmod -q proxy proxy_http >/dev/null && a2ensite -q ccr >/dev/null && a2dissite -q 000-default >/dev/null",
                    unless: "[ -e /etc/apache2/mods-enabled/proxy_http.load ] && [ -e /etc/apache2/sites-enabled/ccr.conf ] && [ ! -e /etc/apache2/sites-enabled/000-default.conf ]",
                    undo: "a2dissite -q ccr; a2ensite -q 000-default; a2dismod -q -f proxy_http proxy; true"),
                rpm: GuardedCommand(id: "httpd-proxy", "mod_proxy and mod_proxy_http are loaded by httpd's conf.modules.d",
                    command: "grep -rqs proxy_http_module /etc/httpd/conf.modules.d", unless: "grep -rqs proxy_http_module /etc/httpd/conf.modules.d")),
        ]
        steps += [
            ByFact.perDistribution(id: "reload-apache", "reload Apache when its configuration changed",
                apt: restartWhenChanged("apache2", files: ["/etc/apache2/sites-available/ccr.conf", "/etc/apache2/mods-enabled/proxy_http.load"], reload: false),
                rpm: restartWhenChanged("httpd", files: ["/etc/httpd/conf.d/ccr.conf"], reload: false)),
        ]
        steps += ByFact.service(apt: "apache2", rpm: "httpd", answers: .tcpPort(80), "Apache (apache2 or httpd)")
        return Runbook(name, steps: steps)
    }
}
