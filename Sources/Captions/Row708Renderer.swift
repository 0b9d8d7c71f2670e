/// Renders one row of 708 window text the way CCExtractor 0.94 writes it with `--out=srt`.
///
/// The row runs from its first to its last written cell; the unwritten cells before it become
/// plain spaces (the text's position in the window), and unwritten cells inside it spaces in the
/// default style. Italics open before the color at the same cell; at the end the color closes
/// before the italics: `<i><font color="#aaaaaa">text</font></i>`. A color is written as
/// `#rrggbb` from its 2-bit components (0, 0x55, 0xaa, 0xff), and only when set by SetPenColor.
enum Row708Renderer {
    /// The srt text of the row and its plain text (no tags, trailing spaces trimmed).
    static func render(_ cells: [Cell708], ccextractorCompatible: Bool) -> (srt: String, plain: String) {
        guard let first = cells.firstIndex(where: { !$0.isEmpty }),
              let last = cells.lastIndex(where: { !$0.isEmpty }) else { return ("", "") }
        var srt = String(repeating: " ", count: first)
        var plain = srt
        var italic = false
        var color: UInt8? = nil
        for cell in cells[first...last] {
            let style = cell.style
            if style.italic != italic {
                srt += style.italic ? "<i>" : "</i>"
                italic = style.italic
            }
            if style.color != color {
                if color != nil { srt += "</font>" }
                if let c = style.color { srt += fontTag(c) }
                color = style.color
            }
            let symbol = cell.isEmpty ? 0x20 : cell.symbol
            CharacterSet708.append(symbol, to: &srt, ccextractorCompatible: ccextractorCompatible)
            CharacterSet708.append(symbol, to: &plain, ccextractorCompatible: false)
        }
        if color != nil { srt += "</font>" }
        if italic { srt += "</i>" }
        while plain.last == " " { plain.removeLast() }
        return (srt, plain)
    }

    static func fontTag(_ color: UInt8) -> String {
        let hex = Array("0123456789abcdef")
        var tag = "<font color=\"#"
        for shift in [4, 2, 0] as [UInt8] {
            let v = Int((color >> shift) & 0x03) * 0x55
            tag.append(hex[v >> 4]); tag.append(hex[v & 0x0F])
        }
        return tag + "\">"
    }
}
