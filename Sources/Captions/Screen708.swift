/// A service's screen as CCExtractor's 708 writer keeps it: the text of the windows copied to it
/// since it was last written, by screen row.
///
/// Windows are copied when they leave the screen or scroll, and the whole screen is written as
/// one cue, then emptied. A window deleted while hidden is copied too, and waits there for the
/// next cue (CCExtractor 0.94 writes it with the next screen; the references show it).
struct Screen708: Sendable {
    /// Written rows, ordered by screen row (window top plus row within the window).
    private var rows: [(row: Int, cells: [Cell708])] = []

    var isEmpty: Bool { rows.isEmpty }
    var cellCount: Int { rows.reduce(0) { $0 + $1.cells.count } }
    var rowCount: Int { rows.count }

    /// Copies a window's written rows; a row already there is replaced.
    mutating func copy(_ window: Window708) {
        let top = window.screenTop
        window.forEachWrittenRow { r, cells in
            let row = top + r
            if let k = rows.firstIndex(where: { $0.row == row }) {
                rows[k].cells = cells
            } else {
                let at = rows.firstIndex { $0.row > row } ?? rows.count
                rows.insert((row, cells), at: at)
            }
        }
    }

    /// The rows as srt text and as plain text, and the screen emptied.
    mutating func take(ccextractorCompatible: Bool) -> [(srt: String, plain: String)] {
        defer { rows = [] }
        return rows.map { Row708Renderer.render($0.cells, ccextractorCompatible: ccextractorCompatible) }
    }
}
