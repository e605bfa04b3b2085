import Foundation

/// Finds a manifest's `command`: an absolute path as it is; a name with a `/` relative to the
/// working directory; a bare name beside the running `shoal` executable first (so
/// `shoal-webserver` from the same build is found), then on `PATH`.
public enum ExecutableLookup {
    public static func resolve(_ command: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        let files = FileManager.default
        if command.hasPrefix("/") { return files.isExecutableFile(atPath: command) ? command : nil }
        if command.contains("/") {
            let absolute = files.currentDirectoryPath + "/" + command
            return files.isExecutableFile(atPath: absolute) ? absolute : nil
        }
        let beside = (try? currentExecutable()).map { ($0 as NSString).deletingLastPathComponent }
        let directories = [beside].compactMap { $0 } + (path ?? "").split(separator: ":").map(String.init)
        return directories.lazy.map { $0 + "/" + command }.first { files.isExecutableFile(atPath: $0) }
    }

    /// The running program's own path (for spawning more of itself, e.g. workers).
    public static func currentExecutable() throws -> String {
        try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    }
}
