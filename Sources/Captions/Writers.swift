/// Formats stream times as CCExtractor does: `HH:MM:SS,mmm`.
public enum CaptionTime {
    public static func format(_ ms: Int64) -> String {
        let v = max(ms, 0)
        let h = v / 3_600_000, m = (v / 60_000) % 60, s = (v / 1000) % 60, f = v % 1000
        return pad(h, 2) + ":" + pad(m, 2) + ":" + pad(s, 2) + "," + pad(f, 3)
    }

    private static func pad(_ v: Int64, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}

/// An incremental writer: feed it events in order, append what it returns to the output.
public protocol CaptionWriter: Sendable {
    /// Text to append for this event (possibly empty).
    mutating func write(_ event: CaptionEvent) -> String
    /// Text to append at the end of the output (possibly empty).
    mutating func finish() -> String
}

/// SubRip, like `ccextractor -out=srt`: numbered from 1 per writer, CRLF, rows not trimmed,
/// end time shown 1 ms before the cue's end.
public struct SRTWriter: CaptionWriter {
    public private(set) var nextNumber: Int

    public init(firstNumber: Int = 1) { nextNumber = firstNumber }

    public mutating func write(_ event: CaptionEvent) -> String {
        guard case .cue(let cue) = event, !cue.rows.isEmpty else { return "" }
        var s = String(nextNumber) + "\r\n"
        nextNumber += 1
        s += CaptionTime.format(cue.start) + " --> " + CaptionTime.format(cue.end - 1) + "\r\n"
        for row in cue.rows { s += row + "\r\n" }
        s += "\r\n"
        return s
    }

    public mutating func finish() -> String { "" }
}

/// Plain transcript, like `ccextractor -out=txt`: one line per caption row, no times.
public struct TXTWriter: CaptionWriter {
    public init() {}

    public mutating func write(_ event: CaptionEvent) -> String {
        guard case .cue(let cue) = event else { return "" }
        var s = ""
        for line in cue.lines { s += line.text + "\r\n" }
        return s
    }

    public mutating func finish() -> String { "" }
}

/// Timed transcript, like `ccextractor -out=ttxt [-xds]`: `start|end|MODE|text`.
public struct TTXTWriter: CaptionWriter {
    /// Whether XDS lines are written (`-xds`).
    public var includeXDS: Bool

    public init(includeXDS: Bool = true) { self.includeXDS = includeXDS }

    public mutating func write(_ event: CaptionEvent) -> String {
        var s = ""
        switch event {
        case .cue(let cue):
            for line in cue.lines {
                s += CaptionTime.format(line.start) + "|" + CaptionTime.format(line.end) + "|" + line.mode.rawValue + "|" + line.text + "\r\n"
            }
        case .xds(let x):
            guard includeXDS else { return "" }
            let prefix = CaptionTime.format(x.start) + "|" + CaptionTime.format(x.end) + "|XDS|"
            for line in x.lines { s += prefix + line + "\r\n" }
        }
        return s
    }

    public mutating func finish() -> String { "" }
}

/// One-shot decoding of a whole recording, like one `ccextractor` run.
public enum CaptionFile {
    /// Decodes `records` and renders them in `format`.
    public static func render<S: Sequence>(records: S, format: CaptionFormat, xds: Bool = false, channel: CaptionChannel = .cc1) -> String where S.Element == RCWTRecord {
        var decoder = CaptionDecoder(options: DecoderOptions(channel: channel, xds: xds && format == .ttxt))
        var writer = makeWriter(format, xds: xds)
        var out = ""
        for record in records {
            for event in decoder.decode(record) { out += writer.write(event) }
        }
        for event in decoder.finish() { out += writer.write(event) }
        out += writer.finish()
        return out
    }

    /// Decodes a whole `.bin` file's bytes.
    public static func render(bin bytes: [UInt8], format: CaptionFormat, xds: Bool = false, channel: CaptionChannel = .cc1) throws(RCWTError) -> String {
        var decoder = CaptionDecoder(options: DecoderOptions(channel: channel, xds: xds && format == .ttxt))
        var writer = makeWriter(format, xds: xds)
        var out = ""
        try RCWTFileReader(bytes: bytes).forEachRecord { record in
            for event in decoder.decode(record) { out += writer.write(event) }
        }
        for event in decoder.finish() { out += writer.write(event) }
        out += writer.finish()
        return out
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
