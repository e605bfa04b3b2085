import ArgumentParser
import Foundation
import ShoalCore
import ShoalManifest

/// `shoal validate [PATH...]`: checks service manifests without starting anything.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check service manifests: every problem is printed as file:line:column: message.",
        discussion: """
            Each PATH is a manifest file or a directory whose *.yaml and *.yml files are read in \
            name order. Names and ports must be unique across all of them. Prints one line per \
            service and exits 0 when all are valid; otherwise prints every problem to stderr and \
            exits 1. See docs/manifest.md.
            """
    )

    @Argument(help: "Manifest files or directories.")
    var paths: [String] = ["services.d"]

    func run() throws {
        switch ManifestLoader().load(paths: paths) {
        case .failure(let problems):
            for diagnostic in problems.diagnostics {
                printError(diagnostic.description)
            }
            throw ExitCode.failure
        case .success(let manifests) where manifests.isEmpty:
            printError("\(paths.joined(separator: ", ")): no manifests found (*.yaml, *.yml)")
            throw ExitCode.failure
        case .success(let manifests):
            for line in Self.summary(manifests) {
                print(line)
            }
        }
    }

    /// One aligned line per service:
    /// `ok  a        services.d/a.yaml        port 8081  backends 0...3  thresholds 2/6`.
    static func summary(_ manifests: [LoadedManifest]) -> [String] {
        let nameWidth = manifests.map(\.manifest.name.count).max() ?? 0
        let fileWidth = manifests.map(\.file.count).max() ?? 0
        let portWidth = manifests.map { String($0.manifest.port).count }.max() ?? 0
        return manifests.map { loaded in
            let manifest = loaded.manifest
            return "ok  " + pad(manifest.name, nameWidth) + "  " + pad(loaded.file, fileWidth)
                + "  port " + pad(String(manifest.port), portWidth)
                + "  backends \(manifest.backends.min)...\(manifest.backends.max)"
                + "  thresholds \(manifest.thresholds.low)/\(manifest.thresholds.high)"
        }
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text + String(repeating: " ", count: max(0, width - text.count))
    }
}
