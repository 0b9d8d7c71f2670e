import Foundation

/// A file system on a block device. ext4 already there = satisfied; a blank device gets one;
/// a *different* file system or unrecognised data is refused unless `force` is set. Never
/// undoable: rollback reports it as irreversible.
public struct FileSystem: Step {
    public let device: String
    public let type: String
    public let force: Bool
    public let description: String

    public init(_ type: String = "ext4", on device: String, force: Bool = false, description: String? = nil) {
        self.device = device; self.type = type; self.force = force
        self.description = description ?? "\(type) file system on \(device)"
    }

    public var id: String { "fs:\(device)" }
    var probe: Probe<BlockDeviceState> { BlockDeviceProbe.probe(device) }
    public var facts: [FactQuery] { [probe.query] }
    public var affects: FactScope { .keys([probe.query.key]) }
    public var reversibility: Reversibility { .irreversible("mkfs on \(device) destroys what was there; rollback cannot bring it back") }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        let mkfs = "mkfs -t \(Shell.quote(type)) -q -F \(Shell.quote(device))"
        let undo: [UndoAction] = [.irreversible(reason: "mkfs -t \(type) \(device) cannot be undone")]
        switch try facts[probe] {
        case .missing:
            if context.earlierChangePending { return .dependsOnEarlierChange("\(device) does not exist yet") }
            throw StepRefusal("device \(device) does not exist")
        case let .filesystem(found) where found == type:
            return .satisfied
        case let .filesystem(found):
            guard force else {
                throw StepRefusal("\(device) holds a \(found) file system, not \(type): refusing to format it (pass force to destroy it)")
            }
            return .change(Change(actions: [.shell(ShellAction("format \(device) as \(type), DESTROYING its \(found) file system", script: mkfs))],
                                  diff: "\(device): \(found) -> \(type) (destroys data)\n", undo: undo))
        case .unknownData:
            guard force else {
                throw StepRefusal("\(device) holds data that is not a known file system: refusing to format it (pass force to destroy it)")
            }
            return .change(Change(actions: [.shell(ShellAction("format \(device) as \(type), DESTROYING its data", script: mkfs))],
                                  diff: "\(device): data -> \(type) (destroys data)\n", undo: undo))
        case .blank:
            return .change(Change(actions: [.shell(ShellAction("format \(device) as \(type)", script: mkfs))],
                                  diff: "\(device): blank -> \(type)\n", undo: undo))
        }
    }
}

/// A file system mounted at a mount point, and its fstab line: the line is kept by `LineEditor`,
/// keyed by the mount point, so a changed line replaces the old one and none is ever doubled.
/// The one mount step for local devices (the nfs-master's /srv) and NFS exports (the nodes'
/// /srv/web, /srv/logs, /srv/archive). Undo unmounts what the run mounted, removes a mount point
/// it made, and restores fstab.
public struct Mount: Step {
    /// What is mounted: fstab's first field, and how what /proc/mounts shows is judged.
    public enum Source: Sendable, Hashable {
        /// A block device. Another device found mounted at the mount point is refused.
        case device(String)
        /// An NFS export. What /proc/mounts shows as the source is not compared: a kernel NFS
        /// mount shows `server:/path`, the lab's stand-in (docs/lab.md) a bind of the server's
        /// volume. The mount point is made when missing (the clients have no /srv/web).
        case nfs(server: String, path: String)

        /// fstab's first field.
        public var fstabField: String {
            switch self {
            case let .device(d): d
            case let .nfs(server, path): "\(server):\(path)"
            }
        }
    }

    public let source: Source
    public let mountPoint: String
    public let type: String
    public let options: String
    public let fstabPath: String
    public let description: String

    public init(_ device: String, at mountPoint: String, type: String = "ext4", options: String = "defaults", fstabPath: String = "/etc/fstab", description: String? = nil) {
        self.source = .device(device); self.mountPoint = mountPoint; self.type = type; self.options = options
        self.fstabPath = fstabPath
        self.description = description ?? "\(device) mounted at \(mountPoint) (\(type), \(options)) and in \(fstabPath)"
    }

    /// `server:remotePath` over NFS, as the guide's client fstab lines.
    public init(nfs server: String, _ remotePath: String, at mountPoint: String, options: String, fstabPath: String = "/etc/fstab", description: String? = nil) {
        self.source = .nfs(server: server, path: remotePath); self.mountPoint = mountPoint; self.type = "nfs"; self.options = options
        self.fstabPath = fstabPath
        self.description = description ?? "fstab line and mount: \(server):\(remotePath) on \(mountPoint) (\(options))"
    }

    public var fstabLine: String { "\(source.fstabField) \(mountPoint) \(type) \(options) 0 0" }
    public var id: String { "mount:\(mountPoint)" }
    /// The fstab half: one keyed line.
    var fstab: LineInFile { LineInFile(fstabPath, line: fstabLine, key: .fstabMountPoint) }
    var makesMountPoint: Bool { if case .nfs = source { true } else { false } }
    /// Whether the mount point exists: one the run creates is removed again by rollback.
    var mountPointProbe: Probe<FileState?> { FileProbe.probe(mountPoint, content: false) }
    public var facts: [FactQuery] { fstab.facts + [MountsProbe.probe.query] + (makesMountPoint ? [mountPointProbe.query] : []) }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        var actions: [Action] = [], undo: [UndoAction] = [], diff = ""
        if let c = try fstab.plan(facts, context: context).change {
            actions += c.actions; undo += c.undo; diff += c.diff ?? ""
        }
        let mounts = try facts[MountsProbe.probe]
        if let mounted = mounts.last(where: { $0.mountPoint == mountPoint }) {
            if case let .device(device) = source, mounted.device != device, !context.earlierChangePending {
                throw StepRefusal("\(mountPoint) already has \(mounted.device) (\(mounted.type)) mounted, not \(device): unmount it by hand first")
            }
        } else {
            let makes = makesMountPoint ? try facts[mountPointProbe] == nil : false
            let script = (makes ? "mkdir -p \(Shell.quote(mountPoint)) && " : "") + "mount \(Shell.quote(mountPoint))"
            let changes = FactScope.keys(makes ? FileSupport.keys(mountPoint).union([MountsProbe.key]) : [MountsProbe.key])
            actions.append(.shell(ShellAction("mount \(mountPoint)", script: script, affects: changes)))
            if makes { undo.insert(.removeDirectory(path: mountPoint), at: 0) }
            undo.insert(.unmount(mountPoint: mountPoint), at: 0)
            diff += "+ mounted \(source.fstabField) at \(mountPoint)\n"
        }
        return actions.isEmpty ? .satisfied : .change(Change(actions: actions, diff: diff, undo: undo))
    }
}
