import ShoalCore

/// Turns a parsed cluster file into the broker's pool, reporting every problem with its
/// position. The keys and ranges are documented in `docs/manifest.md` ("Cluster file").
public enum ClusterDecoder {
    /// Every key the file's root may have.
    public static let keys = ["hosts"]
    /// Every key one host may have.
    public static let hostKeys = ["name", "slots"]

    /// Decodes one cluster file. `root` is nil for an empty file.
    public static func decode(_ root: YAMLNode?, file: String) -> Result<[PoolHost], DiagnosticList> {
        guard let root else {
            return .failure(DiagnosticList([Diagnostic(file: file, message: "empty cluster file: expected a mapping with 'hosts', the list of pool hosts")]))
        }
        guard case .mapping = root.content else {
            return .failure(DiagnosticList([root.mark.diagnostic("expected a mapping with 'hosts', found \(root.kindDescription)")]))
        }
        // Cannot throw: root is a mapping.
        guard var fields = try? YAMLMappingReader(root, knownKeys: keys) else { return .success([]) }
        let hosts = Self.hosts(&fields)
        let diagnostics = fields.diagnostics.sortedByPosition()
        guard diagnostics.isEmpty, let hosts else { return .failure(DiagnosticList(diagnostics)) }
        return .success(hosts)
    }

    /// `hosts`: a non-empty sequence of hosts with distinct names. Every bad host is reported.
    private static func hosts(_ fields: inout YAMLMappingReader) -> [PoolHost]? {
        // `required` records the missing key; the reader only hands the node back.
        guard let node = fields.required("hosts", { node, _ throws(Diagnostic) in node }) else { return nil }
        let items: [YAMLNode]
        switch node.content {
        case .sequence(let sequence): items = sequence
        case .scalar(let scalar) where scalar.value == .null: items = []
        default:
            fields.report(node.mismatch("a sequence of hosts"))
            return nil
        }
        guard !items.isEmpty else {
            fields.report(node.mark.diagnostic("hosts must list at least one host"))
            return nil
        }
        var hosts: [PoolHost] = []
        var ok = true
        // Host names are case-insensitive: `C1` and `c1` are one machine.
        var firstMarks: [String: YAMLMark] = [:]
        for (index, item) in items.enumerated() {
            let (host, name, problems) = Self.host(item, context: "hosts[\(index)]")
            problems.forEach { fields.report($0) }
            ok = ok && host != nil
            // A host with other problems still takes part, so every clash is reported at once.
            guard let name else { continue }
            if let first = firstMarks[name.value.lowercased()] {
                fields.report(name.mark.diagnostic("duplicate host name '\(name.value)' (first at \(first.lineAndColumn))"))
                ok = false
            } else {
                firstMarks[name.value.lowercased()] = name.mark
            }
            if let host { hosts.append(host) }
        }
        return ok ? hosts : nil
    }

    /// One host: `{name, slots}`, or its problems; its name and where it is written whenever
    /// the name itself is valid.
    private static func host(
        _ node: YAMLNode, context: String
    ) -> (host: PoolHost?, name: (value: String, mark: YAMLMark)?, problems: [Diagnostic]) {
        if case .scalar(let scalar) = node.content, case .string(let text) = scalar.value {
            // `- c1` is the likely slip: say how to write it.
            let hint = "expected a mapping with 'name' and optionally 'slots', found \(node.kindDescription); write '- name: \(text)'"
            return (nil, nil, [node.mark.diagnostic(hint)])
        }
        var reader: YAMLMappingReader
        do {
            reader = try YAMLMappingReader(node, context: context, knownKeys: hostKeys)
        } catch {
            return (nil, nil, [error])
        }
        let name = reader.required("name") { node, _ throws(Diagnostic) in try hostName(node) }
        let slots = reader.optional("slots") { node, name throws(Diagnostic) in try node.int(name, in: PoolHost.allowedSlots) }
        var named: (value: String, mark: YAMLMark)?
        if let name, let mark = reader.value(for: "name")?.mark { named = (name, mark) }
        guard reader.diagnostics.isEmpty, let name else { return (nil, named, reader.diagnostics) }
        return (PoolHost(name: name, slots: slots ?? PoolHost.defaultSlots), named, [])
    }

    /// A hostname: 1 to 253 letters, digits, '-' and '.', in dot-separated labels of 1 to 63
    /// characters that neither start nor end with '-' (RFC 1123), so PVM and the resolver take it.
    static func hostName(_ node: YAMLNode) throws(Diagnostic) -> String {
        let name = try node.string()
        guard isHostName(name) else {
            throw node.mark.diagnostic("bad host name \(YAMLNode.quoted(name)): use 1 to 253 letters, digits, '-' and '.', in labels of at most 63 that neither start nor end with '-'")
        }
        return name
    }

    static func isHostName(_ name: String) -> Bool {
        let scalars = name.unicodeScalars
        guard (1...253).contains(scalars.count) else { return false }
        let allowed = scalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "-" || $0 == "."
        }
        guard allowed else { return false }
        return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.count) && label.first != "-" && label.last != "-"
        }
    }
}
