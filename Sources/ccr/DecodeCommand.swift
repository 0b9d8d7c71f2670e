import ArgumentParser
import Captions
import Foundation

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

    func validate() throws {
        guard (1...4).contains(channel) else { throw ValidationError("--channel must be 1, 2, 3 or 4") }
    }

    func run() async throws {
        let text = try Self.decode(path: file, format: format.value, xds: xds, channel: CaptionChannel(rawValue: channel)!)
        let data = Data(text.utf8)
        if let output {
            try data.write(to: URL(fileURLWithPath: output))
        } else {
            FileHandle.standardOutput.write(data)
        }
    }

    /// The whole decode as a function, so tests can drive it without a process.
    static func decode(path: String, format: CaptionFormat, xds: Bool, channel: CaptionChannel) throws -> String {
        let url = URL(fileURLWithPath: path)
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: url, options: .mappedIfSafe))
        } catch {
            throw DecodeFailure(message: "cannot read \(path): \(error.localizedDescription)")
        }
        do {
            return try CaptionFile.render(bin: bytes, format: format, xds: xds, channel: channel)
        } catch {
            throw DecodeFailure(message: "\(path): \(error)")
        }
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
