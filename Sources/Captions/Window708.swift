/// One character cell of a 708 window: a symbol (0 = nothing written) and its pen style.
struct Cell708: Sendable, Hashable {
    var symbol: UInt16
    var style: PenStyle708

    static let empty = Cell708(symbol: 0, style: .standard)
    @inline(__always) var isEmpty: Bool { symbol == 0 }
}

/// The pen attributes the srt output shows, packed in 16 bits: italics, underline and the
/// foreground color (2 bits each of red, green, blue) with a flag saying it was set.
///
/// CCExtractor writes `<font color>` only for a color set by SetPenColor since the window was
/// made or cleared, so "never set" is kept apart from every real color.
struct PenStyle708: Sendable, Hashable {
    private var bits: UInt16

    static let standard = PenStyle708(bits: 0)

    var italic: Bool {
        get { bits & 0x100 != 0 }
        set { bits = newValue ? bits | 0x100 : bits & ~0x100 }
    }
    var underline: Bool {
        get { bits & 0x200 != 0 }
        set { bits = newValue ? bits | 0x200 : bits & ~0x200 }
    }
    /// The foreground color (`00rrggbb`) set by SetPenColor, nil for the default pen.
    var color: UInt8? {
        get { bits & 0x40 != 0 ? UInt8(bits & 0x3F) : nil }
        set { bits = (bits & ~0x7F) | (newValue.map { 0x40 | UInt16($0 & 0x3F) } ?? 0) }
    }
}

/// A caption window (CEA-708-E section 8.4): its definition, its pen and its text.
///
/// Rows are allocated when first written and released when cleared or scrolled off, so a
/// defined but empty window costs its few fields; `allocatedCells` lets the decoder bound the
/// text a hostile stream can make it hold.
struct Window708: Sendable {
    static let maximumRows = 15
    static let maximumColumns = 42

    let id: Int
    var visible = false
    var anchorVertical = 0
    /// Anchors given in percent of the screen rather than in its 75 rows and 210 columns.
    var relative = false
    var anchorHorizontal = 0
    var priority = 0
    private(set) var rowCount = 1
    private(set) var columnCount = 1
    private(set) var penRow = 0
    private(set) var penColumn = 0
    var pen = PenStyle708.standard
    /// One entry per row; an empty array is a row never written.
    private var rows: [[Cell708]] = [[]]

    init(id: Int) { self.id = id }

    /// Applies DefineWindow's parameters (CEA-708-E 8.10.5.2). The text and pen are kept: a
    /// redefinition changes the shape (rows and columns beyond the new size are cut off).
    mutating func define(_ p: ArraySlice<UInt8>) {
        let s = p.startIndex
        priority = Int(p[s] & 0x07)
        relative = p[s + 1] & 0x80 != 0
        anchorVertical = Int(p[s + 1] & 0x7F)
        anchorHorizontal = Int(p[s + 2])
        resize(rows: Int(p[s + 3] & 0x0F) + 1, columns: Int(p[s + 4] & 0x3F) + 1)
    }

    private mutating func resize(rows newRows: Int, columns newColumns: Int) {
        let r = min(newRows, Self.maximumRows), c = min(newColumns, Self.maximumColumns)
        if r < rows.count { rows.removeLast(rows.count - r) }
        while rows.count < r { rows.append([]) }
        if c != columnCount {
            for i in rows.indices where !rows[i].isEmpty {
                if c < rows[i].count { rows[i].removeLast(rows[i].count - c) } else { rows[i] += Array(repeating: .empty, count: c - rows[i].count) }
            }
        }
        rowCount = r
        columnCount = c
        penRow = min(penRow, r - 1)
        penColumn = min(penColumn, c - 1)
    }

    // MARK: text

    /// True when the pen's row has no storage yet (its first symbol allocates `columnCount` cells).
    var penRowNeedsStorage: Bool { rows[penRow].isEmpty }

    /// Writes a symbol at the pen and moves it right. A row's first symbol allocates the row,
    /// unless `mayAllocate` is false (the decoder's cell budget is spent): then it is dropped.
    @discardableResult
    mutating func put(_ symbol: UInt16, mayAllocate: Bool) -> Bool {
        guard penColumn < columnCount else { return false }
        if rows[penRow].isEmpty {
            guard mayAllocate else { return false }
            rows[penRow] = Array(repeating: .empty, count: columnCount)
        }
        rows[penRow][penColumn] = Cell708(symbol: symbol, style: pen)
        // At the last column the pen stays: more text overwrites that cell (as CCExtractor does).
        if penColumn + 1 < columnCount { penColumn += 1 }
        return true
    }

    /// BS: the pen moves one column left and erases that cell.
    mutating func backspace() {
        guard penColumn > 0 else { return }
        penColumn -= 1
        if !rows[penRow].isEmpty && penColumn < rows[penRow].count { rows[penRow][penColumn] = .empty }
    }

    /// CR: the pen goes to the start of the next row; from the last row the text scrolls up.
    mutating func carriageReturn() {
        penColumn = 0
        if penRow + 1 < rowCount {
            penRow += 1
        } else {
            rows.removeFirst()
            rows.append([])
        }
    }

    /// HCR: the pen goes to the start of its row, which is erased.
    mutating func horizontalCarriageReturn() {
        penColumn = 0
        rows[penRow] = []
    }

    /// FF and ClearWindows: all text erased. FF also homes the pen; ClearWindows leaves it where
    /// it is but resets its style, as CCExtractor 0.94 does.
    mutating func clearText(homePen: Bool) {
        for i in rows.indices { rows[i] = [] }
        if homePen { penRow = 0; penColumn = 0 } else { pen = .standard }
    }

    /// SetPenLocation, kept inside the window.
    mutating func movePen(row: Int, column: Int) {
        penRow = min(row, rowCount - 1)
        penColumn = min(column, columnCount - 1)
    }

    // MARK: reading

    var allocatedCells: Int { rows.reduce(0) { $0 + $1.count } }
    var allocatedRows: Int { rows.reduce(0) { $0 + ($1.isEmpty ? 0 : 1) } }

    /// True when no cell holds a symbol.
    var isBlank: Bool { rows.allSatisfy { $0.allSatisfy(\.isEmpty) } }

    /// The rows that hold at least one symbol, top to bottom, with their index.
    func forEachWrittenRow(_ body: (Int, [Cell708]) -> Void) {
        for (r, row) in rows.enumerated() where row.contains(where: { !$0.isEmpty }) { body(r, row) }
    }

    /// True when a carriage return would scroll the text (the pen is on the last row).
    var carriageReturnScrolls: Bool { penRow + 1 >= rowCount }

    /// The screen row (0...74, the standard's 75 vertical anchor positions) of the window's top row.
    var screenTop: Int { relative ? anchorVertical * 75 / 100 : anchorVertical }
}
