import Foundation
import SupportKit
import Testing
@testable import StepKit

/// Issue #20, point 7: `LineEditor` is the one keyed line editor (LineInFile, Mount's fstab line,
/// the NFS exports). The fixtures elsewhere show single cases; here random files of the kinds
/// hosts have (comments naming the key, duplicated keys, blank lines, tabs, no final newline)
/// check the properties every caller relies on.
@Suite struct LineEditorPropertyTests {
    static let cases = 400

    /// A random fstab-like or exports-like file; some lines carry `key` in the keyed field.
    static func randomFile(key: String, field: Int, _ rng: inout SplitMix64) -> String {
        let others = ["/", "/home", "/srv", "/srv/web2", "/var/log", "none", "/srv/web/x"]
        func fields(_ k: String) -> String {
            var f = ["dev\(Int.random(in: 0...9, using: &rng))", "opt\(Int.random(in: 0...9, using: &rng))", "0", "0"]
            f.insert(k, at: min(field, f.count))
            let sep = Bool.random(using: &rng) ? " " : "\t"
            return (Bool.random(using: &rng) ? "" : "  ") + f.joined(separator: sep)
        }
        var lines: [String] = []
        for _ in 0..<Int.random(in: 0...12, using: &rng) {
            switch Int.random(in: 0...5, using: &rng) {
            case 0: lines.append("# \(key) commented out: " + fields(key))
            case 1: lines.append(["", "   ", "\t"].randomElement(using: &rng)!)
            case 2, 3: lines.append(fields(key))
            default: lines.append(fields(others.randomElement(using: &rng)!))
            }
        }
        let text = lines.joined(separator: "\n")
        return text.isEmpty || Bool.random(using: &rng) ? text : text + "\n"
    }

    /// The file's lines as the editor sees them (a final newline ends the last line, not a new one).
    static func lines(_ text: String) -> [String] {
        var l = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if l.last == "" { l.removeLast() }
        return l
    }

    static func check(field: Int, key: String, wanted: String, seed: UInt64) {
        var rng = SplitMix64(state: seed)
        let lineKey = LineKey.field(field)
        let text = randomFile(key: key, field: field, &rng)
        let context = "seed \(seed), file:\n\(text)"
        let once = LineEditor.edit(text, line: wanted, key: lineKey, present: true) ?? text
        // Applying twice is applying once.
        #expect(LineEditor.edit(once, line: wanted, key: lineKey, present: true) == nil, "\(context)")
        // The key is on exactly one line, the wanted one.
        let keyed = lines(once).filter { lineKey.key(of: Substring($0)) == key }
        #expect(keyed == [wanted], "\(context)")
        // Every other line (comments, blanks, other keys) is kept, in order.
        let untouched = { (t: String) in lines(t).filter { lineKey.key(of: Substring($0)) != key } }
        #expect(untouched(once) == untouched(text), "\(context)")
        // Removing: the key is gone, the rest untouched, and removing again changes nothing.
        let removed = LineEditor.edit(once, line: wanted, key: lineKey, present: false) ?? once
        #expect(lines(removed).allSatisfy { lineKey.key(of: Substring($0)) != key }, "\(context)")
        #expect(untouched(removed) == untouched(text), "\(context)")
        #expect(LineEditor.edit(removed, line: wanted, key: lineKey, present: false) == nil, "\(context)")
    }

    @Test("fstab lines keyed by mount point: idempotent, once, the rest untouched")
    func fstabLines() {
        for seed in 0..<UInt64(Self.cases) {
            Self.check(field: 1, key: "/srv/web", wanted: "nfs.example:/srv/web /srv/web nfs ro,noac 0 0", seed: seed)
        }
    }

    @Test("exports lines keyed by path: idempotent, once, the rest untouched")
    func exportsLines() {
        for seed in 0..<UInt64(Self.cases) {
            Self.check(field: 0, key: "/srv/web", wanted: "/srv/web *(rw,sync,no_root_squash,no_acl)", seed: 1_000_000 + seed)
        }
    }

    /// Several keyed lines at once (the guide's three exports): each key once, idempotent.
    @Test func severalLinesAtOnce() {
        let wanted = ["/srv/web *(rw,sync)", "/srv/archive *(rw,async)", "/srv/logs *(rw,sync)"]
        for seed in 0..<UInt64(Self.cases) {
            var rng = SplitMix64(state: 2_000_000 + seed)
            let text = Self.randomFile(key: ["/srv/web", "/srv/archive", "/srv/logs"].randomElement(using: &rng)!, field: 0, &rng)
            let once = LineEditor.edit(text, lines: wanted, key: .exportPath) ?? text
            #expect(LineEditor.edit(once, lines: wanted, key: .exportPath) == nil, "seed \(seed)")
            for line in wanted {
                let key = LineKey.exportPath.key(of: Substring(line))
                #expect(Self.lines(once).filter { LineKey.exportPath.key(of: Substring($0)) == key } == [line], "seed \(seed):\n\(text)")
            }
        }
    }

    /// `Mount` keeps fstab with the same editor: its planned fstab has the mount point once, and
    /// once written (and mounted) the step is satisfied.
    @Test func mountPlansConvergeOnRandomFstabs() throws {
        for seed in 0..<UInt64(100) {
            var rng = SplitMix64(state: 3_000_000 + seed)
            let fstab = Self.randomFile(key: "/srv/web", field: 1, &rng)
            let step = Mount(nfs: "nfs.example", "/srv/web", at: "/srv/web", options: "ro,noac")
            var f = FactFixtures()
            f.file("/etc/fstab", .file(fstab))
            f.file("/srv/web", nil, content: false)
            f.raw(MountsProbe.key, "nfs.example:/srv/web /srv/web nfs4 ro 0 0\n")
            guard let change = try f.plan(step).change else {
                #expect(Self.lines(fstab).filter { LineKey.fstabMountPoint.key(of: Substring($0)) == "/srv/web" } == [step.fstabLine], "seed \(seed)")
                continue
            }
            let written = try #require(change.actions.compactMap { if case let .upload(u) = $0 { String(decoding: u.payload(), as: UTF8.self) } else { nil } }.first)
            #expect(Self.lines(written).filter { LineKey.fstabMountPoint.key(of: Substring($0)) == "/srv/web" } == [step.fstabLine], "seed \(seed)")
            f.file("/etc/fstab", .file(written))
            #expect(try f.plan(step).isSatisfied, "seed \(seed)")
        }
    }
}

/// Issue #20, point 7: what a step may change is read from its plan's actions (an upload changes
/// its file, `mount` the mounts), not spelled by hand beside them.
@Suite struct DerivedAffectsTests {
    @Test func nfsMountOnABareHostChangesFstabTheMountsAndTheMountPoint() throws {
        var f = FactFixtures()
        f.file("/etc/fstab", .file("UUID=root / ext4 defaults 0 1\n"))
        f.file("/srv/web", nil, content: false)
        f.raw(MountsProbe.key, "proc /proc proc rw 0 0\n")
        let step = Mount(nfs: "nfs.example", "/srv/web", at: "/srv/web", options: "ro,noac")
        let change = try #require(try f.plan(step).change)
        #expect(change.affects == .keys(FileSupport.keys("/etc/fstab").union(FileSupport.keys("/srv/web")).union([MountsProbe.key])))
        #expect(change.commands.last == "mkdir -p /srv/web && mount /srv/web")
        #expect(change.undo.prefix(2) == [.unmount(mountPoint: "/srv/web"), .removeDirectory(path: "/srv/web")])
        // The fstab line reads as the guide's did before the merge.
        #expect(step.fstabLine == "nfs.example:/srv/web /srv/web nfs ro,noac 0 0")
        // What /proc/mounts shows as an NFS mount's source is not compared (the lab binds).
        f.raw(MountsProbe.key, "/dev/vdb /srv/web ext4 rw 0 0\n")
        f.file("/etc/fstab", .file("UUID=root / ext4 defaults 0 1\n" + step.fstabLine + "\n"))
        #expect(try f.plan(step).isSatisfied)
    }

    @Test func deviceMountChangesOnlyFstabAndTheMounts() throws {
        var f = FactFixtures()
        f.file("/etc/fstab", nil)
        f.raw(MountsProbe.key, "proc /proc proc rw 0 0\n")
        let change = try #require(try f.plan(Mount("/dev/xvdf", at: "/srv", options: "defaults,nofail")).change)
        #expect(change.affects == .keys(FileSupport.keys("/etc/fstab").union([MountsProbe.key])))
        #expect(change.commands.last == "mount /srv")
    }

    @Test func aCommandThatDoesNotSayLeavesItToTheStep() {
        let change = Change(actions: [.upload(UploadAction(path: "/etc/a", text: "x", mode: "644", owner: "root", group: "root")),
                                      .shell(ShellAction("anything", script: "true"))], undo: [])
        #expect(change.affects == nil)
        #expect(Change(actions: [], undo: []).affects == .keys([]))
        #expect(FactScope.keys(["a"]).union(.everything) == .everything)
    }
}
