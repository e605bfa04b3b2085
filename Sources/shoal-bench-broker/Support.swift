import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Why the benchmark could not measure, in a sentence.
struct BenchError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

/// A fresh directory under the system's temporary directory.
struct TemporaryDirectory {
    let path: String

    init(prefix: String) throws {
        path = NSTemporaryDirectory() + "\(prefix)-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    /// Removes it, unless `BENCH_KEEP=1` asks to keep it (logs, the database).
    func remove() {
        if ProcessInfo.processInfo.environment["BENCH_KEEP"] == "1" {
            FileHandle.standardError.write(Data("shoal-bench-broker: kept \(path)\n".utf8))
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}

/// The point in time by which everything must be done: every wait is bounded by it.
struct Deadline: Sendable {
    let instant: ContinuousClock.Instant

    init(after duration: Duration) {
        instant = .now + duration
    }

    /// The shorter of `limit` and the time left.
    func bounded(_ limit: Duration) -> Duration {
        min(limit, max(.zero, instant - .now))
    }

    func check(_ what: @autoclosure () -> String) throws {
        guard ContinuousClock.now < instant else { throw BenchError("out of time (the overall --timeout) while \(what())") }
    }
}

/// Polls `condition` every `interval` until it holds; false once `limit` (bounded by the
/// deadline) has passed.
func eventually(
    within limit: Duration, deadline: Deadline, every interval: Duration = .milliseconds(100),
    _ condition: () async throws -> Bool
) async throws -> Bool {
    let end = ContinuousClock.now + deadline.bounded(limit)
    while ContinuousClock.now < end {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}
