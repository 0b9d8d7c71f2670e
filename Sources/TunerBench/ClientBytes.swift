import Captions
import TunerServer

/// Bytes as CCExtractor's `-sendto` client sends them, for the simulated tuners of `ccr-bench`
/// (the latency probes and the abusive tuners), framed with the server's own `BlockCommand`.
public enum ClientBytes {
    /// PASSWORD (empty), CC_DESC, BIN_HEADER: what a client sends before its records.
    public static func preamble(description: String) -> [UInt8] {
        BlockCommand.password.block() + BlockCommand.ccDescription.block(Array(description.utf8))
            + BlockCommand.binHeader.block(RCWTHeader.bytes)
    }

    /// One record as the two BIN_DATA blocks the client splits it into: the 10-byte header
    /// (timestamp, triplet count), then the triplets.
    public static func record(_ timestamp: Int64, _ triplets: [CCTriplet]) -> [UInt8] {
        let record = RCWTRecord(timestamp: timestamp, triplets: triplets).bytes
        return BlockCommand.binData.block(Array(record[0..<10])) + BlockCommand.binData.block(Array(record[10...]))
    }
}
