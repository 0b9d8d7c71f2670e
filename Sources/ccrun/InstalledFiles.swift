import LeanFoundation
import StepKit

/// Where ccrun finds what it ships but does not contain: the release `ccr`, the packaging files
/// (init scripts and systemd units) and the commit it was packaged from.
///
/// WHY one search order, and no build unless asked: an installed ccrun has no Swift toolchain and
/// no source tree, and a dry-run must change nothing on this machine (every command used to run
/// `swift build` to find ccr). The order is the command line, then the environment, then beside
/// ccrun's own executable (a build directory, or the package's layout under any root, so a `.deb`
/// extracted anywhere works), then the installed paths. Building ccr is `--build-ccr`, for
/// development in a source checkout.
struct InstalledFiles {
    /// The directory of ccrun's executable, symlinks resolved (`/usr/bin`, `.build-ship/release`).
    let executableDirectory: URL

    /// Where the Debian package puts ccr and the shared files (scripts/package writes them there).
    static let installedCCR = "/usr/lib/ccrun/ccr"
    static let installedShare = "/usr/share/ccrun"

    /// This process's files: the executable from /proc/self/exe (argv[0] may be a bare name found
    /// through PATH, which says nothing about where the file is).
    static func current() -> InstalledFiles {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        return InstalledFiles(executableDirectory: URL(fileURLWithPath: exe).deletingLastPathComponent())
    }

    /// `dir/../rest`, normalised, for the package's layout relative to the executable.
    private func sibling(_ rest: String) -> String {
        executableDirectory.deletingLastPathComponent().appendingPathComponent(rest).standardizedFileURL.path
    }

    /// The ccr candidates after the command line and `$CCR_BINARY`, in order.
    var ccrCandidates: [String] {
        [executableDirectory.appendingPathComponent("ccr").path, sibling("lib/ccrun/ccr"), Self.installedCCR]
    }

    /// The directories that may hold the shared files (packaging/, commit), in order.
    var shareCandidates: [String] {
        [executableDirectory.path, sibling("share/ccrun")] + (sourceCheckout.map { [$0] } ?? []) + [Self.installedShare]
    }

    /// The source checkout this ccrun was built in (its build directory is inside it), if any:
    /// development runs find the checkout's packaging/ and `--build-ccr` builds there.
    var sourceCheckout: String? {
        var dir = executableDirectory
        for _ in 0..<4 {
            dir.deleteLastPathComponent()
            let fm = FileManager.default
            if fm.fileExists(atPath: dir.path + "/Package.swift") && fm.fileExists(atPath: dir.path + "/packaging/init.d/ccr") { return dir.path }
        }
        return nil
    }

    /// The ccr to ship: `explicit` (--ccr-binary, else $CCR_BINARY), else the first candidate that
    /// exists and can run on a host without Swift. A candidate that needs the Swift runtime (a
    /// debug build beside a debug ccrun) is passed over, and named in the error if nothing fits.
    func ccr(explicit: String?) throws(InstalledFilesError) -> String {
        if let explicit, !explicit.isEmpty {
            guard FileManager.default.isReadableFile(atPath: explicit) else { throw .missing(what: "ccr", path: explicit) }
            if let lib = Self.swiftRuntime(neededBy: explicit) { throw .needsSwiftRuntime(path: explicit, library: lib) }
            return explicit
        }
        var looked = ["--ccr-binary", "$CCR_BINARY"]
        for path in ccrCandidates {
            guard FileManager.default.isReadableFile(atPath: path) else { looked.append(path); continue }
            if let lib = Self.swiftRuntime(neededBy: path) { looked.append("\(path) (needs \(lib): not shippable)"); continue }
            return path
        }
        throw .ccrNotFound(looked: looked)
    }

    /// The packaging directory: `explicit` (--packaging), else the first share candidate holding one.
    func packaging(explicit: String?) throws(InstalledFilesError) -> String {
        if let explicit {
            guard FileManager.default.fileExists(atPath: explicit + "/init.d/ccr") else { throw .missing(what: "packaging directory (init.d/ccr in it)", path: explicit) }
            return explicit
        }
        let candidates = shareCandidates.map { $0 + "/packaging" }
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/init.d/ccr") }) { return found }
        throw .packagingNotFound(looked: ["--packaging"] + candidates)
    }

    /// The git commit scripts/package recorded beside the package's files, if this is a packaged build.
    var packagedCommit: String? {
        for dir in shareCandidates where dir != sourceCheckout {
            if let text = try? String(contentsOfFile: dir + "/commit", encoding: .utf8) {
                let commit = text.trimmingCharacters(in: .whitespacesAndNewlines)
                if !commit.isEmpty { return commit }
            }
        }
        return nil
    }

    /// The Swift runtime library `path` loads dynamically, if any (nil also when it cannot tell).
    static func swiftRuntime(neededBy path: String) -> String? {
        ELFDependencies.neededLibraries(ofFile: path)?.first { $0.hasPrefix("libswiftCore") }
    }
}

/// Why ccrun could not find, or could not use, a file it ships.
enum InstalledFilesError: Error, CustomStringConvertible {
    case missing(what: String, path: String)
    case needsSwiftRuntime(path: String, library: String)
    case ccrNotFound(looked: [String])
    case packagingNotFound(looked: [String])
    case noSourceCheckout(executableDirectory: String)

    var description: String {
        switch self {
        case let .missing(what, path):
            "no \(what) at \(path)"
        case let .needsSwiftRuntime(path, library):
            "\(path) loads \(library): target hosts have no Swift runtime. Ship a ccr built by scripts/build-ship "
                + "(scripts/package and scripts/demo build one in .build-ship/release), or pass --build-ccr in a source checkout."
        case let .ccrNotFound(looked):
            "no ccr to ship; looked at: \(looked.joined(separator: ", ")). Install the ccrun package, pass --ccr-binary PATH "
                + "(a release ccr built by scripts/build-ship) or set CCR_BINARY, or pass --build-ccr in a source checkout."
        case let .packagingNotFound(looked):
            "no packaging files (init.d/ccr, systemd units); looked at: \(looked.joined(separator: ", ")). "
                + "Install the ccrun package, or pass --packaging DIR (the packaging/ folder of the source tree)."
        case let .noSourceCheckout(dir):
            "--build-ccr builds in the source checkout ccrun was built in, and \(dir) is not inside one: pass --ccr-binary PATH instead."
        }
    }
}
