import ShoalCore

/// Turns a parsed YAML document into a ``ServiceManifest``, reporting every problem with its
/// position. The keys, types, defaults and ranges are documented in `docs/manifest.md`.
public enum ManifestDecoder {
    /// Every key a manifest may have, in documentation order.
    public static let keys = [
        "name", "frontend", "command", "args", "env", "port", "health_check", "concurrency",
        "thresholds", "backends", "priority", "weight", "drain_timeout", "protocol", "local", "tls",
    ]

    /// Decodes one manifest. `root` is nil for an empty file. `checkTLSFiles`: load the `tls`
    /// files to see that they serve (only where the front-end runs; the broker and the workers
    /// never use them, and a back-end should not need the key).
    public static func decode(_ root: YAMLNode?, file: String, checkTLSFiles: Bool = true) -> Result<LoadedManifest, DiagnosticList> {
        let draft = draft(root, file: file, checkTLSFiles: checkTLSFiles)
        if let manifest = draft.manifest, draft.diagnostics.isEmpty {
            return .success(manifest)
        }
        return .failure(DiagnosticList(draft.diagnostics))
    }

    /// Decodes what it can. Even a broken manifest yields its name and port when those are
    /// valid, so clashes with other manifests are reported too.
    static func draft(_ root: YAMLNode?, file: String, checkTLSFiles: Bool = true) -> ManifestDraft {
        guard let root else {
            return ManifestDraft(diagnostics: [Diagnostic(file: file, message: "empty manifest: expected a mapping with at least 'name', 'command' and 'port'")])
        }
        guard case .mapping = root.content else {
            return ManifestDraft(diagnostics: [root.mark.diagnostic("expected a mapping of manifest keys to values, found \(root.kindDescription)")])
        }
        // Cannot throw: root is a mapping.
        guard var fields = try? YAMLMappingReader(root, knownKeys: keys) else { return ManifestDraft() }
        var draft = ManifestDraft()

        let name = fields.required("name") { node, _ throws(Diagnostic) in try ManifestValues.serviceName(node) }
        let command = fields.required("command") { node, name throws(Diagnostic) in try ManifestValues.nonEmpty(node, name) }
        let port = fields.required("port") { node, name throws(Diagnostic) in try node.int(name, in: 1...65535) }
        let frontend = fields.optional("frontend") { node, name throws(Diagnostic) in try ManifestValues.hostName(node, name) }
        let arguments = ManifestValues.arguments(&fields)
        let environment = ManifestValues.environment(&fields)
        let healthCheck = fields.optional("health_check") { node, name throws(Diagnostic) in try ManifestValues.path(node, name) }
        let concurrency = fields.optional("concurrency") { node, name throws(Diagnostic) in try node.int(name, in: 1...10_000) }
        let thresholds = ManifestValues.thresholds(&fields)
        let backends = ManifestValues.backends(&fields)
        let priority = fields.optional("priority") { node, name throws(Diagnostic) in try node.int(name, in: 0...100) }
        let weight = fields.optional("weight") { node, name throws(Diagnostic) in try node.int(name, in: 1...1000) }
        let drainTimeout = fields.optional("drain_timeout") { node, name throws(Diagnostic) in try ManifestDuration.read(node, name: name) }
        let serviceProtocol = fields.optional("protocol") { node, name throws(Diagnostic) -> ServiceProtocol in try ManifestValues.choice(node, name) }
        let local = fields.optional("local") { node, name throws(Diagnostic) -> LocalRole in try ManifestValues.choice(node, name) }
        let tls = ManifestTLS.read(&fields, file: file, checkFiles: checkTLSFiles)

        var marks: [String: YAMLMark] = [:]
        for pair in fields.entries {
            if let key = pair.key.keyText { marks[key] = pair.value.mark }
        }
        if let name, let mark = marks["name"] { draft.name = (name, mark) }
        if let port, let mark = marks["port"] { draft.port = (port, mark) }
        draft.diagnostics = fields.diagnostics.sortedByPosition()

        guard draft.diagnostics.isEmpty, let name, let command, let port,
              let arguments, let environment, let thresholds, let backends else { return draft }
        let manifest = ServiceManifest(
            name: name,
            frontend: frontend ?? ServiceManifest.defaultFrontend,
            command: command,
            arguments: arguments,
            environment: environment,
            port: port,
            healthCheckPath: healthCheck ?? "/health",
            concurrency: concurrency ?? 8,
            thresholds: thresholds,
            backends: backends,
            priority: priority ?? 0,
            weight: weight ?? 1,
            drainTimeout: drainTimeout ?? .seconds(30),
            serviceProtocol: serviceProtocol ?? .http,
            local: local ?? .serve,
            tls: tls
        )
        draft.manifest = LoadedManifest(manifest: manifest, file: file, marks: marks)
        return draft
    }
}

/// A manifest decoded as far as it goes.
struct ManifestDraft {
    var manifest: LoadedManifest?
    var name: (value: String, mark: YAMLMark)?
    var port: (value: Int, mark: YAMLMark)?
    var diagnostics: [Diagnostic] = []
}
