#if canImport(Glibc)
import Captions
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Store
import TunerServer

/// Renders a program's stored caption lines as downloadable files.
///
/// The database keeps each cue's text as a transcript (rows joined by "\n", trailing spaces
/// trimmed, no `<i>`/`<font>` tags). From that, SRT is rebuilt as CCExtractor writes it: numbered
/// from 1, `start --> end-1ms`, each row padded to the 608 screen's 32 columns, CRLF. For pop-on
/// captions without styling that is byte for byte CCExtractor's file; italics and colours are not
/// in the database, so those cues lack their tags (the archive's .srt keeps them, and is served
/// instead when found).
enum TranscriptRenderer {
    static let screenColumns = 32

    static func srt(_ lines: [CaptionLine]) -> String {
        var out = ""
        var number = 1
        for line in lines where !line.text.isEmpty {
            out += String(number) + "\r\n"
            number += 1
            out += CaptionTime.format(line.startMs) + " --> " + CaptionTime.format(StreamTime.shownEnd(line.endMs)) + "\r\n"
            for row in line.text.split(separator: "\n", omittingEmptySubsequences: false) {
                out += row
                if row.count < screenColumns { out += String(repeating: " ", count: screenColumns - row.count) }
                out += "\r\n"
            }
            out += "\r\n"
        }
        return out
    }

    /// WebVTT with the same cues and times as `srt` (rows trimmed: players centre them anyway).
    static func vtt(_ lines: [CaptionLine]) -> String {
        var out = "WEBVTT\n\n"
        var number = 1
        for line in lines where !line.text.isEmpty {
            out += String(number) + "\n"
            number += 1
            out += CaptionTime.format(line.startMs, separator: ".") + " --> " + CaptionTime.format(StreamTime.shownEnd(line.endMs), separator: ".") + "\n"
            for row in line.text.split(separator: "\n", omittingEmptySubsequences: false) {
                let trimmed = row.drop(while: { $0 == " " })
                // A row may not be empty inside a cue (an empty line ends it).
                out += trimmed.isEmpty ? "&nbsp;" : vttEscape(String(trimmed))
                out += "\n"
            }
            out += "\n"
        }
        return out
    }

    /// Plain text like CCExtractor's -out=txt: one row per line, CRLF.
    static func txt(_ lines: [CaptionLine]) -> String {
        var out = ""
        for line in lines {
            for row in line.text.split(separator: "\n", omittingEmptySubsequences: false) {
                out += row + "\r\n"
            }
        }
        return out
    }

    static func vttEscape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            default: out.append(c)
            }
        }
        return out
    }
}

/// Finds a program's files in the archive `ccr serve` writes
/// (`ROOT/YYYY/MM/DD/<tuner>/<HHMMSS>-<program-slug>[-N].<ext>`, start time in UTC).
///
/// The database does not record the archive path, so it is derived from what the database does
/// have: the start time, the program name and the tuner's description. Only an unambiguous match
/// is used; otherwise the caller falls back to the database.
struct ArchiveLocator: Sendable {
    let root: String

    func file(for program: ProgramSummary, extension ext: String) -> String? {
        let started = UTCTime(secondsSinceEpoch: Int(program.startedAt / 1000))
        let layout = ArchiveLayout(root: root)
        let stem = Digits.pad(Int64(started.hour), 2) + Digits.pad(Int64(started.minute), 2)
            + Digits.pad(Int64(started.second), 2) + "-" + programSlug(program.name)
        let day = layout.directory(tuner: "", startedAt: started)
        var candidates: [(folder: String, path: String)] = []
        for folder in Self.list(day) {
            let directory = day + folder
            for name in Self.list(directory) where Self.matches(name, stem: stem, ext: ext) {
                candidates.append((folder, directory + "/" + name))
            }
        }
        let described = programSlug(program.tunerDescription)
        let preferred = described == "unnamed" ? candidates : candidates.filter { $0.folder == described }
        if preferred.count == 1 { return preferred[0].path }
        // Two programs with one name starting in one second on this tuner: ambiguous.
        return nil
    }

    /// `STEM.ext` or `STEM-N.ext`.
    static func matches(_ name: String, stem: String, ext: String) -> Bool {
        guard name.hasPrefix(stem), name.hasSuffix("." + ext) else { return false }
        let middle = name.dropFirst(stem.count).dropLast(ext.count + 1)
        if middle.isEmpty { return true }
        guard middle.first == "-" else { return false }
        return middle.count > 1 && middle.dropFirst().allSatisfy(\.isNumber)
    }

    static func list(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }
}
