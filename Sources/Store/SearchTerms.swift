// The standard library's canonical decomposition (NFD), which `fold` needs: FoundationEssentials
// has no `folding(options:)`, and full Foundation's brings ICU's data (34 MB) into ccr.
@_spi(_Unicode) import Swift

/// A visitor's search text cut into terms: words and "quoted phrases", each a list of tokens
/// (runs of letters and digits, case- and accent-folded, as SQLite's unicode61 tokenizer cuts them).
struct SearchTerms: Equatable {
    struct Term: Equatable {
        var tokens: [String]
        /// The term as typed (for MySQL's tokenizer, which keeps apostrophes inside words).
        var raw: String
    }
    var terms: [Term]

    /// Tokens of all terms together: what a search's cost grows with.
    var wordCount: Int { terms.reduce(0) { $0 + $1.tokens.count } }

    init(_ text: String) {
        var terms: [Term] = []
        let parts = text.split(separator: "\"", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() {
            let insideQuotes = index % 2 == 1
            if insideQuotes {
                let tokens = Self.tokens(of: String(part)).map(\.token)
                if !tokens.isEmpty { terms.append(Term(tokens: tokens, raw: String(part))) }
            } else {
                for word in part.split(whereSeparator: { $0.isWhitespace }) {
                    let tokens = Self.tokens(of: String(word)).map(\.token)
                    if !tokens.isEmpty { terms.append(Term(tokens: tokens, raw: String(word))) }
                }
            }
        }
        self.terms = terms
    }

    /// Lower case without diacritics, as SQLite's unicode61 tokenizer (remove_diacritics 2) folds:
    /// canonical decomposition, then the combining marks dropped ("É" -> "e"; "ø" and "ß" have
    /// no decomposition and stay).
    static func fold(_ s: Substring) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in s._nfd where scalar.properties.generalCategory != .nonspacingMark { scalars.append(scalar) }
        return String(scalars).lowercased()
    }

    /// Tokens of `text` with their ranges.
    static func tokens(of text: String) -> [(token: String, range: Range<String.Index>)] {
        var result: [(String, Range<String.Index>)] = []
        var start: String.Index?
        var index = text.startIndex
        while index < text.endIndex {
            let c = text[index]
            let isWord = c.isLetter || c.isNumber
            if isWord, start == nil { start = index }
            if !isWord, let s = start {
                result.append((fold(text[s..<index]), s..<index))
                start = nil
            }
            index = text.index(after: index)
        }
        if let s = start { result.append((fold(text[s..<text.endIndex]), s..<text.endIndex)) }
        return result
    }

    /// FTS5 MATCH expression: each term a quoted phrase, all required.
    var fts5Query: String {
        terms.map { "\"" + $0.tokens.joined(separator: " ") + "\"" }.joined(separator: " ")
    }

    /// MySQL boolean-mode expression over the tokens InnoDB indexes (3 characters or more),
    /// or nil when no token is long enough (the REGEXP checks alone then decide).
    func mysqlBooleanQuery(minimumTokenLength: Int = 3) -> String? {
        // InnoDB keeps "don't" and "snake_case" as one word: only plain words go into MATCH.
        let tokens = terms.flatMap { term in
            term.raw.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "'" || $0 == "\u{2019}" || $0 == "_") })
                .filter { !$0.contains("'") && !$0.contains("\u{2019}") && !$0.contains("_") }
                .map { Self.fold($0) }
        }.filter { $0.count >= minimumTokenLength }
        guard !tokens.isEmpty else { return nil }
        return Array(Set(tokens)).sorted().map { "+\"\($0)\"" }.joined(separator: " ")
    }

    /// One regular expression per term matching its tokens as whole words in sequence,
    /// separated by anything that is not a letter or digit (as the FTS tokenizers see it).
    /// REGEXP compares characters, not the column's accent-blind collation, so each letter
    /// matches its accented forms too: "preguntaras" finds "preguntarás", as FTS5 does.
    var mysqlRegexps: [String] {
        let other = "[^\\p{L}\\p{N}]"
        return terms.map { term in
            "(^|\(other))" + term.tokens.map(Self.accentBlind).joined(separator: "\(other)+") + "(\(other)|$)"
        }
    }

    /// The accented forms of the Latin letters (Latin-1 and Latin Extended-A, lower case: the
    /// collation makes REGEXP case-blind).
    static let accentedForms: [Character: String] = [
        "a": "àáâãäåāăą", "c": "çćĉċč", "d": "ďđ", "e": "èéêëēĕėęě", "g": "ĝğġģ", "h": "ĥħ",
        "i": "ìíîïĩīĭįı", "j": "ĵ", "k": "ķ", "l": "ĺļľŀł", "n": "ñńņňŉ", "o": "òóôõöøōŏő",
        "r": "ŕŗř", "s": "śŝşš", "t": "ţťŧ", "u": "ùúûüũūŭůűų", "w": "ŵ", "y": "ýÿŷ", "z": "źżž",
    ]

    /// A folded token as a pattern: each letter with its accented forms in a class.
    static func accentBlind(_ token: String) -> String {
        token.map { c in accentedForms[c].map { "[\(c)\($0)]" } ?? String(c) }.joined()
    }

    /// `text` cut into plain and matching parts for display.
    func snippet(of text: String) -> [SnippetPart] {
        let tokens = Self.tokens(of: text)
        var marked: [Range<String.Index>] = []
        for term in terms where !term.tokens.isEmpty {
            var i = 0
            while i + term.tokens.count <= tokens.count {
                if (0..<term.tokens.count).allSatisfy({ tokens[i + $0].token == term.tokens[$0] }) {
                    marked.append(tokens[i].range.lowerBound..<tokens[i + term.tokens.count - 1].range.upperBound)
                    i += term.tokens.count
                } else {
                    i += 1
                }
            }
        }
        marked.sort { $0.lowerBound < $1.lowerBound }
        var parts: [SnippetPart] = []
        var cursor = text.startIndex
        for range in marked {
            if range.lowerBound < cursor {
                // Overlaps the previous match: extend it.
                if range.upperBound > cursor, var last = parts.popLast() {
                    last.text += text[cursor..<range.upperBound]
                    parts.append(last)
                    cursor = range.upperBound
                }
                continue
            }
            if cursor < range.lowerBound { parts.append(SnippetPart(text: String(text[cursor..<range.lowerBound]), isMatch: false)) }
            parts.append(SnippetPart(text: String(text[range]), isMatch: true))
            cursor = range.upperBound
        }
        if cursor < text.endIndex { parts.append(SnippetPart(text: String(text[cursor...]), isMatch: false)) }
        return parts
    }
}
