/// One 15 x 32 caption memory (displayed or non-displayed).
///
/// A cell is a character byte plus an attribute byte (color | font << 4), exposed packed in 16
/// bits. Storage is allocated on first write, and the attribute plane only when a cell is not
/// plain white (most captions never are), so an idle channel costs a few bytes and a busy one
/// about 500. `rowUsed` marks rows that received a character, as CCExtractor does: only those
/// rows are shown in srt.
struct Screen608: Sendable {
    static let rows = 15
    static let columns = 32
    static let cellCount = rows * columns
    /// A blank cell: space, white, regular.
    static let blank: UInt16 = 0x0020

    private var chars: [UInt8] = []
    private var attrs: [UInt8] = []
    var rowUsed: UInt16 = 0
    /// True after a clear (and after a roll-up that left no row); decides when a new caption starts.
    var isEmpty = true

    @inline(__always) func isRowUsed(_ r: Int) -> Bool { rowUsed & (1 << UInt16(r)) != 0 }
    @inline(__always) mutating func setRowUsed(_ r: Int, _ used: Bool) {
        if used { rowUsed |= (1 << UInt16(r)) } else { rowUsed &= ~(1 << UInt16(r)) }
    }

    @inline(__always) func cell(_ r: Int, _ c: Int) -> UInt16 {
        if chars.isEmpty { return Self.blank }
        let i = r * Self.columns + c
        return UInt16(chars[i]) | (attrs.isEmpty ? 0 : UInt16(attrs[i]) << 8)
    }

    @inline(__always) mutating func setCell(_ r: Int, _ c: Int, _ v: UInt16) {
        let i = r * Self.columns + c
        let ch = UInt8(truncatingIfNeeded: v), at = UInt8(truncatingIfNeeded: v >> 8)
        if chars.isEmpty {
            if v == Self.blank { return }
            chars = [UInt8](repeating: 0x20, count: Self.cellCount)
        }
        chars[i] = ch
        if attrs.isEmpty {
            if at == 0 { return }
            attrs = [UInt8](repeating: 0, count: Self.cellCount)
        }
        attrs[i] = at
    }

    /// Erases everything; storage is released (a busy channel re-allocates on its next write).
    mutating func clear() {
        chars = []
        attrs = []
        rowUsed = 0
        isEmpty = true
    }

    /// Blanks one row and marks it unused.
    mutating func clearRow(_ r: Int) {
        let base = r * Self.columns
        if !chars.isEmpty { for c in 0..<Self.columns { chars[base + c] = 0x20 } }
        if !attrs.isEmpty { for c in 0..<Self.columns { attrs[base + c] = 0 } }
        setRowUsed(r, false)
    }

    mutating func copyRow(from src: Int, to dst: Int) {
        if !chars.isEmpty { for c in 0..<Self.columns { chars[dst * Self.columns + c] = chars[src * Self.columns + c] } }
        if !attrs.isEmpty { for c in 0..<Self.columns { attrs[dst * Self.columns + c] = attrs[src * Self.columns + c] } }
        setRowUsed(dst, isRowUsed(src))
    }
}

/// 608 colors (as CCExtractor numbers them) and their srt tags.
enum Color608: UInt8 {
    case white = 0, green, blue, cyan, red, yellow, magenta, userDefined, black, transparent

    /// The opening tag CCExtractor writes for a change to this color ("" for none).
    var fontTag: String {
        switch self {
        case .green: return "<font color=\"#00ff00\">"
        case .blue: return "<font color=\"#0000ff\">"
        case .cyan: return "<font color=\"#00ffff\">"
        case .red: return "<font color=\"#ff0000\">"
        case .yellow: return "<font color=\"#ffff00\">"
        case .magenta: return "<font color=\"#ff00ff\">"
        default: return ""
        }
    }
}

/// Font bits: 1 = italics, 2 = underline.
enum Font608 {
    static let regular: UInt8 = 0
    static let italics: UInt8 = 1
    static let underlined: UInt8 = 2
    static let underlinedItalics: UInt8 = 3
}

/// Renders screen rows the way CCExtractor writes them.
enum RowRenderer {
    /// An srt row: all 32 columns, with `<font>`, `<u>`, `<i>` tags where attributes change,
    /// every open tag closed at the end of the row.
    static func srtRow(_ screen: Screen608, row r: Int, into out: inout [UInt8]) {
        var color = Color608.white
        var underlined = false, italics = false
        var stack: [UInt8] = [] // 'F', 'U', 'I' in opening order
        func closeUpTo(_ tag: UInt8, _ out: inout [UInt8]) {
            while let top = stack.popLast() {
                switch top {
                case UInt8(ascii: "F"): out.append(contentsOf: "</font>".utf8)
                case UInt8(ascii: "U"): out.append(contentsOf: "</u>".utf8); underlined = false
                default: out.append(contentsOf: "</i>".utf8); italics = false
                }
                if top == tag { return }
            }
        }
        var fontOpen = false
        for c in 0..<Screen608.columns {
            let v = screen.cell(r, c)
            let attr = UInt8(v >> 8)
            let its = Color608(rawValue: attr & 0x0F) ?? .white
            if its != color && !(color == .userDefined && its == .white) {
                if fontOpen { closeUpTo(UInt8(ascii: "F"), &out); fontOpen = stack.contains(UInt8(ascii: "F")) }
                let tag = its.fontTag
                if !tag.isEmpty {
                    out.append(contentsOf: tag.utf8)
                    stack.append(UInt8(ascii: "F"))
                    fontOpen = true
                }
                color = its
            }
            let font = attr >> 4
            let isU = font & Font608.underlined != 0
            if isU && !underlined { out.append(contentsOf: "<u>".utf8); stack.append(UInt8(ascii: "U")); underlined = true }
            if !isU && underlined { closeUpTo(UInt8(ascii: "U"), &out); fontOpen = stack.contains(UInt8(ascii: "F")) }
            let isI = font & Font608.italics != 0
            if isI && !italics { out.append(contentsOf: "<i>".utf8); stack.append(UInt8(ascii: "I")); italics = true }
            if !isI && italics { closeUpTo(UInt8(ascii: "I"), &out); fontOpen = stack.contains(UInt8(ascii: "F")) }
            CharacterSet608.append(UInt8(truncatingIfNeeded: v), to: &out)
        }
        while !stack.isEmpty { closeUpTo(0, &out) }
    }

    /// A transcript row: characters up to the last non-blank one, no tags; nil when blank.
    static func transcriptRow(_ screen: Screen608, row r: Int, into out: inout [UInt8]) -> Bool {
        var last = -1
        for c in stride(from: Screen608.columns - 1, through: 0, by: -1) {
            let ch = UInt8(truncatingIfNeeded: screen.cell(r, c))
            if ch != 0x20 && ch != 0x89 { last = c; break }
        }
        if last < 0 { return false }
        for c in 0...last { CharacterSet608.append(UInt8(truncatingIfNeeded: screen.cell(r, c)), to: &out) }
        return true
    }
}
