/// Bounds that keep hostile or broken input from exhausting memory or time.
public struct YAMLLimits: Sendable, Hashable {
    /// Largest file accepted, in bytes.
    public var maxFileSize: Int
    /// Deepest nesting of sequences and mappings.
    public var maxDepth: Int
    /// Most nodes after expanding aliases; stops "billion laughs" alias bombs.
    public var maxNodes: Int
    /// Most anchors (`&name`); libyaml resolves each alias by a linear search of them.
    public var maxAnchors: Int

    public init(maxFileSize: Int = 1 << 20, maxDepth: Int = 64, maxNodes: Int = 100_000, maxAnchors: Int = 256) {
        self.maxFileSize = maxFileSize
        self.maxDepth = maxDepth
        self.maxNodes = maxNodes
        self.maxAnchors = maxAnchors
    }
}
