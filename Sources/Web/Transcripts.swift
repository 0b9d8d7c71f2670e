#if canImport(Glibc)
import Captions
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Store
import ServerFiles

/// Renders a program's stored caption lines as downloadable files.
///
/// The database keeps each cue's text as a transcript (rows joined by "\n", trailing spaces
/// trimmed, no `<i>`/`<font>` tags). From that, SRT is rebuilt as CCExtractor writes it: numbered
/// from 1, `start --> end-1ms`, each row padded to the 608 screen's 32 columns, CRLF. For pop-on
/// captions without styling that is byte for byte CCExtractor's file; italics and colours are not
/// in the database, so those cues lack their tags (the archive's .srt keeps them, and is served
/// instead when found). A CEA-708 service's rows are not padded: its screen is not 32 columns,
/// and CCExtractor's 708 srt places a row with leading spaces only, which the stored rows keep.
enum TranscriptRenderer {
    static let screenColumns = 32

    static func srt(_ lines: [CaptionLine]) -> String { whole(.srt, lines) }

    /// WebVTT with the same cues and times as `srt` (rows trimmed: players centre them anyway).
    static func vtt(_ lines: [CaptionLine]) -> String { whole(.vtt, lines) }

    /// Plain text like CCExtractor's -out=txt: one row per line, CRLF.
    static func txt(_ lines: [CaptionLine]) -> String { whole(.txt, lines) }

    private static func whole(_ kind: TranscriptKind, _ lines: [CaptionLine]) -> String {
        var stream = TranscriptStream(kind)
        return stream.header + stream.render(lines)
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

/// The download formats.
enum TranscriptKind: String, CaseIterable {
    case srt, vtt, txt

    var contentType: String {
        switch self {
        case .srt: "application/x-subrip; charset=utf-8"
        case .vtt: "text/vtt; charset=utf-8"
        case .txt: "text/plain; charset=utf-8"
        }
    }
}

/// A transcript rendered page by page, so that a download of any length is written in constant
/// memory: cue numbers carry over from one page to the next.
struct TranscriptStream {
    let kind: TranscriptKind
    /// Pad SRT rows to the 608 screen's 32 columns (608 captions only).
    let padRows: Bool
    private var number = 1

    init(_ kind: TranscriptKind, padRows: Bool = true) {
        self.kind = kind
        self.padRows = padRows
    }

    /// What comes before the first cue.
    var header: String { kind == .vtt ? "WEBVTT\n\n" : "" }

    mutating func render(_ lines: [CaptionLine]) -> String {
        var out = ""
        for line in lines {
            switch kind {
            case .srt: srt(line, into: &out)
            case .vtt: vtt(line, into: &out)
            case .txt:
                for row in line.text.split(separator: "\n", omittingEmptySubsequences: false) { out += row + "\r\n" }
            }
        }
        return out
    }

    private mutating func srt(_ line: CaptionLine, into out: inout String) {
        guard !line.text.isEmpty else { return }
        out += String(number) + "\r\n"
        number += 1
        out += CaptionTime.format(line.startMs) + " --> " + CaptionTime.format(StreamTime.shownEnd(line.endMs)) + "\r\n"
        for row in line.text.split(separator: "\n", omittingEmptySubsequences: false) {
            out += row
            let columns = TranscriptRenderer.screenColumns
            if padRows, row.count < columns { out += String(repeating: " ", count: columns - row.count) }
            out += "\r\n"
        }
        out += "\r\n"
    }

    private mutating func vtt(_ line: CaptionLine, into out: inout String) {
        guard !line.text.isEmpty else { return }
        out += String(number) + "\n"
        number += 1
        out += CaptionTime.format(line.startMs, separator: ".") + " --> " + CaptionTime.format(StreamTime.shownEnd(line.endMs), separator: ".") + "\n"
        for row in line.text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = row.drop(while: { $0 == " " })
            // A row may not be empty inside a cue (an empty line ends it).
            out += trimmed.isEmpty ? "&nbsp;" : TranscriptRenderer.vttEscape(String(trimmed))
            out += "\n"
        }
        out += "\n"
    }
}

/// Finds a program's files in the archive `ccr serve` writes
/// (`ROOT/YYYY/MM/DD/<tuner>/<HHMMSS>-<program-slug>[-N].<ext>`, start time in UTC).
///
/// The database does not record the archive path, so it is derived from what the database does
/// have: the start time, the program name, the tuner's description and the node that recorded it
/// (`ArchiveLayout.node`; names without a node, from a ccr before shared archives, are tried
/// after). Only an unambiguous match is used; otherwise the caller falls back to the database.
struct ArchiveLocator: Sendable {
    let root: String
    /// Names tried per program (`STEM`, `STEM-2`, ...); the writer takes the first free one.
    static let maximumProbes = 16

    /// The program's file when exactly one candidate exists. Only the tuner's own folder is looked
    /// at, by exact names (no listing: a day may hold thousands of tuner folders, a folder
    /// thousands of files); the folder is named after the tuner's description, or its address.
    func file(for program: ProgramSummary, extension ext: String) -> String? {
        guard program.tunerDescription != nil || program.tunerAddress != nil else { return nil }
        let folder = ArchiveLayout.tunerFolder(description: program.tunerDescription, address: program.tunerAddress)
        let started = UTCTime(secondsSinceEpoch: Int(program.startedAt / 1000))
        for layout in (program.nodeName.map { [ArchiveLayout(root: root, node: $0)] } ?? []) + [ArchiveLayout(root: root)] {
            var found: [String] = []
            for sequence in 1...Self.maximumProbes {
                let path = layout.basePath(tuner: folder, startedAt: started, slug: programSlug(program.name), sequence: sequence) + "." + ext
                if Self.isRegularFile(path) {
                    found.append(path)
                } else if sequence > 1 {
                    break
                }
            }
            // Two programs with one name starting in one second on this tuner: ambiguous.
            if !found.isEmpty { return found.count == 1 ? found[0] : nil }
        }
        return nil
    }

    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }
}
