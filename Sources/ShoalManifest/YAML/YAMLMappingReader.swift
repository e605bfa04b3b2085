import ShoalCore

/// Reads the fields of one YAML mapping by key, collecting every problem instead of stopping
/// at the first: unknown keys (with a did-you-mean suggestion), duplicate keys, non-string keys,
/// missing required keys and values that the caller's reader rejects.
///
/// ```swift
/// var fields = try YAMLMappingReader(root, knownKeys: ["port", "name"])
/// let port = fields.required("port") { node, name throws(Diagnostic) in try node.int(name, in: 1...65535) }
/// problems += fields.diagnostics
/// ```
public struct YAMLMappingReader: Sendable {
    /// The mapping node itself; "missing key" problems point at it.
    public let node: YAMLNode
    /// The dotted path of this mapping (`thresholds`), or nil at the root. Prefixes field names.
    public let context: String?
    /// The first occurrence of each key, in document order.
    public private(set) var entries: [YAMLNode.Pair] = []
    /// Every problem found so far, in the order found.
    public private(set) var diagnostics: [Diagnostic] = []
    private var index: [String: Int] = [:]

    /// Reads `node`, which must be a mapping (else the mismatch is thrown).
    /// - Parameter knownKeys: the accepted keys; nil accepts any key (e.g. environment variables).
    public init(_ node: YAMLNode, context: String? = nil, knownKeys: [String]?) throws(Diagnostic) {
        let pairs = try node.mapping()
        self.node = node
        self.context = context
        for pair in pairs {
            guard let key = pair.key.keyText else {
                diagnostics.append(pair.key.mark.diagnostic("expected a string key, found \(pair.key.kindDescription)"))
                continue
            }
            if let first = index[key] {
                let firstMark = entries[first].key.mark
                diagnostics.append(pair.key.mark.diagnostic("duplicate key '\(key)'\(inContext) (first at \(firstMark.lineAndColumn))"))
                continue
            }
            if let knownKeys, !knownKeys.contains(key) {
                diagnostics.append(pair.key.mark.diagnostic(Self.unknownKey(key, context: inContext, knownKeys: knownKeys)))
                continue
            }
            index[key] = entries.count
            entries.append(pair)
        }
    }

    /// The value for `key`, if present.
    public func value(for key: String) -> YAMLNode? {
        index[key].map { entries[$0].value }
    }

    /// The name of `key` for messages: `thresholds.low` inside `thresholds`, `port` at the root.
    public func name(of key: String) -> String {
        context.map { "\($0).\(key)" } ?? key
    }

    /// Reads `key` with `read` if present. Returns nil when absent, or when `read` threw
    /// (the problem is recorded).
    public mutating func optional<T>(_ key: String, _ read: (YAMLNode, _ name: String) throws(Diagnostic) -> T) -> T? {
        guard let value = value(for: key) else { return nil }
        do {
            return try read(value, name(of: key))
        } catch {
            diagnostics.append(error)
            return nil
        }
    }

    /// Like ``optional(_:_:)``, and records `missing required key` at the mapping when absent.
    public mutating func required<T>(_ key: String, _ read: (YAMLNode, _ name: String) throws(Diagnostic) -> T) -> T? {
        guard value(for: key) != nil else {
            report(node.mark.diagnostic("missing required key '\(key)'\(inContext)"))
            return nil
        }
        return optional(key, read)
    }

    /// Records a problem found by the caller (e.g. between two fields).
    public mutating func report(_ diagnostic: Diagnostic) {
        diagnostics.append(diagnostic)
    }

    private var inContext: String {
        context.map { " in \($0)" } ?? ""
    }

    static func unknownKey(_ key: String, context: String, knownKeys: [String]) -> String {
        if let suggestion = Suggestion.closest(to: key, among: knownKeys) {
            return "unknown key '\(key)'\(context) (did you mean '\(suggestion)'?)"
        }
        // A short list helps; a long one buries the message (the docs have it).
        guard knownKeys.count <= 8 else { return "unknown key '\(key)'\(context)" }
        return "unknown key '\(key)'\(context) (known keys: \(knownKeys.joined(separator: ", ")))"
    }
}

extension YAMLMappingReader {
    /// Reads the mapping under `key` with its own reader (context `outer.key`), keeping its
    /// problems with this reader's. Returns nil when absent or not a mapping (recorded).
    public mutating func nested<T>(
        _ key: String,
        knownKeys: [String]?,
        _ read: (inout YAMLMappingReader) -> T
    ) -> T? {
        guard let value = value(for: key) else { return nil }
        do {
            var inner = try YAMLMappingReader(value, context: name(of: key), knownKeys: knownKeys)
            let result = read(&inner)
            diagnostics += inner.diagnostics
            return result
        } catch {
            diagnostics.append(error)
            return nil
        }
    }
}
