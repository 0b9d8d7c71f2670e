/// Renders one row of 708 window text the way CCExtractor 0.94 writes it with `--out=srt`.
///
/// The row runs from its first to its last written cell; the unwritten cells before it become
/// plain spaces (the text's position in the window), and unwritten cells inside it spaces in the
/// default style. Italics open before the color at the same cell; at the end the color closes
/// before the italics: `<i><font color="#aaaaaa">text</font></i>`. A color is written as
/// `#rrggbb` from its 2-bit components (0, 0x55, 0xaa, 0xff), and only when set by SetPenColor.
///
/// Both texts are built as UTF-8 bytes and made Strings once: a server renders a row at every
/// 708 carriage return of every tuner, and growing two Strings a scalar at a time (with a font
/// tag built from a fresh array of hex digits each time) was most of a 708 cue's cost.
enum Row708Renderer {
    /// The srt text of the row and its plain text (no tags, trailing spaces trimmed).
    static func render(_ cells: [Cell708], ccextractorCompatible: Bool) -> (srt: String, plain: String) {
        guard let first = cells.firstIndex(where: { !$0.isEmpty }),
              let last = cells.lastIndex(where: { !$0.isEmpty }) else { return ("", "") }
        var srt: [UInt8] = [], plain: [UInt8] = []
        srt.reserveCapacity(first + (last - first + 1) * 2 + 32)
        plain.reserveCapacity(first + (last - first + 1) * 2)
        for _ in 0..<first { srt.append(0x20); plain.append(0x20) }
        var italic = false
        var color: UInt8? = nil
        for cell in cells[first...last] {
            let style = cell.style
            if style.italic != italic {
                srt.append(contentsOf: style.italic ? "<i>".utf8 : "</i>".utf8)
                italic = style.italic
            }
            if style.color != color {
                if color != nil { srt.append(contentsOf: "</font>".utf8) }
                if let c = style.color { appendFontTag(c, to: &srt) }
                color = style.color
            }
            let symbol = cell.isEmpty ? 0x20 : cell.symbol
            CharacterSet708.append(symbol, to: &srt, ccextractorCompatible: ccextractorCompatible)
            CharacterSet708.append(symbol, to: &plain, ccextractorCompatible: false)
        }
        if color != nil { srt.append(contentsOf: "</font>".utf8) }
        if italic { srt.append(contentsOf: "</i>".utf8) }
        while plain.last == 0x20 { plain.removeLast() }
        return (String(decoding: srt, as: UTF8.self), String(decoding: plain, as: UTF8.self))
    }

    /// `<font color="#rrggbb">` for a 6-bit color (2 bits each of red, green, blue).
    static func appendFontTag(_ color: UInt8, to out: inout [UInt8]) {
        let hex: StaticString = "0123456789abcdef"
        out.append(contentsOf: "<font color=\"#".utf8)
        hex.withUTF8Buffer { digits in
            for shift in [4, 2, 0] as [UInt8] {
                let v = Int((color >> shift) & 0x03) * 0x55
                out.append(digits[v >> 4]); out.append(digits[v & 0x0F])
            }
        }
        out.append(contentsOf: "\">".utf8)
    }
}
