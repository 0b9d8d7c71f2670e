import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who holds (or wants) a target's lock.
public struct LockOwner: Sendable, Hashable {
    public var runId: String
    public var controller: String
    public var pid: Int32
    public var controllerBoot: String

    public init(runId: String, controller: String, pid: Int32, controllerBoot: String) {
        self.runId = runId; self.controller = controller; self.pid = pid; self.controllerBoot = controllerBoot
    }

    /// This process, on this machine.
    public static func current(runId: String) -> LockOwner {
        LockOwner(runId: runId, controller: ProcessInfo.processInfo.hostName, pid: getpid(),
                  controllerBoot: ((try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines))
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
    public var description: String {
        "ccrun run \(runId) (pid \(pid) on \(controller), since \(fields["started"] ?? "?"))"
    }

    /// A lock is stale when its owner is provably gone: the target rebooted since, or the
    /// owner ran on this controller and its process (or the controller's boot) is gone.
    /// A lock held from another controller cannot be judged from here and is respected.
    public func isStale(for me: LockOwner, processAlive: (Int32) -> Bool = LockInfo.processAlive) -> Bool {
        if let tb = fields["targetBoot"], !tb.isEmpty, !currentTargetBoot.isEmpty, tb != currentTargetBoot { return true }
        guard fields["controller"] == me.controller else { return false }
        if let cb = fields["controllerBoot"], cb != me.controllerBoot { return true }
        if pid == me.pid { return runId == me.runId }   // our own earlier attempt at this run
        return !processAlive(pid)
    }

    public static func processAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }
}

public enum LockError: Error, CustomStringConvertible, Sendable {
    case held(host: String, by: LockInfo, path: String)
    case lost(host: String)
    public var description: String {
        switch self {
        case let .held(host, info, path):
            "\(host) is locked by \(info): another ccrun is working on it. Wait for it to finish; if that run is dead on another machine, remove \(path) on the host, then `ccrun resume`."
        case let .lost(host): "\(host): the lock changed hands while taking it over; try again"
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
        "run=\(owner.runId)\ncontroller=\(owner.controller)\npid=\(owner.pid)\ncontrollerBoot=\(owner.controllerBoot)\nstarted=\(JournalRecord.timestamp())\n"
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

    public var releaseScript: String {
        let l = Shell.quote(paths.lock)
        return "ccrun_l=; [ -r \(l) ] && IFS= read -r ccrun_l < \(l); if [ \"$ccrun_l\" = \(Shell.quote("run=" + owner.runId)) ]; then rm -f \(l); fi"
    }

    /// Parses the acquire output. Returns nil when acquired, else the holder.
    static func parse(_ output: String) -> (acquired: Bool, info: LockInfo?) {
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
