/// A CEA-608 caption channel. CC1/CC2 travel in field 1, CC3/CC4 in field 2.
public enum CaptionChannel: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case cc1 = 1, cc2 = 2, cc3 = 3, cc4 = 4

    /// The NTSC field that carries this channel.
    public var field: Int { rawValue <= 2 ? 1 : 2 }
    /// 0 for the first channel of its field (CC1/CC3), 1 for the second (CC2/CC4).
    public var dataChannel: Int { (rawValue - 1) % 2 }
    public var description: String { "CC\(rawValue)" }
}

/// What the decoder does.
public struct DecoderOptions: Sendable, Hashable {
    /// The caption channel to decode (CCExtractor's default and `-1`: CC1).
    public var channel: CaptionChannel
    /// Decode XDS (field 2) and report it as `CaptionEvent.xds`.
    public var xds: Bool
    /// Check odd parity (drop a pair whose second byte fails, replace a failing first byte by a
    /// solid block). CCExtractor does not check parity on `.bin` input, so neither do we by
    /// default: enabling it can change output for streams with corrupt bytes.
    public var checkParity: Bool

    public init(channel: CaptionChannel = .cc1, xds: Bool = false, checkParity: Bool = false) {
        self.channel = channel
        self.xds = xds
        self.checkParity = checkParity
    }
}

/// The caption style that produced a cue, named as in CCExtractor's ttxt output.
public enum CaptionMode: String, Sendable, Hashable {
    case popOn = "POP"
    case rollUp2 = "RU2"
    case rollUp3 = "RU3"
    case rollUp4 = "RU4"
    case paintOn = "PAI"
    case text = "TXT"
}

/// One transcript line (txt/ttxt): a caption row, trailing spaces trimmed, without tags.
public struct TranscriptLine: Sendable, Hashable {
    /// When the row began to show, in ms.
    public var start: Int64
    /// When it stopped showing, in ms.
    public var end: Int64
    public var mode: CaptionMode
    public var text: String

    public init(start: Int64, end: Int64, mode: CaptionMode, text: String) {
        self.start = start
        self.end = end
        self.mode = mode
        self.text = text
    }
}

/// A caption screen that was shown from `start` to `end`, and the transcript lines it completes.
///
/// CCExtractor writes srt from whole screens but txt/ttxt from rows (a roll-up row once, with its
/// own start time), so one cue carries both views: `rows` for srt (empty when the screen did not
/// produce an srt cue, e.g. a roll-up line that scrolled nothing off) and `lines` for txt/ttxt.
public struct Cue: Sendable, Hashable {
    /// Start of display in ms (stream time, not rebased).
    public var start: Int64
    /// End of display in ms (srt shows `end - 1`, ttxt shows `end`).
    public var end: Int64
    public var mode: CaptionMode
    /// The shown rows as srt renders them: full 32 columns, not trimmed, with `<i>` and
    /// `<font color=...>` tags.
    public var rows: [String]
    /// The lines this event adds to a transcript (txt/ttxt).
    public var lines: [TranscriptLine]
    /// A transcript row that was held (its end was not after its start, e.g. after the clock
    /// went back) when an XDS packet was written: CCExtractor's ttxt with `-xds` loses such a
    /// row, so `TTXTWriter` skips it; txt (which CCExtractor writes without XDS, keeping the
    /// row) and the store keep it, with the times it came with (`end` is at least `start`).
    public var unplaced: Bool

    public init(start: Int64, end: Int64, mode: CaptionMode, rows: [String], lines: [TranscriptLine], unplaced: Bool = false) {
        self.start = start
        self.end = end
        self.mode = mode
        self.rows = rows
        self.lines = lines
        self.unplaced = unplaced
    }

    /// The rows without tags and trailing spaces (for search and display).
    public var plainText: String { lines.map(\.text).joined(separator: "\n") }

    /// Screen columns an srt row occupies: its characters without the `<i>`, `<u>`, `<font ...>`
    /// tags (and their ends) that `RowRenderer.srtRow` puts in. A 608 row never exceeds 32.
    public static func visibleColumns(_ row: String) -> Int {
        var count = 0
        var rest = Substring(row)
        while let first = rest.first {
            if first == "<", let close = rest.firstIndex(of: ">") {
                let tag = rest[rest.startIndex...close]
                if tag == "<i>" || tag == "</i>" || tag == "<u>" || tag == "</u>" || tag == "</font>" || tag.hasPrefix("<font ") {
                    rest = rest[rest.index(after: close)...]
                    continue
                }
            }
            count += 1
            rest = rest.dropFirst()
        }
        return count
    }
}

/// The typed content of an XDS packet.
public enum XDSContent: Sendable, Hashable {
    case programName(String)
    case programType([String])
    /// Length and, when sent, elapsed time (minutes).
    case lengthElapsed(lengthMinutes: Int, elapsedMinutes: Int?)
    case networkName(String)
    case callLetters(String)
    case contentAdvisory(String)
    /// Anything else, kept for the ttxt line only.
    case other(packetClass: UInt8, type: UInt8)
}

/// A complete XDS packet as CCExtractor reports it.
public struct XDSEvent: Sendable, Hashable {
    /// When the packet started and ended, in ms.
    public var start: Int64
    public var end: Int64
    public var content: XDSContent
    /// The ttxt text lines (`...|XDS|<line>`), exactly as CCExtractor writes them.
    public var lines: [String]

    public init(start: Int64, end: Int64, content: XDSContent, lines: [String]) {
        self.start = start
        self.end = end
        self.content = content
        self.lines = lines
    }

    /// The program name, when this packet carries one.
    public var programName: String? {
        if case .programName(let n) = content { return n }
        return nil
    }
}

/// What the decoder reports, in stream order.
public enum CaptionEvent: Sendable, Hashable {
    case cue(Cue)
    case xds(XDSEvent)
}

/// The output formats, named as CCExtractor's `-out=`.
public enum CaptionFormat: String, Sendable, Hashable, CaseIterable {
    case srt, txt, ttxt
}
