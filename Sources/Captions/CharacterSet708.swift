/// The CEA-708 character sets (CEA-708-E section 7.1), as Unicode scalars held in 16-bit cells.
///
/// G0 is ASCII with a music note at 0x7F; G1 is ISO 8859-1; G2 (after EXT1, 0x20...0x7F) holds
/// the transparent spaces, typographic quotes, fractions and box drawing; G3 (after EXT1,
/// 0xA0...0xFF) holds only the [CC] logo, which Unicode lacks. Codes the standard leaves
/// unassigned are shown as `_`, the substitute the standard asks decoders to display.
enum CharacterSet708 {
    /// Shown for unassigned codes and for the [CC] logo.
    static let substitute: UInt16 = 0x5F

    /// G0 (0x20...0x7F) or G1 (0xA0...0xFF).
    @inline(__always) static func basic(_ code: UInt8) -> UInt16 {
        code == 0x7F ? 0x266A : UInt16(code)
    }

    /// G2, from the byte after EXT1 (0x20...0x7F).
    static func g2(_ code: UInt8) -> UInt16 {
        switch code {
        case 0x20, 0x21: return 0x20        // transparent space, non-breaking transparent space
        case 0x25: return 0x2026            // …
        case 0x2A: return 0x0160            // Š
        case 0x2C: return 0x0152            // Œ
        case 0x30: return 0x2588            // █
        case 0x31: return 0x2018            // ‘
        case 0x32: return 0x2019            // ’
        case 0x33: return 0x201C            // “
        case 0x34: return 0x201D            // ”
        case 0x35: return 0x2022            // •
        case 0x39: return 0x2122            // ™
        case 0x3A: return 0x0161            // š
        case 0x3C: return 0x0153            // œ
        case 0x3D: return 0x2120            // ℠
        case 0x3F: return 0x0178            // Ÿ
        case 0x76: return 0x215B            // ⅛
        case 0x77: return 0x215C            // ⅜
        case 0x78: return 0x215D            // ⅝
        case 0x79: return 0x215E            // ⅞
        case 0x7A: return 0x2502            // │
        case 0x7B: return 0x2510            // ┐
        case 0x7C: return 0x2514            // └
        case 0x7D: return 0x2500            // ─
        case 0x7E: return 0x2518            // ┘
        case 0x7F: return 0x250C            // ┌
        default: return substitute
        }
    }

    /// A 16-bit character (P16), kept when it is a printable scalar of the basic plane.
    static func p16(_ hi: UInt8, _ lo: UInt8) -> UInt16 {
        let v = UInt16(hi) << 8 | UInt16(lo)
        if v < 0x20 || (v >= 0x7F && v < 0xA0) || (0xD800...0xDFFF).contains(v) || v == 0xFFFE || v == 0xFFFF { return substitute }
        return v
    }

    /// Appends a cell's symbol as UTF-8 ("_" for a code that is no scalar). With
    /// `ccextractorCompatible`, the music note is written as CCExtractor 0.94 writes it in its 708
    /// srt: the two bytes `&l` (its note symbol, U+266C, written as raw big-endian bytes rather
    /// than UTF-8).
    static func append(_ symbol: UInt16, to out: inout [UInt8], ccextractorCompatible: Bool) {
        if ccextractorCompatible && symbol == 0x266A { out.append(0x26); out.append(0x6C); return }
        UTF8.encode(Unicode.Scalar(symbol) ?? "_") { out.append($0) }
    }
}
