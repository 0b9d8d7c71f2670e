import Captions
import ServerFiles

/// One program being recorded for one tuner: its archive files and the incremental writers
/// that render decoded events into them. A new program gets new writers, so srt numbering
/// restarts at 1 in each program's file.
struct ProgramRecording: Sendable {
    private(set) var files: ProgramFiles
    private(set) var name: String?
    let startedAt: UTCTime
    private var srt = SRTWriter()
    /// One SubRip writer per CEA-708 service seen in this program (numbering per file).
    private var serviceWriters: [Int: SRTWriter] = [:]
    private var txt = TXTWriter()
    private var ttxt = TTXTWriter(includeXDS: true)

    /// Starts a program's files (nothing touches the disk before the first flush). Claims a
    /// file name no other program uses (two programs, of one tuner or of two tuners with one
    /// description, can start in one second); `release(io:)` gives the claim up.
    /// `nextSequence` is the session's memory of the sequences it used, per file stem.
    init(layout: ArchiveLayout, tuner: String, name: String?, startedAt: UTCTime, io: any ArchiveIO, nextSequence: inout [String: Int]) {
        self.startedAt = startedAt
        self.name = name
        let base = Self.claimBase(layout: layout, tuner: tuner, name: name, startedAt: startedAt, io: io, nextSequence: &nextSequence)
        files = ProgramFiles(basePath: base, directory: layout.directory(tuner: tuner, startedAt: startedAt))
        files.append(.bin, RCWTHeader.bytes)
    }

    /// The first free `STEM`, `STEM-2`, ... claimed for this program. The search starts after
    /// the last sequence this session used for the stem, so a tuner alternating two program names
    /// costs one probe per program, not one per earlier program.
    private static func claimBase(layout: ArchiveLayout, tuner: String, name: String?, startedAt: UTCTime, io: any ArchiveIO,
                                  nextSequence: inout [String: Int]) -> String {
        let stem = layout.basePath(tuner: tuner, startedAt: startedAt, slug: programSlug(name), sequence: 1)
        var sequence = nextSequence[stem] ?? 1
        while true {
            let base = layout.basePath(tuner: tuner, startedAt: startedAt, slug: programSlug(name), sequence: sequence)
            sequence += 1
            if io.reserve(base: base) {
                // A few stems only matter (this second's): forget the rest.
                if nextSequence.count > 16 { nextSequence.removeAll() }
                nextSequence[stem] = sequence
                return base
            }
        }
    }

    /// The first program name seen: the files take it (renamed if already on disk).
    mutating func name(_ newName: String, layout: ArchiveLayout, tuner: String, io: any ArchiveIO,
                       nextSequence: inout [String: Int]) throws(ArchiveError) {
        let previous = name
        name = newName
        guard programSlug(newName) != programSlug(previous) else { return }
        let old = files.basePath
        let base = Self.claimBase(layout: layout, tuner: tuner, name: newName, startedAt: startedAt, io: io, nextSequence: &nextSequence)
        defer { io.release(base: old) }
        do {
            try files.rename(to: base, io: io)
        } catch {
            io.release(base: base)
            throw error
        }
    }

    /// Gives up the claim on the file name (after the last flush: the writer's queue or the disk
    /// shows the files from then on).
    func release(io: any ArchiveIO) {
        io.release(base: files.basePath)
    }

    /// Archive bytes of this program so far.
    var bytesAppended: Int { files.bytesAppended }

    mutating func record(_ record: RCWTRecordBytes) {
        files.append(.bin, record.bytes)
    }

    /// Each writer appends its bytes for `event` to its file's buffer in place (an event is
    /// rendered without an array or a String of its own: 89.sendto.bin's XDS made ~2 of each
    /// per record).
    mutating func write(_ event: CaptionEvent) {
        files.append(.srt) { srt.append(event, to: &$0) }
        files.append(.txt) { txt.append(event, to: &$0) }
        files.append(.ttxt) { ttxt.append(event, to: &$0) }
    }

    /// A CEA-708 service's cue, to that service's `.svcN.srt`.
    mutating func write(_ serviceCue: ServiceCue) {
        var writer = serviceWriters[serviceCue.service] ?? SRTWriter()
        let s = writer.write(.cue(serviceCue.cue))
        serviceWriters[serviceCue.service] = writer
        if !s.isEmpty { files.append(.service(serviceCue.service), s) }
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
