import LeanFoundation

/// A parsed XML element: AWS Query answers are small, so a plain tree is the simplest typed
/// view (services then map it into their own value types).
public struct XMLNode: Sendable, Hashable {
    public var name: String
    public var text: String
    public var children: [XMLNode]

    /// First direct child with this name.
    public func child(_ name: String) -> XMLNode? { children.first { $0.name == name } }
    /// Text of a path of direct children ("instanceState/name"), nil when absent.
    public func string(_ path: String) -> String? {
        var node: XMLNode? = self
        for part in path.split(separator: "/") { node = node?.child(String(part)) }
        return node?.text
    }
    public func int(_ path: String) -> Int? { string(path).flatMap { Int($0) } }
    /// The `<item>`/`<member>` children of the list at a path ("groupSet", "IpPermissions").
    public func list(_ path: String) -> [XMLNode] {
        var node: XMLNode? = self
        for part in path.split(separator: "/") { node = node?.child(String(part)) }
        return node?.children.filter { $0.name == "item" || $0.name == "member" } ?? []
    }
    /// Depth-first search for the first element with this name.
    public func first(_ name: String) -> XMLNode? {
        if self.name == name { return self }
        for c in children { if let f = c.first(name) { return f } }
        return nil
    }

    /// The document's root element (`XMLReader`: AWS answers need no libxml2).
    public static func parse(_ data: Data) throws -> XMLNode {
        do {
            var reader = XMLReader(data)
            return try reader.document()
        } catch {
            throw CloudError.unexpected("XML parse error: \(error)")
        }
    }
}
