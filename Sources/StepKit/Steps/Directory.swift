import LeanFoundation

/// A directory with this mode and owner. Undo removes the directories the run created
/// (deepest first, only when empty) or puts back the previous mode and owner.
public struct Directory: Step {
    public let path: String
    public let mode: String
    public let owner: String
    public let group: String
    public let description: String

    public init(_ path: String, mode: String = "755", owner: String = "root", group: String = "root", description: String? = nil) {
        self.path = path; self.mode = FileSupport.normalizeMode(mode); self.owner = owner; self.group = group
        self.description = description ?? "directory \(path) (mode \(FileSupport.normalizeMode(mode)), \(owner):\(group))"
    }

    public var id: String { "dir:\(path)" }
    var probe: Probe<FileState?> { FileProbe.probe(path, content: false) }
    /// The ancestors of `path` that do not exist (so undo removes exactly what mkdir -p made).
    var missingAncestors: Probe<[String]> {
        let ancestors = Directory.ancestors(of: path)
        return Probe(FactQuery(key: "missing-ancestors:" + path, script: ancestors.map { "[ -e \(Shell.quote($0)) ] || echo \(Shell.quote($0))" }.joined(separator: "\n") + "\ntrue", isolation: .inline)) {
            $0.lines.map(String.init)
        }
    }
    static func ancestors(of path: String) -> [String] {
        var out: [String] = []
        var url = URL(fileURLWithPath: path).deletingLastPathComponent()
        while url.path != "/" && !url.path.isEmpty { out.append(url.path); url = url.deletingLastPathComponent() }
        return out
    }
    public var facts: [FactQuery] { [probe.query, missingAncestors.query] }
    public var affects: FactScope {
        .keys(Set(([path] + Directory.ancestors(of: path)).flatMap { FileSupport.keys($0) } + ["missing-ancestors:*"]))
    }

    public func plan(_ facts: FactSet, context: PlanContext) throws -> Plan {
        let p = Shell.quote(path)
        guard let current = try facts[probe] else {
            let missing = try facts[missingAncestors]   // deepest first
            let script = "mkdir -p \(p) && chown \(Shell.quote(owner + ":" + group)) \(p) && chmod \(mode) \(p)"
            return .change(Change(actions: [.shell(ShellAction("create directory \(path)", script: script))],
                                  diff: "+ directory \(path) mode \(mode) \(owner):\(group)\n",
                                  undo: ([path] + missing).map { .removeDirectory(path: $0) }))
        }
        guard current.kind == .directory else {
            throw StepRefusal("\(path) exists and is a \(current.kind.rawValue), not a directory")
        }
        if current.mode == mode && current.owner == owner && current.group == group { return .satisfied }
        return .change(Change(actions: [.shell(ShellAction("set \(path) to mode \(mode), \(owner):\(group)",
                                                           script: FileSupport.metaCommand(path: path, mode: mode, owner: owner, group: group)))],
                              diff: "\(path): mode \(current.mode) -> \(mode), owner \(current.owner):\(current.group) -> \(owner):\(group)\n",
                              undo: [.restoreDirectory(path: path, mode: current.mode, owner: current.owner, group: current.group)]))
    }
}
