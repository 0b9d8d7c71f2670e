import Captions
import FuzzSupport

/// libFuzzer entry: the input is a `.bin` recording without its 11-byte header (added here, so
/// that the fuzzer spends its time in records). The first byte picks the read size for the
/// streaming path and the channel. Properties checked (a failed precondition is a finding):
/// - no crash in the reader, the assembler, the decoder or the srt/txt/ttxt writers;
/// - the offline reader (`ccr decode`) and the server's assembler fed in pieces give the same events;
/// - every srt row fits 32 columns, a cue has at most 15 rows, transcript lines fit a row.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let control = data[0]
    let bytes = RCWTHeader.bytes + Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let options = DecoderOptions(channel: CaptionChannel(rawValue: Int(control & 0x03) + 1)!, xds: true,
                                 checkParity: control & 0x04 != 0)
    let chunk = Int(control >> 3) * 7 + 1

    var whole = CaptionDecoder(options: options), split = CaptionDecoder(options: options)
    var wholeEvents: [CaptionEvent] = [], splitEvents: [CaptionEvent] = []
    readBothWays(bytes, chunk: chunk, whole: { wholeEvents += whole.decode($0) }, split: { splitEvents += split.decode($0) })
    wholeEvents += whole.finish()
    splitEvents += split.finish()
    precondition(wholeEvents == splitEvents, "events depend on how the bytes were cut")

    var writers: [any CaptionWriter] = CaptionFormat.allCases.map { CaptionFile.makeWriter($0, xds: true) }
    for event in wholeEvents {
        switch event {
        case .cue(let cue):
            precondition(cue.rows.count <= 15 && cue.lines.count <= 15)
            for row in cue.rows { precondition(Cue.visibleColumns(row) <= 32, "row wider than 32 columns: \(row)") }
            for line in cue.lines { precondition(line.text.count <= 32, "line wider than 32 columns: \(line.text)") }
        case .xds(let xds):
            precondition(!xds.lines.isEmpty)
        }
        for i in writers.indices { _ = writers[i].write(event) }
    }
    for i in writers.indices { _ = writers[i].finish() }
    return 0
}

/// SwiftPM links an executable target's entry point as `FuzzDecoder_main`: libFuzzer's driver runs from it.
@_cdecl("FuzzDecoder_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzDecoder(data, size)
    }
}
