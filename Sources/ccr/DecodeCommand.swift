import ArgumentParser
import Captions
import Store
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `ccr decode FILE.bin`: offline decoding, output like `ccextractor -in=bin -1 -out=...`.
struct DecodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decode an RCWT recording (.bin) to srt, txt or ttxt, byte for byte like CCExtractor.")

    @Argument(help: "The RCWT recording (CCExtractor -out=bin / the raw archive file).")
    var file: String

    @Option(name: .long, help: "Output format: srt, txt or ttxt.")
    var format: CaptionFormatArgument = .srt

    @Flag(name: .long, help: "Include XDS lines (ttxt only, like ccextractor -xds).")
    var xds = false

    @Option(name: .long, help: "Caption channel: 1 to 4 (CC1 is field 1's first channel).")
    var channel: Int = 1

    @Option(name: [.customShort("o"), .long], help: "Write to this file instead of standard output.")
    var output: String?

    @Option(name: .long, help: ArgumentHelp(
        "Decode CEA-708 services instead of 608: N or N,M,... (1 to 63), like ccextractor --service.",
        discussion: "One service: its srt/txt to stdout or -o FILE. Several: -o BASE.EXT writes BASE.svcNN.EXT per service (as CCExtractor writes one file per service); on stdout each service follows a line '==> service N <=='."))
    var service: ServiceListArgument?

    func validate() throws {
        guard (1...4).contains(channel) else { throw ValidationError("--channel must be 1, 2, 3 or 4") }
        if service != nil {
            guard format.value != .ttxt else { throw ValidationError("--service writes srt or txt") }
            guard !xds, channel == 1 else { throw ValidationError("--service cannot be combined with --xds or --channel") }
        }
    }

    func run() async throws {
        if let service {
            try ServiceOutput.write(Self.decodeServices(path: file, services: service.services, format: format.value),
                                    format: format.value, to: output)
            return
        }
        let text = try Self.decode(path: file, format: format.value, xds: xds, channel: CaptionChannel(rawValue: channel)!)
        if let output {
            try Data(text.utf8).write(to: URL(fileURLWithPath: output))
        } else {
            print(text, terminator: "")
        }
    }

    /// The whole decode as a function, so tests can drive it without a process.
    static func decode(path: String, format: CaptionFormat, xds: Bool, channel: CaptionChannel) throws -> String {
        let bytes = try read(path)
        do {
            return try CaptionFile.render(bin: bytes, format: format, xds: xds, channel: channel)
        } catch {
            throw DecodeFailure(message: "\(path): \(error)")
        }
    }

    /// The 708 decode: one text per service, in service order.
    static func decodeServices(path: String, services: DTVCCServiceSet, format: CaptionFormat) throws -> [(service: Int, text: String)] {
        let bytes = try read(path)
        do {
            return try CaptionFile.renderServices(bin: bytes, services: services, format: format)
        } catch {
            throw DecodeFailure(message: "\(path): \(error)")
        }
    }

    private static func read(_ path: String) throws -> [UInt8] {
        do {
            return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe))
        } catch {
            throw DecodeFailure(message: "cannot read \(path): \(fileErrorReason(error))")
        }
    }
}

/// Where `--service` output goes. One service: stdout or the -o file, exactly CCExtractor's srt.
/// Several: one file per service (`out.srt` becomes `out.svc01.srt`, `out.svc02.srt`, like
/// CCExtractor's `.svcNN` names), or on stdout each service after a `==> service N <==` line.
enum ServiceOutput {
    static func write(_ outputs: [(service: Int, text: String)], format: CaptionFormat, to output: String?) throws {
        if outputs.count == 1 {
            let text = outputs[0].text
            if let output { try Data(text.utf8).write(to: URL(fileURLWithPath: output)) } else { print(text, terminator: "") }
            return
        }
        for (service, text) in outputs {
            if let output {
                try Data(text.utf8).write(to: URL(fileURLWithPath: fileName(output, service: service)))
            } else {
                print("==> service \(service) <==\r\n\(text)", terminator: "")
            }
        }
    }

    /// `BASE.EXT` -> `BASE.svcNN.EXT` (`BASE.svcNN` when there is no extension).
    static func fileName(_ output: String, service: Int) -> String {
        let url = URL(fileURLWithPath: output)
        let ext = url.pathExtension
        let tag = "svc" + (service < 10 ? "0" : "") + String(service)
        if ext.isEmpty { return output + "." + tag }
        return url.deletingPathExtension().path + "." + tag + "." + ext
    }
}

/// `--service` values: `N` or `N,M,...`, each from 1 to 63.
struct ServiceListArgument: ExpressibleByArgument, Sendable {
    let services: DTVCCServiceSet
    init?(argument: String) {
        var numbers: [Int] = []
        for part in argument.split(separator: ",", omittingEmptySubsequences: false) {
            let words = part.split(whereSeparator: \.isWhitespace)
            guard words.count == 1, let n = Int(words[0]), (1...63).contains(n) else { return nil }
            numbers.append(n)
        }
        guard !numbers.isEmpty else { return nil }
        services = DTVCCServiceSet(numbers)
    }
}

/// A decode that could not be done, with the reason (printed as `Error: ...`, exit status 1).
struct DecodeFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// `--format` values.
struct CaptionFormatArgument: ExpressibleByArgument, Sendable {
    let value: CaptionFormat
    init?(argument: String) {
        guard let f = CaptionFormat(rawValue: argument.lowercased()) else { return nil }
        value = f
    }
    init(_ v: CaptionFormat) { value = v }
    static let srt = CaptionFormatArgument(.srt)
    var defaultValueDescription: String { value.rawValue }
    static var allValueStrings: [String] { CaptionFormat.allCases.map(\.rawValue) }
}
