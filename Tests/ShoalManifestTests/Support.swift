import Foundation
import ShoalCore
import ShoalManifest

/// The problems `yaml` has as a manifest named `file`, as printed (`file:line:column: message`).
func problems(_ yaml: String, file: String = "m.yaml") -> [String] {
    switch ManifestLoader().load(text: yaml, file: file) {
    case .success: []
    case .failure(let list): list.diagnostics.map(\.description)
    }
}

/// The problems in a failed load, as printed; empty on success.
func failures<T>(_ result: Result<T, DiagnosticList>) -> [String] {
    switch result {
    case .success: []
    case .failure(let list): list.diagnostics.map(\.description)
    }
}

/// The manifest `yaml` decodes to, or its problems (`.get()` throws them, and a test shows them).
func manifest(_ yaml: String, file: String = "m.yaml") -> Result<LoadedManifest, DiagnosticList> {
    ManifestLoader().load(text: yaml, file: file)
}

/// Parses `yaml` into a node tree.
func parse(_ yaml: String, limits: YAMLLimits = YAMLLimits()) throws(Diagnostic) -> YAMLNode? {
    try YAMLParser(limits: limits).parse(yaml, file: "t.yaml")
}

/// The smallest valid manifest, to which a test appends one line.
let minimal = """
    name: web
    command: shoal-webserver
    port: 8080

    """

/// The package's root directory (this file is Tests/ShoalManifestTests/Support.swift).
let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// A fresh temporary directory holding `files` (name → contents); removed by the caller.
func temporaryDirectory(_ files: [String: String]) throws -> URL {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("shoal-manifest-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    for (name, contents) in files {
        let url = directory.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: url)
    }
    return directory
}
