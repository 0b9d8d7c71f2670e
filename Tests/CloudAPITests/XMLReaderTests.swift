@testable import CloudAPI
import struct CloudAPI.XMLNode
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import PropertyBased
import SupportKit
import Testing

/// XMLReader (CloudAPI's own reader of AWS answers, issue 19) against random documents: each is
/// generated from a known tree, written with every form the reader supports (declaration,
/// comments, processing instructions, attributes in both quotes, prefixes, the five entities,
/// decimal and hex character references, CDATA, self-closing tags, mixed whitespace), and must
/// read back as that tree; Foundation's XMLParser (libxml2) must read the same tree, so the
/// generator writes real XML. Every proper prefix of a document, and a document with a random
/// byte dropped from its markup, must be refused or still read as well-formed XML.
@Suite("XMLReader")
struct XMLReaderTests {
    @Test("random documents read back as the tree they were written from, as XMLParser reads them")
    func randomDocuments() async {
        await propertyCheck(count: 300, input: Gen.int(in: 0...Int.max)) { seed in
            var random = SplitMix64(state: UInt64(seed))
            let tree = RandomXML.tree(&random, depth: 0)
            let text = RandomXML.document(tree, &random)
            let parsed = try? XMLNode.parse(Data(text.utf8))
            #expect(parsed == tree, "seed \(seed):\n\(text)")
            #expect(FoundationTree.parse(Data(text.utf8)) == tree, "XMLParser disagrees with the generator, seed \(seed):\n\(text)")
        }
    }

    @Test("every proper prefix of a document is refused")
    func truncatedDocuments() async {
        await propertyCheck(count: 25, input: Gen.int(in: 0...Int.max)) { seed in
            var random = SplitMix64(state: UInt64(seed))
            let tree = RandomXML.tree(&random, depth: 0)
            // Declaration and root only: the root's last byte ends the document.
            var text = Bool.random(using: &random) ? "<?xml version=\"1.0\"?>\n" : ""
            RandomXML.write(tree, &text, &random)
            let bytes = Array(text.utf8)
            let end = bytes.count
            for cut in 0..<end {
                var reader = XMLReader(Data(bytes[..<cut]))
                #expect(throws: XMLReader.Failure.self, "prefix of \(cut) bytes, seed \(seed)") { try reader.document() }
            }
        }
    }

    @Test("a dropped markup byte gives an error or well-formed XML, never a crash")
    func damagedDocuments() async {
        await propertyCheck(count: 200, input: Gen.int(in: 0...Int.max)) { seed in
            var random = SplitMix64(state: UInt64(seed))
            let tree = RandomXML.tree(&random, depth: 0)
            var bytes = Array(RandomXML.document(tree, &random).utf8)
            let markup = bytes.indices.filter { "<>/=\"'&;![]-?".utf8.contains(bytes[$0]) }
            bytes.remove(at: markup[Int(random.next() % UInt64(markup.count))])
            let ours = try? XMLNode.parse(Data(bytes))
            if ours != nil {
                // What we accept, libxml2 accepts too (ours is never the laxer reader here).
                #expect(FoundationTree.parse(Data(bytes)) != nil, "accepted what XMLParser refuses, seed \(seed):\n\(String(decoding: bytes, as: UTF8.self))")
            }
        }
    }

    @Test("an AWS error answer, entities, CDATA, prefixes, and clear errors")
    func knownCases() throws {
        let doc = """
            <?xml version="1.0" encoding="UTF-8"?>
            <!-- moto -->
            <ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">
              <Error><Type>Sender</Type><Code>ValidationError</Code>
                <Message>Name &apos;a&lt;b&gt;&amp;&quot;c&quot;&apos; &#233;&#x1F600; <![CDATA[<raw> & ]]]]></Message>
              </Error>
              <aws:RequestId xmlns:aws='x'>r-1</aws:RequestId>
              <Empty/><Also></Also>
            </ErrorResponse>
            """
        let root = try XMLNode.parse(Data(doc.utf8))
        #expect(root.name == "ErrorResponse")
        #expect(root.string("Error/Message") == "Name 'a<b>&\"c\"' é😀 <raw> & ]]")
        #expect(root.string("aws:RequestId") == "r-1")
        #expect(root.string("Empty") == "" && root.string("Also") == "")

        func failure(_ text: String) -> XMLReader.Failure? {
            var reader = XMLReader(Data(text.utf8))
            do { _ = try reader.document(); return nil } catch { return error as? XMLReader.Failure }
        }
        #expect(failure("<a><b></a>") == .mismatchedEndTag(open: "b", close: "a", offset: 6))
        #expect(failure("<a>&nbsp;</a>") == .unknownEntity("nbsp", offset: 3))
        #expect(failure("<a>&#0;</a>") == .badCharacterReference("#0", offset: 3))
        #expect(failure("<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>") == .doctypeNotSupported(offset: 0))
        #expect(failure("") == .noRootElement)
        #expect(failure("<a/><b/>") == .contentAfterRoot(offset: 4))
        #expect(failure(String(decoding: [0x3C, 0x61, 0x3E, 0xFF, 0x3C, 0x2F, 0x61, 0x3E], as: UTF8.self)) == nil)  // U+FFFD, valid
        var invalid = XMLReader(Data([0x3C, 0x61, 0x3E, 0xFF, 0x3C, 0x2F, 0x61, 0x3E]))
        #expect(throws: XMLReader.Failure.invalidUTF8(offset: 4)) { try invalid.document() }
        #expect(failure("<a>x]]>y</a>") == .cdataEndInText(offset: 4))
        #expect(failure("<a><!-- x -- y --></a>") == .doubleHyphenInComment(offset: 3))
        #expect(failure("<a><!-- x ---></a>") == .doubleHyphenInComment(offset: 3))
        // Nesting: AWS's few levels are read, a hostile depth is refused before anything recurses.
        func nested(_ depth: Int) -> String { String(repeating: "<d>", count: depth) + String(repeating: "</d>", count: depth) }
        #expect(try XMLNode.parse(Data(nested(XMLReader.maxDepth).utf8)).name == "d")
        #expect(failure(nested(100_000)) == .tooDeep(limit: XMLReader.maxDepth, offset: 3 * XMLReader.maxDepth + 3))
        #expect(throws: CloudError.self) { try XMLNode.parse(Data("<a>".utf8)) }
    }
}

/// Random trees and their XML text.
enum RandomXML {
    static let nameStarts = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
    static let nameRest = nameStarts + Array("0123456789-.")
    /// Text characters, entity-worthy ones and non-ASCII among them.
    static let textCharacters = Array("abc XYZ 019 <>&\"' é€😀\t\n ]-")

    static func name(_ r: inout SplitMix64) -> String {
        func part(_ r: inout SplitMix64) -> String {
            String(nameStarts.randomElement(using: &r)!) + String((0..<Int.random(in: 0...6, using: &r)).map { _ in nameRest.randomElement(using: &r)! })
        }
        return Int.random(in: 0..<5, using: &r) == 0 ? part(&r) + ":" + part(&r) : part(&r)
    }

    static func tree(_ r: inout SplitMix64, depth: Int) -> XMLNode {
        let childCount = depth >= 4 ? 0 : Int.random(in: 0...(depth == 0 ? 4 : 3), using: &r)
        let children = (0..<childCount).map { _ in tree(&r, depth: depth + 1) }
        // Mixed content is not what AWS sends: leaves carry text, inner elements whitespace only.
        var text = ""
        if children.isEmpty {
            text = String((0..<Int.random(in: 0...12, using: &r)).map { _ in textCharacters.randomElement(using: &r)! })
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return XMLNode(name: name(&r), text: text, children: children)
    }

    static func document(_ node: XMLNode, _ r: inout SplitMix64) -> String {
        var out = Bool.random(using: &r) ? "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" : ""
        if Bool.random(using: &r) { out += "<!-- generated, not by AWS -->\n" }
        write(node, &out, &r)
        if Bool.random(using: &r) { out += "\n<!-- after -->\n" }
        return out
    }

    static func write(_ node: XMLNode, _ out: inout String, _ r: inout SplitMix64) {
        out += "<" + node.name
        if let colon = node.name.firstIndex(of: ":") { out += " xmlns:\(node.name[..<colon])=\"urn:x\"" }
        for i in 0..<Int.random(in: 0...2, using: &r) {
            let quote = Bool.random(using: &r) ? "\"" : "'"
            out += " a\(i)=\(quote)v &amp; &lt;x&gt; \(quote == "\"" ? "'" : "\"")\(quote)"
        }
        if node.children.isEmpty && node.text.isEmpty && Bool.random(using: &r) {
            out += Bool.random(using: &r) ? "/>" : " />"
            return
        }
        out += ">"
        if node.children.isEmpty {
            out += Bool.random(using: &r) ? " \n" : ""
            out += escaped(node.text, &r)
        }
        for child in node.children {
            out += [" ", "\n  ", "", "\t"].randomElement(using: &r)!
            if Int.random(in: 0..<6, using: &r) == 0 { out += "<!-- c -->" }
            if Int.random(in: 0..<8, using: &r) == 0 { out += "<?pi data?>" }
            write(child, &out, &r)
        }
        out += "</" + node.name + (Bool.random(using: &r) ? ">" : " >")
    }

    /// `text` with each character written one of the ways XML allows, some runs in CDATA.
    static func escaped(_ text: String, _ r: inout SplitMix64) -> String {
        var out = ""
        for c in text {
            switch (c, Int.random(in: 0..<4, using: &r)) {
            case ("<", _): out += Bool.random(using: &r) ? "&lt;" : "&#60;"
            case ("&", _): out += Bool.random(using: &r) ? "&amp;" : "&#x26;"
            case (">", 0): out += "&gt;"
            case ("\"", 0): out += "&quot;"
            case ("'", 0): out += "&apos;"
            case ("]", _): out += "&#93;"  // a literal "]]>" is not allowed in text
            case (_, 1) where c != "\n" && c != "\t":
                let value = c.unicodeScalars.first!.value
                out += Bool.random(using: &r) ? "&#\(value);" : "&#x\(String(value, radix: 16));"
            case (_, 2) where c != "\n": out += "<![CDATA[\(c)]]>"
            default: out.append(c)
            }
        }
        return out
    }
}

/// The same tree as read by Foundation's XMLParser (libxml2), CDATA included: the oracle.
final class FoundationTree: NSObject, XMLParserDelegate {
    private var stack: [XMLNode] = []
    private var root: XMLNode?

    static func parse(_ data: Data) -> XMLNode? {
        let builder = FoundationTree()
        let parser = XMLParser(data: data)
        parser.delegate = builder
        return parser.parse() ? builder.root : nil
    }

    func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
        stack.append(XMLNode(name: elementName, text: "", children: []))
    }
    func parser(_ parser: XMLParser, foundCharacters string: String) {
        if !stack.isEmpty { stack[stack.count - 1].text += string }
    }
    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        if !stack.isEmpty { stack[stack.count - 1].text += String(decoding: CDATABlock, as: UTF8.self) }
    }
    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
        guard var node = stack.popLast() else { return }
        node.text = node.text.trimmingCharacters(in: .whitespacesAndNewlines)
        if stack.isEmpty { root = node } else { stack[stack.count - 1].children.append(node) }
    }
}
