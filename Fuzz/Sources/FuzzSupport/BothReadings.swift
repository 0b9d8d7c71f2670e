import Captions

/// Feeds an RCWT file's records twice: as the offline reader (`ccr decode`) reads them, to
/// `whole`, and as a server re-joins them from pieces of `chunk` bytes, to `split`. Checks what
/// both readings must agree on (a failed precondition is a finding): the assembler accepts what
/// the reader reads, keeps at most one record between pieces, and reports a record cut at the
/// end exactly when the reader does.
public func readBothWays(_ bytes: [UInt8], chunk: Int, whole: (RCWTRecord) -> Void, split: (RCWTRecord) -> Void) {
    var wholeFailed = false
    do throws(RCWTError) {
        try RCWTFileReader(bytes: bytes).forEachRecord { record in whole(record) }
    } catch {
        wholeFailed = true
    }
    var assembler = RCWTRecordAssembler(maxTriplets: 0xFFFF)
    var index = RCWTHeader.count
    do throws(RCWTError) {
        while index < bytes.count {
            let end = min(bytes.count, index + chunk)
            try assembler.append(bytes[index..<end]) { (record: RCWTRecord) throws(RCWTError) in split(record) }
            precondition(assembler.pendingByteCount <= RCWTRecordAssembler.recordHeaderSize + 3 * 0xFFFF)
            index = end
        }
    } catch {
        preconditionFailure("the assembler rejected what the file reader reads: \(error)")
    }
    precondition(wholeFailed == (assembler.bytesNeeded > 0), "reader and assembler disagree on truncation")
}
