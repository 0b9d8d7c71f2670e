import Store
import ServerFiles

/// Which captions of a program a page, download or API call is about: the `service` query
/// parameter. Absent (or 0) is the CEA-608 captions, as every URL meant before ccr stored 708, so
/// old links and bookmarks keep showing what they showed; 1 to 63 a CEA-708 (DTVCC) service.
enum ServiceChoice {
    static let invalid = "service: expected 0 (the CEA-608 captions) or a CEA-708 service from 1 to 63"

    /// The service named by `text`, or nil when it names none.
    static func parse(_ text: String?) -> Int? {
        guard let text, !text.isEmpty else { return CaptionService.cea608 }
        guard let n = Int(text), n == CaptionService.cea608 || CaptionService.dtvcc.contains(n) else { return nil }
        return n
    }

    /// What a visitor reads for a service.
    static func label(_ service: Int) -> String {
        service == CaptionService.cea608 ? "CEA-608" : "CEA-708 service \(service)"
    }

    /// `path` for `service`: with no parameter for 608, so that its URLs stay as they were.
    static func url(_ path: String, service: Int) -> String {
        service == CaptionService.cea608 ? path : "\(path)?service=\(service)"
    }

    /// A line's place in its program's page: `/programs/ID[?service=N]#lN`.
    static func lineURL(_ line: CaptionLine) -> String {
        url("/programs/\(line.programID)", service: line.service) + "#l\(line.sequence)"
    }

    /// The services a program page offers: 608 always (the program's own captions, even when it
    /// has none yet), then each 708 service it has lines of.
    static func offered(_ counts: [ServiceLineCount]) -> [ServiceLineCount] {
        let cea608 = counts.first { $0.service == CaptionService.cea608 } ?? ServiceLineCount(service: CaptionService.cea608, lines: 0)
        return [cea608] + counts.filter { $0.service != CaptionService.cea608 }
    }

    /// The archive's SubRip file of a service, as `ccr serve` names it.
    static func archiveFile(_ service: Int) -> ArchiveFileKind {
        service == CaptionService.cea608 ? .srt : .service(service)
    }
}
