import LeanFoundation

/// How "the service answers" is checked: not by an init script's exit status (which can be 0
/// while nothing serves) but by what the service does.
public enum ServiceCheck: Sendable, Hashable {
    /// Something accepts TCP connections on this port on the host.
    case tcpPort(Int, host: String = "127.0.0.1")
    /// The pid in this file is alive.
    case pidFile(String)
    /// The service's main process is alive: systemd's `MainPID` of `unit` where systemd is PID 1,
    /// else (or when systemd knows none) the pid in `pidFile`, which the sysv script writes.
    /// WHY: a systemd unit of a foreground daemon writes no pid file, so `.pidFile` alone would
    /// report a running service as down on systemd hosts, and every run would restart it.
    case mainProcess(unit: String, pidFile: String)
    /// A process with this name (as in `ps -o comm`, at most 15 characters) runs.
    case process(String)
    /// This read-only command exits 0.
    case command(String)
    /// Every one of these holds (a port that answers and a heartbeat that is recent: a server
    /// can listen while its database is gone).
    case all([ServiceCheck])

    /// The check as a POSIX sh script exiting 0 when it holds (a rollout's health gate runs it too).
    public var script: String {
        switch self {
        case let .tcpPort(port, host):
            // A socket listening on the port, bound to the wildcard or to `host`, is what makes the
            // kernel accept a connection there. Read from the kernel's tables by one `grep` rather
            // than by connecting (bash's /dev/tcp needs bash, and `timeout` around it, to never
            // hang on a full backlog: two programs started per check, every audit). Measured on a
            // lab host: a shell `read` loop over /proc costs ~2 ms per line, a shell pattern over
            // the whole table ~8 ms, this `grep` ~2.5 ms.
            let locals = Self.listenAddresses(port: port, host: host).joined(separator: "|")
            return "LC_ALL=C grep -qE \(Shell.quote("^ *[0-9]+: (\(locals)) [0-9A-F]+:[0-9A-F]+ 0A ")) /proc/net/tcp /proc/net/tcp6"        case let .pidFile(f):
            return "ccrun_pid=; [ -r \(Shell.quote(f)) ] && read -r ccrun_pid < \(Shell.quote(f)) && [ -n \"$ccrun_pid\" ] && kill -0 \"$ccrun_pid\""
        case let .mainProcess(unit, f):
            let u = Shell.quote(unit + ".service"), q = Shell.quote(f)
            return "ccrun_pid=; if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then"
                + " ccrun_pid=$(systemctl show -p MainPID --value \(u) 2>/dev/null); [ \"$ccrun_pid\" != 0 ] || ccrun_pid=; fi;"
                + " [ -n \"$ccrun_pid\" ] || { [ -r \(q) ] && read -r ccrun_pid < \(q); };"
                + " [ -n \"$ccrun_pid\" ] && kill -0 \"$ccrun_pid\""
        case let .process(name):
            // Shell builtins only: the kernel's name of each process, as `ps -o comm` shows it.
            let n = Shell.quote(String(name.prefix(15)))
            return "for ccrun_p in /proc/[0-9]*/comm; do ccrun_c=; read -r ccrun_c < \"$ccrun_p\" 2>/dev/null; [ \"$ccrun_c\" = \(n) ] && exit 0; done; exit 1"
        case let .command(c):
            return c
        case let .all(checks):
            return checks.map { "( \($0.script) )" }.joined(separator: " && ")
        }
    }

    /// The local addresses (`ADDR:PORT` in hex, as /proc/net/tcp{,6} print them) of a socket
    /// `host` can reach on `port`: the wildcards and `host` itself (an IPv4 address is printed as
    /// the host-order 32-bit word).
    static func listenAddresses(port: Int, host: String) -> [String] {
        var addresses = ["00000000", String(repeating: "0", count: 32)]
        let octets = host.split(separator: ".").compactMap { UInt8($0) }
        if octets.count == 4 { addresses.append(octets.reversed().map { String(format: "%02X", $0) }.joined()) }
        if host == "127.0.0.1" || host == "::1" { addresses.append(String(repeating: "0", count: 24) + "01000000") }
        return addresses.map { "\($0):" + String(format: "%04X", port) }
    }

    /// Whether the check starts a command of the service's own (`ccr health`): its probe then
    /// runs in the background, beside the rest of the batch (`FactQuery.Isolation.background`).
    var runsACommand: Bool {
        switch self {
        case .command: true
        case let .all(checks): checks.contains { $0.runsACommand }
        case .tcpPort, .pidFile, .mainProcess, .process: false
        }
    }

    /// The check in a fact key: written out, because `"\(check)"` of an enum goes through
    /// reflection and the runtime's protocol-conformance scan (about 0.7 ms of every run).
    var key: String {
        switch self {
        case let .tcpPort(p, h): "tcp:\(h):\(p)"
        case let .pidFile(f): "pid-file:\(f)"
        case let .mainProcess(u, f): "main-process:\(u):\(f)"
        case let .process(n): "process:\(n)"
        case let .command(c): "command:\(c)"
        case let .all(checks): "all(" + checks.map(\.key).joined(separator: ", ") + ")"
        }
    }

    public var summary: String {
        switch self {
        case let .tcpPort(p, h): "port \(p) on \(h) answers"
        case let .pidFile(f): "pid in \(f) is alive"
        case let .mainProcess(u, f): "the main process of \(u) (systemd's MainPID, else the pid in \(f)) is alive"
        case let .process(n): "a process \(n) runs"
        case let .command(c): "`\(c)` succeeds"
        case let .all(checks): checks.map(\.summary).joined(separator: " and ")
        }
    }
}

/// Which tool manages services on the host, chosen from probed facts.
public enum ServiceTool: String, Codable, Sendable {
    case systemctl, updateRcd = "update-rc.d", chkconfig

    static func choose(_ system: SystemFacts) throws -> ServiceTool {
        if system.initSystem == .systemd, system.tools.contains("systemctl") { return .systemctl }
        if system.tools.contains("update-rc.d") { return .updateRcd }
        if system.tools.contains("chkconfig") { return .chkconfig }
        throw StepRefusal("no service manager found (systemctl, update-rc.d or chkconfig)")
    }

    func start(_ n: String) -> String { self == .systemctl ? "systemctl start \(Shell.quote(n))" : "service \(Shell.quote(n)) start" }
    func stop(_ n: String) -> String { self == .systemctl ? "systemctl stop \(Shell.quote(n))" : "service \(Shell.quote(n)) stop" }
    func restart(_ n: String) -> String { self == .systemctl ? "systemctl restart \(Shell.quote(n))" : "service \(Shell.quote(n)) restart" }
    func enable(_ n: String) -> String {
        let q = Shell.quote(n)
        switch self {
        case .systemctl: return "systemctl enable \(q)"
        case .updateRcd: return "update-rc.d \(q) defaults >/dev/null && update-rc.d \(q) enable"
        case .chkconfig: return "chkconfig --add \(q) && chkconfig \(q) on"
        }
    }
    /// Back to disabled. `hadLinks` false: the links did not exist before, so remove them entirely.
    func disable(_ n: String, hadLinks: Bool) -> String {
        let q = Shell.quote(n)
        switch self {
        case .systemctl: return "systemctl disable \(q)"
        case .updateRcd: return hadLinks ? "update-rc.d \(q) disable" : "update-rc.d -f \(q) remove"
        case .chkconfig: return hadLinks ? "chkconfig \(q) off" : "chkconfig \(q) off && chkconfig --del \(q)"
        }
    }
}

/// What the host says about a service.
public struct ServiceState: Sendable, Hashable {
    public var sysvScript = false
    public var systemdLoad: String?
    public var systemdActive: String?
    public var systemdEnabled: String?
    public var sysvStatus: Int32?
    public var rcStartLinks: [String] = []
    public var rcAnyLinks: [String] = []
    public var chkconfig: String?
    public var answers: Bool?
    /// What a failed check said on stderr (`ccr health`: how old the heartbeat is), at most
    /// three lines: the reason beside "is false".
    public var checkSays: [String] = []
    /// The last lines the service logged (its log file, or its journal on systemd), read only
    /// when it is not running: the reason a dry-run shows next to the drift.
    public var logLines: [String] = []
    public init() {}

    public var exists: Bool { sysvScript || systemdLoad == "loaded" }
    public var statusSaysRunning: Bool { systemdActive == "active" || sysvStatus == 0 }
}

/// Where a service's last log lines are read from when it is not running: the unit's journal
/// on a systemd host, else the log file its sysv script writes (when the step names one).
public struct ServiceLog: Sendable, Hashable {
    public let unit: String
    public let file: String?
    public init(unit: String, file: String?) { self.unit = unit; self.file = file }

    /// How many lines a report shows: enough for a program's last error and what led to it, few
    /// enough to fit the five lines a failed command's report keeps with its heading.
    static let lines = 4

    /// The source as a report names it on a host with this tool.
    func source(_ tool: ServiceTool) -> String {
        tool == .systemctl ? "journalctl -u \(unit).service" : file ?? "no log file known for \(unit)"
    }

    /// Records where the log stands before a start (`ccrun_t0` for the journal, `ccrun_o`, the
    /// file's size), so `tailScript(sinceStart: true)` shows only what the start wrote.
    var markScript: String {
        "ccrun_t0=$(date +%s); ccrun_o=0" + (file.map { "; ccrun_o=$(wc -c < \(Shell.quote($0)) 2>/dev/null) || ccrun_o=0" } ?? "")
    }

    /// Prints the last `lines` lines: the journal's on a systemd host, else the log file's.
    /// `sinceStart`: only those written after `markScript` ran (older lines are from earlier
    /// starts); a log file that shrank meanwhile (rotated) is shown from its start.
    ///
    /// From the journal, the service's own lines come first (`_SYSTEMD_UNIT`): a unit that
    /// systemd restarts after each failure fills `journalctl -u` with "Main process exited",
    /// "Scheduled restart job" and "Started", which would push the service's reason out of the
    /// last lines. systemd's own lines are shown only when the service wrote none (an
    /// executable that could not be started).
    func tailScript(sinceStart: Bool) -> String {
        let u = Shell.quote(unit + ".service")
        let options = "-n \(Self.lines) --no-pager -o cat\(sinceStart ? " --since \"@$ccrun_t0\"" : "") 2>/dev/null"
        var s = "if [ -d /run/systemd/system ] && command -v journalctl >/dev/null 2>&1; then"
            + " ccrun_j=$(journalctl _SYSTEMD_UNIT=\(u) \(options));"
            + " if [ -n \"$ccrun_j\" ]; then printf '%s\\n' \"$ccrun_j\"; else journalctl -u \(u) \(options); fi"
        if let file {
            let f = Shell.quote(file)
            if sinceStart {
                s += """

                    elif [ -r \(f) ]; then ccrun_n=$(wc -c < \(f))
                    if [ "$ccrun_n" -gt "$ccrun_o" ]; then tail -c +$((ccrun_o + 1)) \(f) | tail -n \(Self.lines)
                    elif [ "$ccrun_n" -lt "$ccrun_o" ]; then tail -n \(Self.lines) \(f)
                    else echo \(Shell.quote("(nothing new in \(file))")); fi
                    """
            } else {
                s += "\nelif [ -r \(f) ]; then tail -n \(Self.lines) \(f)"
            }
        }
        return s + "\nfi"
    }
}

/// Two probes per service, so that an audit runs no init script it does not need:
/// - `probe` (running): exists, and either the answer check or the status (`systemctl is-active`,
///   `/etc/init.d/NAME status`). With a check, the status is only asked when the service does not
///   answer: it is what tells "start" from "restart" then, and is never needed otherwise. Only a
///   service that is not running has its last log lines read (`log`), for the reason.
/// - `bootProbe` (enabled at boot): exists, systemd's enabled state, rc links, chkconfig.
public enum ServiceProbe {
    static func existsLines(_ q: String, systemd extra: String = "") -> String {
        """
        [ -x /etc/init.d/\(q) ] && echo sysv-script
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        echo "systemd-load $(systemctl show -p LoadState --value \(q).service 2>/dev/null)"\(extra)
        fi
        """
    }

    /// The sysv script's status, silent (an LSB exit status: 0 running, 1 or 3 dead or stopped).
    static func sysvStatus(_ q: String) -> String { "timeout 10 /etc/init.d/\(q) status >/dev/null 2>&1" }

    /// Prints the status and sets `ccrun_up` to 1 when it says running.
    static func statusLines(_ q: String) -> String {
        """
        ccrun_up=0
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        ccrun_a=$(systemctl is-active \(q).service 2>/dev/null); echo "systemd-active $ccrun_a"; [ "$ccrun_a" = active ] && ccrun_up=1
        elif [ -x /etc/init.d/\(q) ]; then
        \(sysvStatus(q)); ccrun_s=$?; echo "sysv-status $ccrun_s"; [ $ccrun_s = 0 ] && ccrun_up=1
        fi
        """
    }

    static func logLines(_ log: ServiceLog) -> String {
        "{\n\(log.tailScript(sinceStart: false))\n} | while IFS= read -r ccrun_l; do echo \"log $ccrun_l\"; done"
    }

    public static func probe(_ name: String, check: ServiceCheck?, log logFile: String? = nil) -> Probe<ServiceState> {
        let q = Shell.quote(name)
        let checkKey = check.map { "|" + $0.key } ?? ""
        let logKey = logFile.map { "|log:\($0)" } ?? ""
        let log = logLines(ServiceLog(unit: name, file: logFile))
        let state: String
        if let check {
            state = """
                if ccrun_says=$( ( \(check.script) ) 2>&1 >/dev/null ); then echo answers-yes; else echo answers-no
                printf '%s\\n' "$ccrun_says" | tail -n 3 | while IFS= read -r ccrun_l; do [ -n "$ccrun_l" ] && echo "check-says $ccrun_l"; done
                \(statusLines(q))
                \(log)
                fi
                """
        } else {
            state = "\(statusLines(q))\n[ $ccrun_up = 1 ] || \(log)"
        }
        return Probe(FactQuery(key: "service:\(name)\(checkKey)\(logKey)", script: """
            \(existsLines(q))
            \(state)
            true
            """, isolation: check?.runsACommand == true ? .background : .inline)) { out in parse(out) }
    }

    public static func bootProbe(_ name: String) -> Probe<ServiceState> {
        let q = Shell.quote(name)
        return Probe(FactQuery(key: "service-boot:\(name)", script: """
            \(existsLines(q, systemd: "\necho \"systemd-enabled $(systemctl is-enabled \(q).service 2>/dev/null)\""))
            for l in /etc/rc[2345S].d/S[0-9][0-9]\(q); do [ -e "$l" ] && echo "rc-start $l"; done
            for l in /etc/rc[0-6S].d/[SK][0-9][0-9]\(q); do [ -e "$l" ] && echo "rc-link $l"; done
            command -v chkconfig >/dev/null 2>&1 && chkconfig --list \(q) 2>/dev/null | sed 's/^/chkconfig /'
            true
            """, isolation: .inline)) { out in parse(out) }
    }

    public static func parse(_ out: FactOutput) -> ServiceState {
        var s = ServiceState()
        for line in out.lines {
            let (k, v) = line.firstIndex(of: " ").map { (String(line[..<$0]), String(line[line.index(after: $0)...])) } ?? (String(line), "")
            switch k {
            case "sysv-script": s.sysvScript = true
            case "systemd-load": s.systemdLoad = v
            case "systemd-active": s.systemdActive = v
            case "systemd-enabled": s.systemdEnabled = v
            case "sysv-status": s.sysvStatus = Int32(v)
            case "rc-start": s.rcStartLinks.append(v)
            case "rc-link": s.rcAnyLinks.append(v)
            case "chkconfig": s.chkconfig = v
            case "answers-yes": s.answers = true
            case "answers-no": s.answers = false
            case "check-says": s.checkSays.append(String(v.prefix(300)))
            case "log": s.logLines.append(String(v.prefix(300)))
            default: break
            }
        }
        return s
    }
}

/// A service running, where running means it answers (`check`) when one is given, and keeps
/// running: a service that exits just after its start (a wrong database password, a bad
/// configuration) must fail the run, not be reported as started and found stopped again by
/// every later run.
public struct ServiceRunning: Step {
    public let name: String
    public let check: ServiceCheck?
    /// How long apply waits for the service to answer after starting it.
    public let waitSeconds: Int
    /// How long the service must have stayed up (and answered) after its start for the step to
    /// be done. Most services that cannot work exit within a second of their start (a refused
    /// database login, a port in use); a longer settle time costs every start that long.
    public let settleSeconds: Double
    /// The log file the service's sysv script writes, read for the reason when it is not
    /// running (on systemd hosts the unit's journal is read instead).
    public let logFile: String?
    public let description: String

    public init(_ name: String, answers check: ServiceCheck? = nil, waitSeconds: Int = 15, settleSeconds: Double = 2,
                logFile: String? = nil, description: String? = nil) {
        self.name = name; self.check = check; self.waitSeconds = waitSeconds; self.settleSeconds = settleSeconds
        self.logFile = logFile
        self.description = description ?? "service \(name) running" + (check.map { " (\($0.summary))" } ?? "")
    }

    public var id: String { "running:\(name)" }
    var probe: Probe<ServiceState> { ServiceProbe.probe(name, check: check, log: logFile) }
    var log: ServiceLog { ServiceLog(unit: name, file: logFile) }
    public var facts: [FactQuery] { [SystemProbe.probe.query, probe.query] }
    public var affects: FactScope { .keys([probe.query.key]) }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        let system = try facts[SystemProbe.probe]
        let state = try facts[probe]
        guard state.exists else {
            if context.earlierChangePending { return .dependsOnEarlierChange("service \(name) does not exist yet; an earlier step (e.g. a package install) is expected to create it") }
            throw StepRefusal("service \(name) does not exist on this host (no /etc/init.d/\(name) and no systemd unit)")
        }
        let tool = try ServiceTool.choose(system)
        let running = check != nil ? state.answers == true : state.statusSaysRunning
        if running { return .satisfied }
        let restart = state.statusSaysRunning
        let verb = restart ? "restart" : "start"
        let why = restart ? "status says running but \(check?.summary ?? "it") is false" : "stopped"
        var diff = "service \(name): \(why) -> running\n"
        if !state.checkSays.isEmpty {
            diff += "  the check says:\n" + state.checkSays.map { "  | \($0)\n" }.joined()
        }
        if !state.logLines.isEmpty {
            diff += "  its last log lines (\(log.source(tool))):\n" + state.logLines.map { "  | \($0)\n" }.joined()
        }
        return .change(Change(actions: [.shell(ShellAction("\(restart ? tool.restart(name) : tool.start(name)) (then \(settleSeconds == settleSeconds.rounded() ? String(Int(settleSeconds)) : String(settleSeconds)) s to settle)", script: startScript(tool, restart: restart)))],
                              diff: diff,
                              undo: restart ? [] : [.runScript(summary: "stop \(name)", script: tool.stop(name))]))
    }

    /// Starts the service, then polls every 0.2 s until it answers and has stayed up for the
    /// settle time. Fails, with the log lines it wrote since the start, when it does not answer
    /// within `waitSeconds` or is seen stopped (systemd: not `active`, which includes a unit
    /// waiting to be restarted; sysv with a check: an LSB status of 1 or 3, twice in a row, so
    /// a script whose pid file appears a moment after `start` returns is not taken for dead).
    func startScript(_ tool: ServiceTool, restart: Bool) -> String {
        let q = Shell.quote(name)
        let systemd = tool == .systemctl
        let statusUp = systemd ? "systemctl is-active --quiet \(q)" : ServiceProbe.sysvStatus(q)
        let answers = check.map { "( \($0.script) ) >/dev/null 2>&1" } ?? statusUp
        let gone: String?
        if systemd { gone = "! \(statusUp)" }
        else if check != nil { gone = "{ \(statusUp); ccrun_s=$?; [ $ccrun_s = 1 ] || [ $ccrun_s = 3 ]; }" }
        else { gone = nil }   // the status is the answer: waited for until waitSeconds
        let command = restart ? tool.restart(name) : tool.start(name)
        let settlePolls = max(1, Int((settleSeconds * 5).rounded(.up)))
        let waitPolls = max(settlePolls, waitSeconds * 5)
        var lines = [
            // The heading and the log lines it wrote since the start (on stderr, which a failed
            // command's report shows: heading plus `ServiceLog.lines` lines).
            systemd || logFile != nil
                ? "ccrun_fail() {\necho \"$1; \(log.source(tool)) since the start:\" >&2\n{\n\(log.tailScript(sinceStart: true))\n} >&2\nexit 1\n}"
                : "ccrun_fail() { echo \"$1 (\(log.source(tool)))\" >&2; exit 1; }",
            log.markScript,
            "\(command) || { ccrun_rc=$?; ccrun_fail \"$(echo \(Shell.quote(command))) failed with exit status $ccrun_rc\"; }",
            "ccrun_i=0; ccrun_d=0",
            "while :; do",
            "  if \(answers); then [ $ccrun_i -ge \(settlePolls) ] && break",
            "  elif [ $ccrun_i -ge \(waitPolls) ]; then ccrun_fail \(Shell.quote("\(name) was started but \(check.map { "\($0.summary) is false" } ?? "its status does not say it runs") after \(waitSeconds) s")); fi",
        ]
        if let gone {
            lines.append("  if \(gone); then ccrun_d=$((ccrun_d + 1)); [ $ccrun_d -ge 2 ] && ccrun_fail \"\(name) is not running $((ccrun_i / 5)).$((ccrun_i % 5 * 2)) s after it was started\"; else ccrun_d=0; fi")
        }
        lines += ["  ccrun_i=$((ccrun_i + 1)); sleep 0.2", "done"]
        return lines.joined(separator: "\n")
    }
}

/// A service enabled at boot (systemd, update-rc.d or chkconfig, as probed; sysv scripts on a
/// systemd host go through systemctl, which hands them to the sysv tools).
public struct ServiceEnabled: Step {
    public let name: String
    public let description: String

    public init(_ name: String, description: String? = nil) {
        self.name = name
        self.description = description ?? "service \(name) enabled at boot"
    }

    public var id: String { "enabled:\(name)" }
    var probe: Probe<ServiceState> { ServiceProbe.bootProbe(name) }
    public var facts: [FactQuery] { [SystemProbe.probe.query, probe.query] }
    public var affects: FactScope { .keys([probe.query.key]) }

    static func isEnabled(_ s: ServiceState, tool: ServiceTool) -> Bool {
        switch tool {
        case .systemctl:
            // "static": a unit without [Install] (rpc-statd) cannot be enabled; the units that
            // need it start it, so at boot it is as enabled as it can be.
            if s.systemdEnabled == "enabled" || s.systemdEnabled == "static" { return true }
            // sysv scripts seen through systemd-sysv-generator: the rc links decide.
            return s.systemdEnabled == "generated" && !s.rcStartLinks.isEmpty || (s.systemdEnabled == nil && !s.rcStartLinks.isEmpty)
        case .updateRcd: return !s.rcStartLinks.isEmpty
        case .chkconfig: return s.chkconfig.map { $0.contains("3:on") } ?? false
        }
    }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        let system = try facts[SystemProbe.probe]
        let state = try facts[probe]
        guard state.exists else {
            if context.earlierChangePending { return .dependsOnEarlierChange("service \(name) does not exist yet; an earlier step is expected to create it") }
            throw StepRefusal("service \(name) does not exist on this host")
        }
        let tool = try ServiceTool.choose(system)
        if ServiceEnabled.isEnabled(state, tool: tool) { return .satisfied }
        let hadLinks = tool == .chkconfig ? state.chkconfig != nil : !state.rcAnyLinks.isEmpty
        return .change(Change(actions: [.shell(ShellAction(tool.enable(name), script: tool.enable(name)))],
                              diff: "service \(name): disabled -> enabled at boot\n",
                              undo: [.runScript(summary: "disable \(name) at boot", script: tool.disable(name, hadLinks: hadLinks))]))
    }
}
