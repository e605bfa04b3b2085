import CYAML
import ShoalCore

/// Walks a libyaml document into ``YAMLNode``s, refusing cycles, deep nesting and alias bombs.
struct YAMLTreeBuilder {
    let document: UnsafeMutablePointer<yaml_document_t>
    let file: String
    let limits: YAMLLimits
    /// Nodes built so far, counting every expansion of an alias.
    private var count = 0
    /// Collections on the path from the root: meeting one again means an alias cycle.
    private var open: Set<Int32> = []

    init(document: UnsafeMutablePointer<yaml_document_t>, file: String, limits: YAMLLimits) {
        self.document = document
        self.file = file
        self.limits = limits
    }

    mutating func build(id: Int32, depth: Int) throws(Diagnostic) -> YAMLNode {
        guard let node = yaml_document_get_node(document, id) else {
            throw Diagnostic(file: file, message: "invalid YAML: dangling node reference \(id)")
        }
        let mark = YAMLParser.mark(node.pointee.start_mark, file: file)
        count += 1
        guard count <= limits.maxNodes else {
            throw mark.diagnostic(Self.tooManyNodes(limits.maxNodes))
        }
        switch node.pointee.type {
        case YAML_SCALAR_NODE:
            let data = node.pointee.data.scalar
            let text = data.value.map { String(decoding: UnsafeBufferPointer(start: $0, count: data.length), as: UTF8.self) } ?? ""
            return YAMLNode(.scalar(YAMLScalar(text, style: Self.style(data.style))), mark: mark)
        case YAML_SEQUENCE_NODE:
            try enter(id, depth: depth, mark: mark)
            defer { open.remove(id) }
            let items = node.pointee.data.sequence.items
            var children: [YAMLNode] = []
            var item = items.start
            while let current = item, current < items.top {
                children.append(try build(id: current.pointee, depth: depth + 1))
                item = current + 1
            }
            return YAMLNode(.sequence(children), mark: mark)
        case YAML_MAPPING_NODE:
            try enter(id, depth: depth, mark: mark)
            defer { open.remove(id) }
            let pairs = node.pointee.data.mapping.pairs
            var children: [YAMLNode.Pair] = []
            var pair = pairs.start
            while let current = pair, current < pairs.top {
                let key = try build(id: current.pointee.key, depth: depth + 1)
                let value = try build(id: current.pointee.value, depth: depth + 1)
                children.append(YAMLNode.Pair(key: key, value: value))
                pair = current + 1
            }
            return YAMLNode(.mapping(children), mark: mark)
        default:
            throw mark.diagnostic("invalid YAML: empty node")
        }
    }

    /// Depth counts collections only: the root collection is at depth 1.
    private mutating func enter(_ id: Int32, depth: Int, mark: YAMLMark) throws(Diagnostic) {
        guard depth <= limits.maxDepth else {
            // Aliases can nest deeper than the text does; YAMLPrecheck saw only the text.
            throw mark.diagnostic(Self.tooDeep(limits.maxDepth))
        }
        guard open.insert(id).inserted else {
            throw mark.diagnostic("YAML alias refers to a collection that contains it (a cycle)")
        }
    }

    static func tooManyNodes(_ maxNodes: Int) -> String {
        "too many YAML nodes (more than \(maxNodes), counting each use of an alias)"
    }

    static func tooDeep(_ maxDepth: Int) -> String {
        "YAML nested deeper than \(maxDepth) levels"
    }

    private static func style(_ style: yaml_scalar_style_t) -> YAMLScalarStyle {
        switch style {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE: .singleQuoted
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE: .doubleQuoted
        case YAML_LITERAL_SCALAR_STYLE: .literal
        case YAML_FOLDED_SCALAR_STYLE: .folded
        default: .plain
        }
    }
}
