import LeanFoundation
#if canImport(Glibc)
import Glibc
#endif

/// Who holds (or wants) a target's lock.
public struct LockOwner: Sendable, Hashable {
    public var runId: String
    public var controller: String
    public var pid: Int32
    public var controllerBoot: String
    /// When the process started (clock ticks since the controller's boot, /proc/PID/stat): with
    /// the pid, it names one process, so a pid reused by another program is not taken for the
    /// holder. Nil where /proc cannot tell.
    public var pidStart: UInt64?

    public init(runId: String, controller: String, pid: Int32, controllerBoot: String, pidStart: UInt64? = nil) {
        self.runId = runId; self.controller = controller; self.pid = pid; self.controllerBoot = controllerBoot; self.pidStart = pidStart
    }

    /// This process, on this machine.
    public static func current(runId: String) -> LockOwner {
        LockOwner(runId: runId, controller: ProcessInfo.processInfo.hostName, pid: getpid(),
                  controllerBoot: ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines),
                  pidStart: ProcessTable.live.process(getpid())?.start)
    }
}

/// What the controller's /proc says about a process, for judging a lock's holder.
public struct ProcessTable: Sendable {
    public struct Entry: Sendable, Hashable {
        /// Exited but not reaped by its parent yet (a run killed by a script that has not waited
        /// for it), or SIGKILLed and still being torn down by the kernel: dead for every purpose
        /// of the lock, though `kill(pid, 0)` still succeeds for a moment.
        public var exiting: Bool
        public var start: UInt64?
        /// Its command line, arguments separated by spaces.
        public var command: String
        public init(exiting: Bool, start: UInt64?, command: String) { self.exiting = exiting; self.start = start; self.command = command }

        /// Whether the command is a ccrun: its program's file name.
        public var isCCRun: Bool {
            let program = command.split(separator: " ").first.map(String.init) ?? ""
            return URL(fileURLWithPath: program).lastPathComponent == "ccrun"
        }
    }
    public let process: @Sendable (Int32) -> Entry?
    public init(process: @escaping @Sendable (Int32) -> Entry?) { self.process = process }

    /// This machine's /proc.
    public static let live = ProcessTable { pid in
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After "pid (comm) ": state is field 3, starttime field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        let command = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ")
        return Entry(exiting: fields.first == "Z" || fields.first == "X" || killPending(pid), start: fields.count > 19 ? UInt64(fields[19]) : nil, command: command)
    }

    /// Whether SIGKILL is pending for the process (/proc/PID/status `ShdPnd`/`SigPnd`, bit 9).
    static func killPending(_ pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        return status.split(separator: "\n").contains { line in
            guard line.hasPrefix("ShdPnd:") || line.hasPrefix("SigPnd:"),
                  let mask = UInt64(line.split(separator: "\t").last?.trimmingCharacters(in: .whitespaces) ?? "", radix: 16) else { return false }
            return mask & (1 << (UInt64(SIGKILL) - 1)) != 0
        }
    }
}

/// The lock file's content, as read back from a target.
public struct LockInfo: Sendable, Hashable, CustomStringConvertible {
    public var fields: [String: String]
    public var raw: String
    /// The target's boot id when the lock was read.
    public var currentTargetBoot: String

    public var runId: String { fields["run"] ?? "?" }
    public var controller: String { fields["controller"] ?? "?" }
    public var pid: Int32 { Int32(fields["pid"] ?? "") ?? -1 }
    public var pidStart: UInt64? { fields["pidStart"].flatMap { UInt64($0) } }
    public var description: String {
        "ccrun run \(runId) (pid \(pid) on \(controller), since \(fields["started"] ?? "?"))"
    }

    /// What can be known of the lock's holder from this controller.
    public enum Holder: Sendable, Hashable {
        /// Provably gone (the reason, for the report): the lock can be taken over at once.
        case gone(String)
        /// A live ccrun on this controller: `command` is its command line.
        case alive(command: String)
        /// A run from another controller: its process cannot be seen from here.
        case elsewhere
    }

    /// Gone when the target rebooted since the lock was taken, or when the holder ran on this
    /// controller and its boot is over, or its pid is dead, a zombie, or another program (a
    /// different start time, or, for a lock without one, not a ccrun). A holder on another
    /// controller cannot be judged from here and is respected.
    public func holder(for me: LockOwner, processes: ProcessTable = .live) -> Holder {
        if let tb = fields["targetBoot"], !tb.isEmpty, !currentTargetBoot.isEmpty, tb != currentTargetBoot { return .gone("the host rebooted since it was taken") }
        guard fields["controller"] == me.controller else { return .elsewhere }
        if let cb = fields["controllerBoot"], cb != me.controllerBoot { return .gone("this machine rebooted since it was taken") }
        if pid == me.pid && runId == me.runId { return .gone("it was this run's own earlier attempt") }
        guard let p = processes.process(pid) else { return .gone("pid \(pid) on this machine has exited") }
        if p.exiting { return .gone("pid \(pid) on this machine is dead (exiting, or not yet reaped by its parent)") }
        if let start = pidStart, let now = p.start, start != now { return .gone("pid \(pid) on this machine is now another process (`\(p.command)`)") }
        if pidStart == nil && !p.isCCRun { return .gone("pid \(pid) on this machine is now another program (`\(p.command)`)") }
        return .alive(command: p.command)
    }
}

public enum LockError: Error, CustomStringConvertible, Sendable {
    /// Held by a ccrun that is alive on this controller.
    case heldHere(host: String, by: LockInfo, command: String)
    /// Held by a run from another controller.
    case heldElsewhere(host: String, by: LockInfo)
    case lost(host: String)
    /// `ccrun unlock --run`: the lock on the host is not the named run's.
    case notNamed(host: String, wanted: String, by: LockInfo?)

    public var description: String {
        switch self {
        case let .heldHere(host, info, command):
            "\(host) is locked by \(info), and that process is still running on this machine: `\(command)`. Wait for it to finish (or stop it), then run again."
        case let .heldElsewhere(host, info):
            "\(host) is locked by \(info), a run from another machine that ccrun cannot see from here. Check on \(info.controller) whether it is still running (`ps -o pid,args -p \(info.pid)`); only if it is gone, remove its lock with `ccrun unlock \(host) --run \(info.runId)`, then `ccrun resume \(host)`."
        case let .lost(host): "\(host): the lock changed hands while taking it over; try again"
        case let .notNamed(host, wanted, info):
            info.map { "\(host) is locked by \($0), not by run \(wanted): nothing was removed" } ?? "\(host) has no lock: nothing was removed"
        }
    }
}

/// The lock scripts. Creation uses the shell's noclobber (O_EXCL), so two runs cannot both
/// succeed; takeover replaces the lock only if it still holds what was judged stale.
public struct TargetLock: Sendable {
    public let paths: TargetPaths
    public let owner: LockOwner
    public init(paths: TargetPaths, owner: LockOwner) { self.paths = paths; self.owner = owner }

    static let acquired = "CCRUN-LOCK-ACQUIRED", held = "CCRUN-LOCK-HELD", end = "CCRUN-LOCK-END"

    var content: String {
        "run=\(owner.runId)\ncontroller=\(owner.controller)\npid=\(owner.pid)\n" + (owner.pidStart.map { "pidStart=\($0)\n" } ?? "")
            + "controllerBoot=\(owner.controllerBoot)\nstarted=\(JournalRecord.timestamp())\n"
    }

    /// Tries to create the lock; prints `acquired`, or `held` + the lock + the current boot id.
    /// Shell builtins only on the path every run takes (each program started on the host costs
    /// about a millisecond, and this runs before every apply).
    public var acquireScript: String {
        let d = Shell.quote(paths.stateDirectory), l = Shell.quote(paths.lock)
        return """
        umask 077; [ -d \(d) ] || mkdir -p \(d) || exit 1
        tb=; read -r tb < /proc/sys/kernel/random/boot_id 2>/dev/null
        if ( set -C; printf '%stargetBoot=%s\\n' \(Shell.quote(content)) "$tb" > \(l) ) 2>/dev/null; then echo \(Self.acquired)
        else echo \(Self.held); cat \(l); echo "currentTargetBoot=$tb"; echo \(Self.end); fi
        """
    }

    /// Sets `ccrun_locked=1` when the lock on the host is this owner's (its run and pid lines),
    /// so probe fragments that write (digest records) do so only under the lock.
    public var ownedCheckScript: String {
        let l = Shell.quote(paths.lock)
        return """
        ccrun_locked=0
        if [ -r \(l) ]; then ccrun_run=; ccrun_pid=0
        while IFS= read -r ccrun_l; do case $ccrun_l in \(Shell.quote("run=" + owner.runId))) ccrun_run=1;; \(Shell.quote("pid=\(owner.pid)"))) ccrun_pid=1;; esac; done < \(l)
        [ "$ccrun_run" = 1 ] && [ "$ccrun_pid" = 1 ] && ccrun_locked=1
        fi
        """
    }

    /// Replaces a stale lock whose exact content is given on stdin.
    public var takeoverScript: String {
        let l = Shell.quote(paths.lock)
        return """
        umask 077; old=$(cat); cur=$(cat \(l) 2>/dev/null)
        tb=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)
        if [ "$old" = "$cur" ]; then printf '%stargetBoot=%s\\n' \(Shell.quote(content)) "$tb" > \(l).new && mv -f \(l).new \(l) && echo \(Self.acquired); else echo \(Self.held); fi
        """
    }

    /// Takes over the lock `info` describes when its holder is provably gone (see
    /// `LockInfo.holder`); otherwise throws the error that says what to do. Returns the report's
    /// note on whose lock was taken over and why.
    public func takeOver(_ info: LockInfo, on host: any RemoteHost, timeout: Duration, processes: ProcessTable = .live) async throws -> String {
        switch info.holder(for: owner, processes: processes) {
        case let .alive(command): throw LockError.heldHere(host: host.name, by: info, command: command)
        case .elsewhere: throw LockError.heldElsewhere(host: host.name, by: info)
        case let .gone(why):
            let out = try await host.run(takeoverScript, stdin: Data(info.raw.utf8), timeout: timeout)
            guard out.stdoutText.hasPrefix(Self.acquired) else { throw LockError.lost(host: host.name) }
            return "took over the lock of run \(info.runId) (pid \(info.pid) on \(info.controller)): \(why)"
        }
    }

    /// Prints `held` + the lock + the host's boot id, as `acquireScript` does, or `none`.
    public static func showScript(paths: TargetPaths) -> String {
        let l = Shell.quote(paths.lock)
        return """
        if [ -e \(l) ]; then echo \(held); cat \(l); echo "currentTargetBoot=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"; echo \(end)
        else echo none; fi
        """
    }

    /// Removes the lock only when it is run `runId`'s (`ccrun unlock --run`) and prints
    /// `acquired`; else prints what `showScript` prints.
    public static func unlockScript(paths: TargetPaths, runId: String) -> String {
        let l = Shell.quote(paths.lock)
        return """
        ccrun_l=; [ -r \(l) ] && IFS= read -r ccrun_l < \(l)
        if [ "$ccrun_l" = \(Shell.quote("run=" + runId)) ]; then rm -f \(l) && echo \(acquired)
        else
        \(showScript(paths: paths))
        fi
        """
    }

    public var releaseScript: String {
        let l = Shell.quote(paths.lock)
        return "ccrun_l=; [ -r \(l) ] && IFS= read -r ccrun_l < \(l); if [ \"$ccrun_l\" = \(Shell.quote("run=" + owner.runId)) ]; then rm -f \(l); fi"
    }

    /// Parses the acquire output. Returns nil when acquired, else the holder.
    public static func parse(_ output: String) -> (acquired: Bool, info: LockInfo?) {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.first == acquired { return (true, nil) }
        guard lines.first == held else { return (false, nil) }
        var fields: [String: String] = [:]; var raw: [String] = []; var current = ""
        for line in lines.dropFirst() {
            if line == end { break }
            if line.hasPrefix("currentTargetBoot=") { current = String(line.dropFirst(18)); continue }
            raw.append(line)
            if let eq = line.firstIndex(of: "=") { fields[String(line[..<eq])] = String(line[line.index(after: eq)...]) }
        }
        return (false, LockInfo(fields: fields, raw: raw.joined(separator: "\n"), currentTargetBoot: current))
    }
}
