#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The kinds of file archived for each program: the 608 captions as CCExtractor writes them,
/// the recording itself, and one SubRip file per CEA-708 service the tuner carries.
public enum ArchiveFileKind: Hashable, Sendable {
    case srt, txt, ttxt, bin
    /// CEA-708 service N (1...63) as SubRip: `BASE.svcN.srt`, as `ccextractor --service N`.
    case service(Int)

    /// The files every program has (its `.bin` holds at least the RCWT header).
    public static let standard: [ArchiveFileKind] = [.srt, .txt, .ttxt, .bin]

    public var fileExtension: String {
        switch self {
        case .srt: "srt"
        case .txt: "txt"
        case .ttxt: "ttxt"
        case .bin: "bin"
        case .service(let n): "svc\(n).srt"
        }
    }
}

/// Where archived files go: `ROOT/YYYY/MM/DD/<tuner>/<HHMMSS>-<program-slug>[-N]@<node>.<ext>`
/// with the program's start in UTC, so a person browsing the NFS share finds a day, a tuner, a
/// program, and which repository node recorded it.
///
/// WHY the node in the name: the guide's repository servers share one NFS archive. A tuner that
/// reconnects through the load balancer to another node, or two tuners with one description on
/// two nodes, can start programs of one name in one second; each node only knows its own claims
/// (`ArchiveIO.reserve`), so without the node two nodes would append to the same files. A slug
/// never holds `@`, so names of different nodes never meet. The node is the one the database
/// records (`nodes.hostname`, ccr's `node_name`), so `ccr web` still derives the name.
public struct ArchiveLayout: Sendable {
    public let root: String
    /// The repository node writing (`[server] node_name`); nil: names without a node, as ccr
    /// wrote them before it shared archives (`ccr web` still finds those).
    public let node: String?

    public init(root: String, node: String? = nil) {
        self.root = root.hasSuffix("/") && root.count > 1 ? String(root.dropLast()) : root
        self.node = node
    }

    /// The directory of a tuner's programs that started on `startedAt`'s UTC day.
    public func directory(tuner: String, startedAt: UTCTime) -> String {
        "\(root)/\(startedAt.year)/\(pad2(startedAt.month))/\(pad2(startedAt.day))/\(tuner)"
    }

    /// A tuner's folder: the slug of its description (`wabc-hd`), else of its address
    /// (`tuner-198-51-100-7`): both are in the database, so `ccr web` finds the files by name.
    public static func tunerFolder(description: String?, address: String?) -> String {
        let described = programSlug(description)
        return described != "unnamed" ? described : "tuner-" + programSlug(address)
    }

    /// Path without extension.
    public func basePath(tuner: String, startedAt: UTCTime, slug: String, sequence: Int) -> String {
        let stem = "\(pad2(startedAt.hour))\(pad2(startedAt.minute))\(pad2(startedAt.second))-\(slug)"
        let numbered = sequence > 1 ? "\(stem)-\(sequence)" : stem
        return directory(tuner: tuner, startedAt: startedAt) + "/" + (node.map { "\(numbered)@\(programSlug($0))" } ?? numbered)
    }
}

/// Broken-down UTC wall-clock time (without Foundation: the server process keeps its footprint small).
public struct UTCTime: Sendable, Equatable {
    public var year, month, day, hour, minute, second: Int

    public init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        (self.year, self.month, self.day, self.hour, self.minute, self.second) = (year, month, day, hour, minute, second)
    }

    public init(secondsSinceEpoch: Int) {
        var t = time_t(secondsSinceEpoch)
        var parts = tm()
        gmtime_r(&t, &parts)
        self.init(year: Int(parts.tm_year) + 1900, month: Int(parts.tm_mon) + 1, day: Int(parts.tm_mday),
                  hour: Int(parts.tm_hour), minute: Int(parts.tm_min), second: Int(parts.tm_sec))
    }

    public static func now() -> UTCTime {
        UTCTime(secondsSinceEpoch: Int(time(nil)))
    }
}

@inline(__always) func pad2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }

/// File-name-safe form of a program name: lowercase ASCII letters and digits joined by single
/// dashes, at most 60 characters ("Tudors, The: Episode 208" -> "tudors-the-episode-208").
public func programSlug(_ name: String?) -> String {
    guard let name else { return "unnamed" }
    var out = ""
    var pendingDash = false
    for scalar in name.unicodeScalars {
        let lower = scalar.properties.lowercaseMapping
        if lower.count == 1, let c = lower.unicodeScalars.first, c.isASCII,
           (c >= "a" && c <= "z") || (c >= "0" && c <= "9") {
            if pendingDash && !out.isEmpty { out.append("-") }
            pendingDash = false
            out.unicodeScalars.append(c)
            if out.count >= 60 { break }
        } else {
            pendingDash = true
        }
    }
    return out.isEmpty ? "unnamed" : out
}
