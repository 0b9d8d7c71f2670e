import LeanFoundation

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

/// A file system mounted at a mount point, and its fstab line (matched by mount point, so a
/// changed line replaces the old one). Undo unmounts what the run mounted and restores fstab.
public struct Mount: Step {
    public let device: String
    public let mountPoint: String
    public let type: String
    public let options: String
    public let fstabPath: String
    public let description: String

    public init(_ device: String, at mountPoint: String, type: String = "ext4", options: String = "defaults", fstabPath: String = "/etc/fstab", description: String? = nil) {
        self.device = device; self.mountPoint = mountPoint; self.type = type; self.options = options
        self.fstabPath = fstabPath
        self.description = description ?? "\(device) mounted at \(mountPoint) (\(type), \(options)) and in \(fstabPath)"
    }

    public var fstabLine: String { "\(device) \(mountPoint) \(type) \(options) 0 0" }
    public var id: String { "mount:\(mountPoint)" }
    var fstabProbe: Probe<FileState?> { FileProbe.probe(fstabPath, content: true) }
    public var facts: [FactQuery] { [fstabProbe.query, MountsProbe.probe.query] }
    public var affects: FactScope { .keys(FileSupport.keys(fstabPath).union([MountsProbe.key])) }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        let fstab = try facts[fstabProbe]
        let mounts = try facts[MountsProbe.probe]
        var actions: [Action] = []
        var undo: [UndoAction] = []
        var diff = ""
        let oldText = fstab?.content.map { String(decoding: $0, as: UTF8.self) } ?? ""
        if let newText = LineEditor.edit(oldText, line: fstabLine, key: .fstabMountPoint, present: true) {
            if let fstab {
                let (snap, backup) = FileSupport.snapshot(of: fstab, path: fstabPath, sensitive: false, context: context)
                actions += backup
                undo.append(.restoreFile(path: fstabPath, previous: snap))
            } else {
                undo.append(.restoreFile(path: fstabPath, previous: nil))
            }
            actions.append(.upload(UploadAction(path: fstabPath, text: SecretText(newText), mode: fstab?.mode ?? "644",
                                                owner: fstab?.owner ?? "root", group: fstab?.group ?? "root")))
            diff += FileSupport.diff(old: fstab?.content, new: newText, path: fstabPath, scrubber: SecretScrubber([]))
        }
        if let mounted = mounts.last(where: { $0.mountPoint == mountPoint }) {
            if mounted.device != device && !context.earlierChangePending {
                throw StepRefusal("\(mountPoint) already has \(mounted.device) (\(mounted.type)) mounted, not \(device): unmount it by hand first")
            }
        } else {
            actions.append(.shell(ShellAction("mount \(mountPoint)", script: "mount \(Shell.quote(mountPoint))")))
            undo.insert(.unmount(mountPoint: mountPoint), at: 0)
            diff += "+ mounted \(device) at \(mountPoint)\n"
        }
        if actions.isEmpty { return .satisfied }
        return .change(Change(actions: actions, diff: diff, undo: undo))
    }
}
