import ArgumentParser
import Captions

/// `ccr decode FILE.bin`: offline decoding, output like `ccextractor -in=bin -1 -out=...`.
struct DecodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "decode", abstract: "Decode an RCWT recording to srt, txt or ttxt.")
}
