/// Formats stream times as CCExtractor does: `HH:MM:SS,mmm` (WebVTT: `HH:MM:SS.mmm`).
public enum CaptionTime {
    public static func format(_ ms: Int64, separator: Character = ",") -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(12)
        append(ms, to: &bytes, separator: separator)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `HH:MM:SS,mmm` (hours widen past 99; times outside `StreamTime.range` clamp to it).
    public static func append(_ ms: Int64, to out: inout [UInt8], separator: Character) {
        append(ms, to: &out, separatorByte: separator.asciiValue ?? UInt8(ascii: ","))
    }

    /// `HH:MM:SS,mmm` with the comma, as the writers call it per cue and XDS line (a Character's
    /// ASCII value is a String operation: a tenth of a time's cost).
    public static func append(_ ms: Int64, to out: inout [UInt8]) {
        append(ms, to: &out, separatorByte: UInt8(ascii: ","))
    }

    private static func append(_ ms: Int64, to out: inout [UInt8], separatorByte: UInt8) {
        let v = StreamTime.clamped(ms)
        let h = v / 3_600_000, m = (v / 60_000) % 60, s = (v / 1000) % 60, f = v % 1000
        if h >= 100 { out.append(contentsOf: String(h).utf8) } else { two(h, &out) }
        out.append(UInt8(ascii: ":")); two(m, &out)
        out.append(UInt8(ascii: ":")); two(s, &out)
        out.append(separatorByte)
        out.append(UInt8(48 + f / 100)); out.append(UInt8(48 + (f / 10) % 10)); out.append(UInt8(48 + f % 10))
    }

    @inline(__always) private static func two(_ v: Int64, _ out: inout [UInt8]) {
        out.append(UInt8(48 + v / 10)); out.append(UInt8(48 + v % 10))
    }
}

/// An incremental writer: feed it events in order, append what it returns to the output.
///
/// Writers are small values (an archive per program keeps one per format) and write UTF-8
/// bytes with CRLF line ends, like CCExtractor.
public protocol CaptionWriter: Sendable {
    /// Appends the output for this event (possibly nothing).
    mutating func append(_ event: CaptionEvent, to out: inout [UInt8])
}

extension CaptionWriter {
    /// Text to append for this event (possibly empty).
    public mutating func write(_ event: CaptionEvent) -> String {
        var b: [UInt8] = []
        append(event, to: &b)
        return String(decoding: b, as: UTF8.self)
    }

    /// Text to append at the end of the output (none of CCExtractor's formats has a trailer).
    public mutating func finish() -> String { "" }
}

/// SubRip, like `ccextractor -out=srt`: numbered from 1 per writer, CRLF, rows not trimmed,
/// end time shown 1 ms before the cue's end.
public struct SRTWriter: CaptionWriter {
    public private(set) var nextNumber: Int

    public init(firstNumber: Int = 1) { nextNumber = firstNumber }

    public mutating func append(_ event: CaptionEvent, to b: inout [UInt8]) {
        guard case .cue(let cue) = event, !cue.rows.isEmpty else { return }
        b.append(contentsOf: String(nextNumber).utf8); b.append(13); b.append(10)
        nextNumber += 1
        CaptionTime.append(cue.start, to: &b)
        b.append(contentsOf: " --> ".utf8)
        CaptionTime.append(StreamTime.shownEnd(cue.end), to: &b)
        b.append(13); b.append(10)
        for row in cue.rows { b.append(contentsOf: row.utf8); b.append(13); b.append(10) }
        b.append(13); b.append(10)
    }
}

/// Plain transcript, like `ccextractor -out=txt`: one line per caption row, no times.
public struct TXTWriter: CaptionWriter {
    public init() {}

    public mutating func append(_ event: CaptionEvent, to b: inout [UInt8]) {
        guard case .cue(let cue) = event else { return }
        for line in cue.lines { b.append(contentsOf: line.text.utf8); b.append(13); b.append(10) }
    }
}

/// Timed transcript, like `ccextractor -out=ttxt [-xds]`: `start|end|MODE|text`.
public struct TTXTWriter: CaptionWriter {
    /// Whether XDS lines are written (`-xds`).
    public var includeXDS: Bool

    public init(includeXDS: Bool = true) { self.includeXDS = includeXDS }

    public mutating func append(_ event: CaptionEvent, to b: inout [UInt8]) {
        switch event {
        case .cue(let cue):
            // CCExtractor loses a row still held when an XDS line is written (`-xds`).
            if cue.unplaced && includeXDS { return }
            for line in cue.lines {
                CaptionTime.append(line.start, to: &b); b.append(UInt8(ascii: "|"))
                CaptionTime.append(line.end, to: &b); b.append(UInt8(ascii: "|"))
                b.append(contentsOf: line.mode.rawValue.utf8); b.append(UInt8(ascii: "|"))
                b.append(contentsOf: line.text.utf8); b.append(13); b.append(10)
            }
        case .xds(let x):
            guard includeXDS else { return }
            for line in x.lines {
                CaptionTime.append(x.start, to: &b); b.append(UInt8(ascii: "|"))
                CaptionTime.append(x.end, to: &b); b.append(contentsOf: "|XDS|".utf8)
                b.append(contentsOf: line.utf8); b.append(13); b.append(10)
            }
        }
    }
}

/// One-shot decoding of a whole recording, like one `ccextractor` run.
public enum CaptionFile {
    /// Decodes `records` and renders them in `format`.
    public static func render<S: Sequence>(records: S, format: CaptionFormat, xds: Bool = false, channel: CaptionChannel = .cc1) -> String where S.Element == RCWTRecord {
        var decoder = CaptionDecoder(options: DecoderOptions(channel: channel, xds: xds && format == .ttxt))
        var writer = makeWriter(format, xds: xds)
        var out: [UInt8] = []
        for record in records {
            decoder.decode(record) { writer.append($0, to: &out) }
        }
        decoder.finish { writer.append($0, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a whole `.bin` file's bytes. Like CCExtractor ("Premature end of file"), a
    /// recording cut inside its last record (e.g. a server killed mid-write) is decoded up to
    /// that record; only a bad header is an error.
    public static func render(bin bytes: [UInt8], format: CaptionFormat, xds: Bool = false, channel: CaptionChannel = .cc1) throws(RCWTError) -> String {
        var decoder = CaptionDecoder(options: DecoderOptions(channel: channel, xds: xds && format == .ttxt))
        var writer = makeWriter(format, xds: xds)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        do {
            try RCWTFileReader(bytes: bytes).forEachRawRecord { ts, triplets in
                decoder.decode(timestamp: ts, tripletBytes: triplets) { writer.append($0, to: &out) }
            }
        } catch {
            if case .badHeader = error { throw error }
        }
        decoder.finish { writer.append($0, to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// A writer for `format`.
    public static func makeWriter(_ format: CaptionFormat, xds: Bool) -> any CaptionWriter {
        switch format {
        case .srt: return SRTWriter()
        case .txt: return TXTWriter()
        case .ttxt: return TTXTWriter(includeXDS: xds)
        }
    }
}
