/// Reassembles DTVCC caption channel packets (CEA-708-E section 5) from cc_data triplets.
///
/// A valid cc_type 3 triplet starts a packet; its first byte gives the packet's size
/// (`packet_size_code * 2` bytes, 128 for code 0). Valid cc_type 2 triplets add two bytes each.
/// A packet is handed on as soon as it is complete; a packet still incomplete when the next one
/// starts is dropped (its size says data were lost). Memory is bounded by the 128-byte maximum.
struct DTVCCPacketAssembler: Sendable {
    /// The largest packet (size code 0).
    static let maximumSize = 128

    /// The packet being collected (header included); empty between packets.
    private var bytes: [UInt8] = []
    private var expected = 0
    /// Packets dropped incomplete.
    private(set) var droppedPackets = 0

    /// Handles one DTVCC triplet (`start`: cc_type 3); returns the packet it completes, if any
    /// (the bytes after the header).
    mutating func add(start: Bool, _ d1: UInt8, _ d2: UInt8) -> ArraySlice<UInt8>? {
        if start {
            if !bytes.isEmpty { droppedPackets &+= 1 }
            let code = Int(d1 & 0x3F)
            expected = code == 0 ? Self.maximumSize : code * 2
            bytes.removeAll(keepingCapacity: true)
            bytes.reserveCapacity(expected)
            bytes.append(d1)
            if expected > 1 { bytes.append(d2) }
        } else {
            guard !bytes.isEmpty else { return nil }
            bytes.append(d1)
            if bytes.count < expected { bytes.append(d2) }
        }
        guard bytes.count >= expected else { return nil }
        let packet = bytes[1..<expected]
        // Nothing is kept between packets: an idle decoder holds no buffer.
        bytes = []
        return packet
    }
}

/// The service blocks of one caption channel packet (CEA-708-E section 6.2).
enum DTVCCServiceBlocks {
    /// Calls `body` with each block's service number (1...63) and data. A block header of
    /// service 0 (the null block) ends the packet's blocks; a block that would run past the
    /// packet's end, or an extended header naming a service below 7, is dropped with the rest.
    static func forEach(in packet: ArraySlice<UInt8>, _ body: (Int, ArraySlice<UInt8>) -> Void) {
        var i = packet.startIndex
        while i < packet.endIndex {
            let header = packet[i]
            var service = Int(header >> 5)
            let size = Int(header & 0x1F)
            i += 1
            if service == 0 { return }
            if service == 7 {
                guard i < packet.endIndex else { return }
                service = Int(packet[i] & 0x3F)
                i += 1
                if service < 7 { return }
            }
            guard size <= packet.endIndex - i else { return }
            if size > 0 { body(service, packet[i..<i + size]) }
            i += size
        }
    }
}
