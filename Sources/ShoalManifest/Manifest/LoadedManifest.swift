import ShoalCore

/// A valid manifest and where it came from, so later checks can point into the file.
public struct LoadedManifest: Sendable, Hashable {
    public var manifest: ServiceManifest
    /// The file as the user named it.
    public var file: String
    /// Where each top-level key's value starts, by YAML key (`"port"`, `"drain_timeout"`).
    public var marks: [String: YAMLMark]

    public init(manifest: ServiceManifest, file: String, marks: [String: YAMLMark] = [:]) {
        self.manifest = manifest
        self.file = file
        self.marks = marks
    }

    /// Where the value of `key` starts, or the file's start if the key was left to its default.
    public func mark(of key: String) -> YAMLMark {
        marks[key] ?? YAMLMark(file: file, line: 1, column: 1)
    }
}
