import Captions

/// One program being recorded for one tuner: its archive files and the incremental writers
/// that render decoded events into them. A new program gets new writers, so srt numbering
/// restarts at 1 in each program's file.
struct ProgramRecording: Sendable {
    private(set) var files: ProgramFiles
    private(set) var name: String?
    let startedAt: UTCTime
    private var srt = SRTWriter()
    private var txt = TXTWriter()
    private var ttxt = TTXTWriter(includeXDS: true)

    /// Starts a program's files (nothing touches the disk before the first flush). Picks a
    /// file name no earlier program of this tuner used (two programs can start in one second).
    init(layout: ArchiveLayout, tuner: String, name: String?, startedAt: UTCTime, io: any ArchiveIO) {
        self.startedAt = startedAt
        self.name = name
        let base = Self.freeBase(layout: layout, tuner: tuner, name: name, startedAt: startedAt, current: nil, io: io)
        files = ProgramFiles(basePath: base, directory: layout.directory(tuner: tuner, startedAt: startedAt))
        files.append(.bin, RCWTHeader.bytes)
    }

    private static func freeBase(layout: ArchiveLayout, tuner: String, name: String?, startedAt: UTCTime, current: String?,
                                 io: any ArchiveIO) -> String {
        var sequence = 1
        while true {
            let base = layout.basePath(tuner: tuner, startedAt: startedAt, slug: programSlug(name), sequence: sequence)
            if base == current || !io.exists(base: base) { return base }
            sequence += 1
        }
    }

    /// The first program name seen: the files take it (renamed if already on disk).
    mutating func name(_ newName: String, layout: ArchiveLayout, tuner: String, io: any ArchiveIO) throws(ArchiveError) {
        name = newName
        let base = Self.freeBase(layout: layout, tuner: tuner, name: newName, startedAt: startedAt, current: files.basePath, io: io)
        try files.rename(to: base, io: io)
    }

    mutating func record(_ record: RCWTRecordBytes) {
        files.append(.bin, record.bytes)
    }

    mutating func write(_ event: CaptionEvent) {
        let s = srt.write(event)
        if !s.isEmpty { files.append(.srt, s) }
        let t = txt.write(event)
        if !t.isEmpty { files.append(.txt, t) }
        let tt = ttxt.write(event)
        if !tt.isEmpty { files.append(.ttxt, tt) }
    }

    /// The writers' trailers (none today for these formats, but the protocol allows them).
    mutating func finishWriters() {
        let s = srt.finish()
        if !s.isEmpty { files.append(.srt, s) }
        let t = txt.finish()
        if !t.isEmpty { files.append(.txt, t) }
        let tt = ttxt.finish()
        if !tt.isEmpty { files.append(.ttxt, tt) }
    }

    var pendingByteCount: Int { files.pendingByteCount }

    mutating func flush(minimumBytes: Int = 1, to io: any ArchiveIO) throws(ArchiveError) {
        try files.flush(minimumBytes: minimumBytes, to: io)
    }
}
