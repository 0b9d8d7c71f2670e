import LeanFoundation

/// A reader for the XML that AWS Query APIs answer with, into `XMLNode` trees.
///
/// FoundationXML's parser needs full Foundation (34 MB of ICU data in ccrun) and libxml2; AWS
/// answers use a small part of XML: a declaration, elements with attributes, character data with
/// the five predefined entities and character references, CDATA sections and comments. Namespace
/// prefixes stay part of the element name (`ns:Code`), as XMLParser reports them when it does not
/// process namespaces. An element's text is its own character data (CDATA included), concatenated
/// and trimmed, as `XMLNode` always held it. A DOCTYPE is refused: AWS never sends one, and
/// refusing it means no entity definitions to expand.
struct XMLReader {
    /// What is wrong with a document, and at which byte.
    enum Failure: Error, CustomStringConvertible, Equatable {
        case unexpectedEnd(expecting: String)
        case unexpected(found: String, expecting: String, offset: Int)
        case mismatchedEndTag(open: String, close: String, offset: Int)
        case unknownEntity(String, offset: Int)
        case badCharacterReference(String, offset: Int)
        case doctypeNotSupported(offset: Int)
        case noRootElement
        case contentAfterRoot(offset: Int)
        case invalidUTF8(offset: Int)
        case doubleHyphenInComment(offset: Int)
        case tooDeep(limit: Int, offset: Int)
        case cdataEndInText(offset: Int)

        var description: String {
            switch self {
            case .unexpectedEnd(let expecting): return "document ends early, expecting \(expecting)"
            case .unexpected(let found, let expecting, let offset): return "found \(found) at byte \(offset), expecting \(expecting)"
            case .mismatchedEndTag(let open, let close, let offset): return "</\(close)> at byte \(offset) closes <\(open)>"
            case .unknownEntity(let name, let offset): return "unknown entity &\(name); at byte \(offset)"
            case .badCharacterReference(let text, let offset): return "bad character reference &\(text); at byte \(offset)"
            case .doctypeNotSupported(let offset): return "DOCTYPE at byte \(offset) is not supported"
            case .noRootElement: return "no root element"
            case .contentAfterRoot(let offset): return "content after the root element at byte \(offset)"
            case .invalidUTF8(let offset): return "invalid UTF-8 in text near byte \(offset)"
            case .doubleHyphenInComment(let offset): return "-- inside the comment at byte \(offset)"
            case .cdataEndInText(let offset): return "]]> in text at byte \(offset) (only a CDATA section ends so)"
            case .tooDeep(let limit, let offset): return "elements nested deeper than \(limit) at byte \(offset)"
            }
        }
    }

    /// Deeper nesting is refused: AWS answers nest a few levels, and `XMLNode`'s equality and
    /// deallocation recurse, so a hostile document of 100,000 open elements would overflow the stack.
    static let maxDepth = 256

    private let bytes: [UInt8]
    private var at = 0

    init(_ data: Data) {
        bytes = Array(data)
        // A UTF-8 byte order mark is allowed before the declaration.
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { at = 3 }
    }

    /// The root element; before and after it only the declaration, comments, processing
    /// instructions and whitespace may stand.
    mutating func document() throws -> XMLNode {
        try skipMisc()
        guard at < bytes.count else { throw Failure.noRootElement }
        guard bytes[at] == UInt8(ascii: "<") else { throw unexpected("a root element") }
        let root = try element()
        try skipMisc()
        guard at == bytes.count else { throw Failure.contentAfterRoot(offset: at) }
        return root
    }

    // MARK: - Markup

    /// Whitespace, comments, `<?...?>` between top-level items.
    private mutating func skipMisc() throws {
        while true {
            while at < bytes.count, Self.isSpace(bytes[at]) { at += 1 }
            if starts("<?xml"), at + 5 < bytes.count, Self.isSpace(bytes[at + 5]) {
                // The declaration: pseudo-attributes (version, encoding, standalone), checked as attributes.
                at += 5
                try attributes(closedBy: "?>")
                at += 2
            } else if starts("<?") {
                try skip(past: "?>", what: "?>")
            } else if starts("<!--") {
                try skipComment()
            } else if starts("<!DOCTYPE") || starts("<!doctype") {
                throw Failure.doctypeNotSupported(offset: at)
            } else {
                return
            }
        }
    }

    /// An element being read: its node so far and its raw character data.
    private struct OpenElement {
        var node: XMLNode
        var text: [UInt8] = []
    }

    /// An element at `<`, with its content and end tag. Iterative (a stack of open elements),
    /// so a deeply nested hostile document cannot overflow the call stack.
    private mutating func element() throws -> XMLNode {
        var stack: [OpenElement] = []
        if let root = try startTag(&stack) { return root }
        while true {
            guard at < bytes.count else { throw Failure.unexpectedEnd(expecting: "</\(stack.last!.node.name)>") }
            if bytes[at] != UInt8(ascii: "<") {
                try characterData(into: &stack[stack.count - 1].text)
            } else if starts("<![CDATA[") {
                at += 9
                let end = try find("]]>", what: "]]> ending CDATA")
                stack[stack.count - 1].text += bytes[at..<end]
                at = end + 3
            } else if starts("<!--") {
                try skipComment()
            } else if starts("<?") {
                try skip(past: "?>", what: "?>")
            } else if starts("</") {
                let tagStart = at
                at += 2
                let close = try name()
                while at < bytes.count, Self.isSpace(bytes[at]) { at += 1 }
                guard starts(">") else { throw unexpected("> ending </\(close)") }
                at += 1
                var finished = stack.removeLast()
                guard close == finished.node.name else {
                    throw Failure.mismatchedEndTag(open: finished.node.name, close: close, offset: tagStart)
                }
                finished.node.text = try text(finished.text, near: tagStart)
                if stack.isEmpty { return finished.node }
                stack[stack.count - 1].node.children.append(finished.node)
            } else if starts("<!") {
                throw unexpected("an element, comment or CDATA section")
            } else {
                _ = try startTag(&stack)
            }
        }
    }

    /// A start tag at `<`: pushed onto `stack`, or for `<name/>` added to its parent at once.
    /// Returns the element only when it is a self-closing root (the whole document).
    private mutating func startTag(_ stack: inout [OpenElement]) throws -> XMLNode? {
        at += 1
        let name = try self.name()
        try attributes()
        let selfClosing = starts("/>")
        guard selfClosing || starts(">") else { throw unexpected("> or /> ending <\(name)") }
        at += selfClosing ? 2 : 1
        let node = XMLNode(name: name, text: "", children: [])
        guard selfClosing else {
            guard stack.count < Self.maxDepth else { throw Failure.tooDeep(limit: Self.maxDepth, offset: at) }
            stack.append(OpenElement(node: node))
            return nil
        }
        if stack.isEmpty { return node }
        stack[stack.count - 1].node.children.append(node)
        return nil
    }

    /// An element or attribute name: anything up to whitespace, `/`, `>`, `=`; a prefix stays in it.
    private mutating func name() throws -> String {
        let start = at
        while at < bytes.count, !Self.isSpace(bytes[at]), !"/>=<\"'&".utf8.contains(bytes[at]) { at += 1 }
        guard at > start else { throw at < bytes.count ? unexpected("a name") : Failure.unexpectedEnd(expecting: "a name") }
        guard let name = String(validating: bytes[start..<at], as: UTF8.self) else { throw Failure.invalidUTF8(offset: start) }
        return name
    }

    /// `name="value"` pairs, read and checked, then dropped (XMLNode has no attributes), up to
    /// `>` or `/>` (a start tag) or `closedBy` (the declaration's `?>`).
    private mutating func attributes(closedBy closer: String? = nil) throws {
        while true {
            let hadSpace = at < bytes.count && Self.isSpace(bytes[at])
            while at < bytes.count, Self.isSpace(bytes[at]) { at += 1 }
            if let closer {
                guard at < bytes.count else { throw Failure.unexpectedEnd(expecting: closer) }
                if starts(closer) { return }
            } else {
                guard at < bytes.count else { throw Failure.unexpectedEnd(expecting: "> ending a start tag") }
                if bytes[at] == UInt8(ascii: ">") || starts("/>") { return }
            }
            guard hadSpace else { throw unexpected("whitespace before an attribute") }
            _ = try name()
            while at < bytes.count, Self.isSpace(bytes[at]) { at += 1 }
            guard starts("=") else { throw unexpected("= after an attribute name") }
            at += 1
            while at < bytes.count, Self.isSpace(bytes[at]) { at += 1 }
            guard at < bytes.count else { throw Failure.unexpectedEnd(expecting: "an attribute value") }
            let quote = bytes[at]
            guard quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else { throw unexpected("a quoted attribute value") }
            at += 1
            var value: [UInt8] = []
            while true {
                guard at < bytes.count else { throw Failure.unexpectedEnd(expecting: "the closing quote of an attribute") }
                let b = bytes[at]
                if b == quote { at += 1; break }
                if b == UInt8(ascii: "<") { throw unexpected("no < inside an attribute value") }
                if b == UInt8(ascii: "&") { try reference(into: &value) } else { value.append(b); at += 1 }
            }
        }
    }

    /// Character data up to the next `<`, with references expanded; a literal `]]>` is not allowed.
    private mutating func characterData(into text: inout [UInt8]) throws {
        while at < bytes.count, bytes[at] != UInt8(ascii: "<") {
            if bytes[at] == UInt8(ascii: "&") {
                try reference(into: &text)
                continue
            }
            if bytes[at] == UInt8(ascii: ">"), at >= 2, bytes[at - 1] == UInt8(ascii: "]"), bytes[at - 2] == UInt8(ascii: "]") {
                throw Failure.cdataEndInText(offset: at - 2)
            }
            text.append(bytes[at])
            at += 1
        }
    }

    /// `&name;`, `&#N;` or `&#xH;` at `&`, appended as UTF-8.
    private mutating func reference(into text: inout [UInt8]) throws {
        let start = at
        at += 1
        var end = at
        while end < bytes.count, bytes[end] != UInt8(ascii: ";"), end - at < 32 { end += 1 }
        guard end < bytes.count, bytes[end] == UInt8(ascii: ";") else {
            throw Failure.unknownEntity(String(decoding: bytes[at..<min(end, bytes.count)], as: UTF8.self), offset: start)
        }
        let body = String(decoding: bytes[at..<end], as: UTF8.self)
        at = end + 1
        switch body {
        case "lt": text.append(UInt8(ascii: "<"))
        case "gt": text.append(UInt8(ascii: ">"))
        case "amp": text.append(UInt8(ascii: "&"))
        case "quot": text.append(UInt8(ascii: "\""))
        case "apos": text.append(UInt8(ascii: "'"))
        default:
            guard body.hasPrefix("#") else { throw Failure.unknownEntity(body, offset: start) }
            let digits = body.dropFirst()
            let value = digits.hasPrefix("x") ? UInt32(digits.dropFirst(), radix: 16) : UInt32(digits, radix: 10)
            guard let value, !digits.hasPrefix("x+"), !digits.hasPrefix("+"), let scalar = Unicode.Scalar(value),
                  Self.isXMLChar(scalar) else {
                throw Failure.badCharacterReference(body, offset: start)
            }
            text += Array(String(Character(scalar)).utf8)
        }
    }

    /// A comment at `<!--`; XML allows no `--` inside one.
    private mutating func skipComment() throws {
        let start = at
        at += 4
        let end = try find("-->", what: "--> ending a comment")
        if bytes[at..<end].indices.contains(where: { $0 + 1 < end && bytes[$0] == UInt8(ascii: "-") && bytes[$0 + 1] == UInt8(ascii: "-") })
            || (end > at && bytes[end - 1] == UInt8(ascii: "-")) {
            throw Failure.doubleHyphenInComment(offset: start)
        }
        at = end + 3
    }

    private mutating func skip(past terminator: String, what: String) throws {
        let end = try find(terminator, what: what)
        at = end + terminator.utf8.count
    }

    /// Offset of the next `terminator` at or after `at`.
    private func find(_ terminator: String, what: String) throws -> Int {
        let t = Array(terminator.utf8)
        var i = at
        while i + t.count <= bytes.count {
            if bytes[i] == t[0] && bytes[i..<(i + t.count)].elementsEqual(t) { return i }
            i += 1
        }
        throw Failure.unexpectedEnd(expecting: what)
    }

    private func starts(_ prefix: String) -> Bool {
        let p = prefix.utf8
        return at + p.count <= bytes.count && bytes[at..<(at + p.count)].elementsEqual(p)
    }

    private func unexpected(_ expecting: String) -> Failure {
        guard at < bytes.count else { return .unexpectedEnd(expecting: expecting) }
        let shown = bytes[at] >= 0x20 && bytes[at] < 0x7f ? "'\(Character(Unicode.Scalar(bytes[at])))'" : "byte 0x\(String(bytes[at], radix: 16))"
        return .unexpected(found: shown, expecting: expecting, offset: at)
    }

    /// An element's text: valid UTF-8, trimmed of whitespace and newlines.
    private func text(_ raw: [UInt8], near offset: Int) throws -> String {
        guard let text = String(validating: raw, as: UTF8.self) else { throw Failure.invalidUTF8(offset: offset) }
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    /// XML 1.0's Char production: what a character reference may name.
    private static func isXMLChar(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x9, 0xA, 0xD, 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: return true
        default: return false
        }
    }
}
