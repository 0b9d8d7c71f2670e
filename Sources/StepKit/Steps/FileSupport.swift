import Foundation

/// Helpers shared by the file-writing steps.
enum FileSupport {
    /// "0644", "644", "u" normalised to what `stat -c %a` prints ("644").
    static func normalizeMode(_ mode: String) -> String {
        guard let v = Int(mode, radix: 8) else { return mode }
        return String(v, radix: 8)
    }

    static func keys(_ path: String) -> Set<String> {
        [FileProbe.key(path, content: true), FileProbe.key(path, content: false), FileProbe.existsKey(path)]
    }

    /// Where a previous version of `path` is copied on the target before it is replaced.
    static func backupPath(_ path: String, in dir: String) -> String {
        dir + "/" + path.replacingOccurrences(of: "/", with: "%")
    }

    /// Captures the undo data for replacing an existing file: inline in the journal when small
    /// and secret-free, otherwise as a copy on the target (made by the returned action, run first).
    static func snapshot(of state: FileState, path: String, sensitive: Bool, context: PlanContext) -> (FileSnapshot, [Action]) {
        if !sensitive, let content = state.content {
            return (FileSnapshot(mode: state.mode, owner: state.owner, group: state.group, sha256: state.sha256,
                                 contentBase64: content.base64EncodedString(), backupPath: nil), [])
        }
        let backup = backupPath(path, in: context.backupDirectory)
        let dir = Shell.quote(context.backupDirectory)
        let action = Action.shell(ShellAction("keep a copy of \(path) for rollback",
            script: "mkdir -p \(dir) && chmod 700 \(dir) && cp -p \(Shell.quote(path)) \(Shell.quote(backup))", affects: .keys([])))
        return (FileSnapshot(mode: state.mode, owner: state.owner, group: state.group, sha256: state.sha256,
                             contentBase64: nil, backupPath: backup), [action])
    }

    /// A diff for a plan, with every secret masked.
    static func diff(old: Data?, new: String, path: String, scrubber: SecretScrubber) -> String {
        let oldText: String
        if let old {
            guard let t = String(data: old, encoding: .utf8) else { return "binary content of \(path) differs\n" }
            oldText = scrubber.scrub(t)
        } else { oldText = "" }
        return UnifiedDiff.make(old: oldText, new: scrubber.scrub(new), oldName: old == nil ? "/dev/null" : path, newName: path)
    }

    static func metaCommand(path: String, mode: String?, owner: String?, group: String?) -> String {
        var parts: [String] = []
        if let owner, let group { parts.append("chown \(Shell.quote(owner + ":" + group)) \(Shell.quote(path))") }
        if let mode { parts.append("chmod \(mode) \(Shell.quote(path))") }
        return parts.joined(separator: " && ")
    }
}
