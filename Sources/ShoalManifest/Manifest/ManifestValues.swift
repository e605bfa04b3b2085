import ShoalCore

/// Readers and checks for the manifest's individual values.
enum ManifestValues {
    /// `[a-z0-9][a-z0-9-]{0,31}`
    static func serviceName(_ node: YAMLNode) throws(Diagnostic) -> String {
        let name = try node.string()
        let allowed = name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "-" }
        guard allowed, (1...32).contains(name.unicodeScalars.count), name.first != "-" else {
            throw node.mark.diagnostic("bad service name \(YAMLNode.quoted(name)): use 1 to 32 lower-case letters, digits and '-', starting with a letter or digit")
        }
        return name
    }

    static func nonEmpty(_ node: YAMLNode, _ name: String) throws(Diagnostic) -> String {
        let text = try node.string()
        guard !text.allSatisfy(\.isWhitespace) else {
            throw node.mark.diagnostic("\(name) must not be empty")
        }
        return text
    }

    static func hostName(_ node: YAMLNode, _ name: String) throws(Diagnostic) -> String {
        let text = try node.string()
        guard !text.isEmpty, !text.contains(where: { $0.isWhitespace || $0 == "/" }) else {
            throw node.mark.diagnostic("\(name) must be a host name, found \(YAMLNode.quoted(text))")
        }
        return text
    }

    /// `http` or `tcp`.
    /// One of an enumeration's raw values (`protocol`, `local`).
    static func choice<Value: RawRepresentable & CaseIterable>(_ node: YAMLNode, _ name: String) throws(Diagnostic) -> Value
    where Value.RawValue == String {
        let text = try node.string()
        guard let value = Value(rawValue: text) else {
            let choices = Value.allCases.map { "'\($0.rawValue)'" }.joined(separator: " or ")
            throw node.mark.diagnostic("\(name) must be \(choices), found \(YAMLNode.quoted(text))")
        }
        return value
    }

    static func path(_ node: YAMLNode, _ name: String) throws(Diagnostic) -> String {
        let text = try node.string()
        guard text.hasPrefix("/"), !text.contains(where: \.isWhitespace) else {
            throw node.mark.diagnostic("\(name) must be a path starting with '/', found \(YAMLNode.quoted(text))")
        }
        return text
    }

    /// `args`: a sequence of scalars, each taken as its text (so `- 1024` is the argument "1024").
    /// Every bad item is reported.
    static func arguments(_ fields: inout YAMLMappingReader) -> [String]? {
        guard let node = fields.value(for: "args") else { return [] }
        guard case .sequence(let items) = node.content else {
            fields.report(node.mismatch("a sequence of strings"))
            return nil
        }
        var arguments: [String] = []
        var ok = true
        for item in items {
            do throws(Diagnostic) {
                arguments.append(try argumentText(item))
            } catch {
                fields.report(error)
                ok = false
            }
        }
        return ok ? arguments : nil
    }

    /// `env`: variable names to values (scalars taken as text). `PORT` is Shoal's to set.
    static func environment(_ fields: inout YAMLMappingReader) -> [String: String]? {
        guard fields.value(for: "env") != nil else { return [:] }
        return fields.nested("env", knownKeys: nil) { env -> [String: String]? in
            var environment: [String: String] = [:]
            var ok = true
            for pair in env.entries {
                let key = pair.key.keyText ?? ""
                if !isEnvironmentName(key) {
                    env.report(pair.key.mark.diagnostic("bad environment variable name \(YAMLNode.quoted(key)): use letters, digits and '_', not starting with a digit"))
                    ok = false
                } else if key == "PORT" {
                    env.report(pair.key.mark.diagnostic("env must not set PORT: Shoal sets it to each instance's port"))
                    ok = false
                }
                do throws(Diagnostic) {
                    environment[key] = try argumentText(pair.value)
                } catch {
                    env.report(error)
                    ok = false
                }
            }
            return ok ? environment : nil
        } ?? nil
    }

    static func thresholds(_ fields: inout YAMLMappingReader) -> LoadThresholds? {
        guard let node = fields.value(for: "thresholds") else { return LoadThresholds() }
        return fields.nested("thresholds", knownKeys: ["low", "high"]) { reader -> LoadThresholds? in
            let defaults = LoadThresholds()
            let low = reader.optional("low") { node, name throws(Diagnostic) in try node.int(name, in: 0...100_000) }
            let high = reader.optional("high") { node, name throws(Diagnostic) in try node.int(name, in: 0...100_000) }
            guard reader.diagnostics.isEmpty else { return nil }
            let result = LoadThresholds(low: low ?? defaults.low, high: high ?? defaults.high)
            guard result.low < result.high else {
                let lowText = "\(result.low)\(low == nil ? ", the default" : "")"
                let highText = "\(result.high)\(high == nil ? ", the default" : "")"
                reader.report(node.mark.diagnostic("thresholds.low (\(lowText)) must be less than thresholds.high (\(highText))"))
                return nil
            }
            return result
        } ?? nil
    }

    static func backends(_ fields: inout YAMLMappingReader) -> BackendRange? {
        guard let node = fields.value(for: "backends") else { return BackendRange() }
        return fields.nested("backends", knownKeys: ["min", "max"]) { reader -> BackendRange? in
            let defaults = BackendRange()
            let min = reader.optional("min") { node, name throws(Diagnostic) in try node.int(name, in: 0...1024) }
            let max = reader.optional("max") { node, name throws(Diagnostic) in try node.int(name, in: 0...1024) }
            guard reader.diagnostics.isEmpty else { return nil }
            let result = BackendRange(min: min ?? defaults.min, max: max ?? defaults.max)
            guard result.min <= result.max else {
                let minText = "\(result.min)\(min == nil ? ", the default" : "")"
                let maxText = "\(result.max)\(max == nil ? ", the default" : "")"
                reader.report(node.mark.diagnostic("backends.min (\(minText)) must not be greater than backends.max (\(maxText))"))
                return nil
            }
            return result
        } ?? nil
    }

    /// A scalar as text, with a hint for the common slip of an unquoted `{port}` (a flow mapping).
    private static func argumentText(_ node: YAMLNode) throws(Diagnostic) -> String {
        if case .mapping(let pairs) = node.content, pairs.count == 1, let key = pairs[0].key.keyText,
           pairs[0].value.scalar?.value == .null {
            throw node.mark.diagnostic("expected a string, found a mapping; quote it: \"{\(key)}\"")
        }
        return try node.text()
    }

    /// `[A-Za-z_][A-Za-z0-9_]*`
    private static func isEnvironmentName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_"
        }
    }
}
