import Captions
import FuzzSupport

/// libFuzzer entry for the CEA-708 (DTVCC) decoder. The input is a `.bin` recording without its
/// 11-byte header (added here). The first byte picks the read size for the streaming path and
/// whether every service or only service 1 is decoded. Properties (a failed precondition is a
/// finding):
/// - no crash in the packet assembler, the service blocks, the windows or the srt rendering;
/// - the decoder's heap stays within the bound its limits set, after every record;
/// - the offline reader and the server's assembler fed in pieces give the same cues;
/// - a cue names a service 1...63, and its plain lines fit a window row (42 columns).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDTVCC(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let control = data[0]
    let bytes = RCWTHeader.bytes + Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let services = control & 0x01 != 0 ? DTVCCServiceSet.all : DTVCCServiceSet([1])
    let chunk = Int(control >> 1) * 3 + 1
    // As CEA708PropertyTests.heapBound: twice the cell budget, 16 windows with their row tables,
    // 63 services with a full Delay buffer and their array headers, and some slack.
    let heapBound = 2 * 672 * 4 + 16 * (96 + 15 * 8 + 64) + 64 * 72 + 63 * (128 + 96) + 1024

    var whole = DTVCCDecoder(services: services), split = DTVCCDecoder(services: services)
    var wholeCues: [ServiceCue] = [], splitCues: [ServiceCue] = []
    readBothWays(bytes, chunk: chunk, whole: { record in
        wholeCues += whole.decode(record)
        precondition(whole.estimatedHeapBytes <= heapBound, "heap \(whole.estimatedHeapBytes) over \(heapBound)")
    }, split: { splitCues += split.decode($0) })
    wholeCues += whole.finish()
    splitCues += split.finish()
    precondition(wholeCues == splitCues, "cues depend on how the bytes were cut")

    var writers: [any CaptionWriter] = [SRTWriter(), TXTWriter()]
    for c in wholeCues {
        precondition((1...63).contains(c.service))
        for line in c.cue.lines { precondition(line.text.unicodeScalars.count <= 42, "line wider than a window: \(line.text)") }
        for i in writers.indices { _ = writers[i].write(.cue(c.cue)) }
    }
    return 0
}

/// SwiftPM links an executable target's entry point as `FuzzDTVCC_main`: libFuzzer's driver runs from it.
@_cdecl("FuzzDTVCC_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzDTVCC(data, size)
    }
}
