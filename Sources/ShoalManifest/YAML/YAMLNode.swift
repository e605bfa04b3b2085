/// One node of a parsed YAML document: a scalar, a sequence or a mapping, with its position.
///
/// Aliases are expanded: an aliased node appears once per use, each copy carrying the position
/// of the anchored original (libyaml keeps no position for the alias itself). Tags are ignored.
public struct YAMLNode: Sendable, Hashable {
    /// What the node holds.
    public enum Content: Sendable, Hashable {
        case scalar(YAMLScalar)
        case sequence([YAMLNode])
        /// Key/value pairs in document order; duplicates are kept (readers report them).
        case mapping([Pair])
    }

    /// One entry of a mapping.
    public struct Pair: Sendable, Hashable {
        public var key: YAMLNode
        public var value: YAMLNode

        public init(key: YAMLNode, value: YAMLNode) {
            self.key = key
            self.value = value
        }
    }

    public var content: Content
    /// Where the node starts; a block mapping or sequence starts at its first key or `-`.
    public var mark: YAMLMark

    public init(_ content: Content, mark: YAMLMark) {
        self.content = content
        self.mark = mark
    }

    /// The scalar, if this node is one.
    public var scalar: YAMLScalar? {
        if case .scalar(let scalar) = content { scalar } else { nil }
    }

    /// The text of a scalar used as a mapping key (`8080:` gives "8080"); nil for collections.
    public var keyText: String? { scalar?.text }
}
