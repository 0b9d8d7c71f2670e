import Captions
import FuzzSupport
import TunerCore

/// libFuzzer entry: the input is a tuner's byte stream. Its first byte picks the read size
/// (1...256 bytes per read) and whether the server wants a password. Properties checked (a
/// failed precondition is a finding):
/// - no crash, no unbounded growth (ASan/libFuzzer's -rss_limit_mb and -malloc_limit_mb);
/// - the same events and the same outcome whether the stream arrives whole or in pieces;
/// - every srt row fits 32 columns and a cue has at most 15 rows.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSession(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let control = data[0]
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let password: String? = control & 0x80 != 0 ? "fuzz" : nil
    let chunk = Int(control & 0x7F) * 2 + 1
    let whole = run(bytes, password: password, chunk: bytes.count + 1)
    let split = run(bytes, password: password, chunk: chunk)
    precondition(whole.closed == split.closed, "outcome depends on the split: \(whole.closed) vs \(split.closed)")
    precondition(whole.events == split.events, "events depend on the split")
    return 0
}

private func run(_ bytes: [UInt8], password: String?, chunk: Int) -> (events: [String], closed: String) {
    // Never flushed; naming a program may create folders, under Fuzz/run's scratch folder.
    let settings = SessionSettings(password: password, layout: ArchiveLayout(root: "fuzz-archive"))
    var session = TunerSession(tuner: "fuzz", settings: settings, clock: { 1_700_000_000_000 })
    var events: [String] = []
    var index = 0
    while index < bytes.count {
        let end = min(bytes.count, index + chunk)
        do throws(SessionClose) {
            try session.receive(bytes[index..<end]) { event in
                if case .cue(let cue, _) = event {
                    precondition(cue.rows.count <= 15, "\(cue.rows.count) rows")
                    for row in cue.rows { precondition(Cue.visibleColumns(row) <= 32, "row wider than 32 columns: \(row)") }
                }
                events.append("\(event)")
            }
        } catch {
            return (events, error.kind.rawValue)
        }
        index = end
    }
    return (events, "open")
}

/// SwiftPM links an executable target's entry point as `FuzzSession_main`: libFuzzer's driver runs from it.
@_cdecl("FuzzSession_main")
func fuzzerMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runLibFuzzer(argc, argv) { data, size in
        guard let data, size > 0 else { return 0 }
        return fuzzSession(data, size)
    }
}
