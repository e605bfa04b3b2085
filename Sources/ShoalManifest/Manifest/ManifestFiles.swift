import Foundation
import ShoalCore

/// Expands the paths a user gave into manifest files.
enum ManifestFiles {
    static let extensions = [".yaml", ".yml"]

    /// Files in the order given, each directory's `*.yaml`/`*.yml` (not hidden, not recursive)
    /// sorted by name. A file named twice is loaded once. Missing paths are problems.
    static func list(_ paths: [String]) -> (files: [String], problems: [Diagnostic]) {
        var files: [String] = []
        var problems: [Diagnostic] = []
        var seen: Set<String> = []
        func add(_ file: String) {
            if seen.insert(URL(fileURLWithPath: file).standardizedFileURL.path).inserted {
                files.append(file)
            }
        }
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                problems.append(Diagnostic(file: path, message: "no such file or directory"))
                continue
            }
            guard isDirectory.boolValue else {
                add(path)
                continue
            }
            do {
                let names = try FileManager.default.contentsOfDirectory(atPath: path)
                    .filter { name in !name.hasPrefix(".") && extensions.contains { name.hasSuffix($0) } }
                    .sorted()
                for name in names {
                    let file = path.hasSuffix("/") ? path + name : path + "/" + name
                    var isSubdirectory: ObjCBool = false
                    if FileManager.default.fileExists(atPath: file, isDirectory: &isSubdirectory), !isSubdirectory.boolValue {
                        add(file)
                    }
                }
            } catch {
                problems.append(Diagnostic(file: path, message: "cannot list directory"))
            }
        }
        return (files, problems)
    }
}
