import Foundation

/// Runs a program to completion and captures what it wrote, for tests of real executables.
public enum ProcessRunner {
    /// What a finished process left behind.
    public struct Output: Sendable, Hashable {
        /// The exit status, or 128 + the signal number if a signal ended it.
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Problems running a process (not the process failing: that is ``Output/status``).
    public enum Failure: Error, CustomStringConvertible {
        case notFound(String)
        case timedOut(String, seconds: Double)

        public var description: String {
            switch self {
            case .notFound(let what): "not found: \(what)"
            case .timedOut(let what, let seconds): "\(what) did not finish within \(seconds) s"
            }
        }
    }

    /// Runs `executable` with `arguments` and waits for it (killing it after `timeout` seconds).
    /// Output goes to temporary files rather than pipes, so a chatty child can never block on
    /// a full pipe while we wait for it.
    public static func run(
        _ executable: URL,
        _ arguments: [String] = [],
        currentDirectory: URL? = nil,
        environment: [String: String]? = nil,
        timeout: Double = 60
    ) throws -> Output {
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("shoal-run-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout")
        let errURL = scratch.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)
        defer {
            try? outHandle.close()
            try? errHandle.close()
        }

        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = outHandle
        process.standardError = errHandle
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        try process.run()
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            finished.wait()
            throw Failure.timedOut("\(executable.lastPathComponent) \(arguments.joined(separator: " "))", seconds: timeout)
        }
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return Output(
            status: status,
            stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
            stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self)
        )
    }

    /// Runs a product of this package (e.g. `shoal`) built beside the running tests.
    public static func runProduct(
        _ name: String,
        _ arguments: [String] = [],
        currentDirectory: URL? = nil,
        environment: [String: String]? = nil,
        timeout: Double = 60
    ) throws -> Output {
        try run(builtProduct(name), arguments, currentDirectory: currentDirectory, environment: environment, timeout: timeout)
    }

    /// The executable `name` in the build products directory: `$SHOAL_BUILD_DIR` if set, else the
    /// directory of the running test binary (`.build/<triple>/debug/`, where `swift test` puts
    /// every product), looking through an `.xctest` bundle on macOS.
    public static func builtProduct(_ name: String) throws -> URL {
        var directories: [URL] = []
        if let override = ProcessInfo.processInfo.environment["SHOAL_BUILD_DIR"] {
            directories.append(URL(fileURLWithPath: override, isDirectory: true))
        }
        let runningBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        for binary in [runningBinary, URL(fileURLWithPath: CommandLine.arguments.first ?? "")] {
            var directory = binary.deletingLastPathComponent()
            // macOS: .build/debug/X.xctest/Contents/MacOS/X
            while directory.path.contains(".xctest") {
                directory = directory.deletingLastPathComponent()
            }
            directories.append(directory)
        }
        for directory in directories {
            let candidate = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) {
                return candidate
            }
        }
        throw Failure.notFound("built product '\(name)' in \(directories.map(\.path)); run `swift build` first")
    }
}
