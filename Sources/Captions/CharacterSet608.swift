/// The CEA-608 character repertoire as UTF-8.
///
/// Screen cells hold one byte: 0x20...0x7F are the basic set (ASCII with nine substitutions such
/// as 0x2A = á), 0x80...0x8F the special characters (`11 30`...`11 3F`), 0x90...0xAF the extended
/// Spanish/French/misc set (`12 20`...`12 3F`) and 0xB0...0xCF the Portuguese/German/Danish set
/// (`13 20`...`13 3F`). Values from CEA-608-E Annex F (character sets), rendered the way
/// CCExtractor renders them (e.g. the transparent space becomes a plain space).
enum CharacterSet608 {
    /// Unicode scalar for each cell byte 0x00...0xCF (0 = no representation, shown as `?`).
    static let scalars: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 256)
        for c in 0x20...0x7F { t[c] = UInt32(c) }
        // Basic set substitutions.
        t[0x2A] = 0xE1; t[0x5C] = 0xE9; t[0x5E] = 0xED; t[0x5F] = 0xF3; t[0x60] = 0xFA
        t[0x7B] = 0xE7; t[0x7C] = 0xF7; t[0x7D] = 0xD1; t[0x7E] = 0xF1; t[0x7F] = 0x25A0
        // Special characters (11 30 ... 11 3F).
        let special: [UInt32] = [0xAE, 0xB0, 0xBD, 0xBF, 0x2122, 0xA2, 0xA3, 0x266A,
                                 0xE0, 0x20, 0xE8, 0xE2, 0xEA, 0xEE, 0xF4, 0xFB]
        // Extended: Spanish, misc, French (12 20 ... 12 3F).
        let ext12: [UInt32] = [0xC1, 0xC9, 0xD3, 0xDA, 0xDC, 0xFC, 0x27, 0xA1,
                               0x2A, 0x27, 0x2014, 0xA9, 0x2120, 0x2022, 0x201C, 0x201D,
                               0xC0, 0xC2, 0xC7, 0xC8, 0xCA, 0xCB, 0xEB, 0xCE,
                               0xCF, 0xEF, 0xD4, 0xD9, 0xF9, 0xDB, 0xAB, 0xBB]
        // Extended: Portuguese, German, Danish (13 20 ... 13 3F).
        let ext13: [UInt32] = [0xC3, 0xE3, 0xCD, 0xCC, 0xEC, 0xD2, 0xF2, 0xD5,
                               0xF5, 0x7B, 0x7D, 0x5C, 0x5E, 0x5F, 0xA6, 0x7E,
                               0xC4, 0xE4, 0xD6, 0xF6, 0xDF, 0xA5, 0xA4, 0x7C,
                               0xC5, 0xE5, 0xD8, 0xF8, 0x231C, 0x231D, 0x231E, 0x231F]
        for (i, v) in special.enumerated() { t[0x80 + i] = v }
        for (i, v) in ext12.enumerated() { t[0x90 + i] = v }
        for (i, v) in ext13.enumerated() { t[0xB0 + i] = v }
        return t
    }()

    /// UTF-8 bytes of every cell byte, flattened: `utf8[c*4 ..< c*4 + utf8Count[c]]`.
    static let utf8: (bytes: [UInt8], counts: [UInt8]) = {
        var bytes = [UInt8](repeating: 0, count: 256 * 4)
        var counts = [UInt8](repeating: 0, count: 256)
        for c in 0..<256 {
            let v = scalars[c]
            let scalar = v == 0 ? Unicode.Scalar(UInt8(ascii: "?")) : Unicode.Scalar(v)!
            let encoded = Array(String(Character(scalar)).utf8)
            for (k, b) in encoded.enumerated() { bytes[c * 4 + k] = b }
            counts[c] = UInt8(encoded.count)
        }
        return (bytes, counts)
    }()

    /// Appends the UTF-8 form of cell byte `c`.
    @inline(__always)
    static func append(_ c: UInt8, to out: inout [UInt8]) {
        let i = Int(c)
        let n = Int(utf8.counts[i])
        if n == 1 { out.append(utf8.bytes[i * 4]); return }
        for k in 0..<n { out.append(utf8.bytes[i * 4 + k]) }
    }
}
