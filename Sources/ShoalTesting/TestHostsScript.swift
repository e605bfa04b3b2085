import Foundation

/// Runs the test-host script (or `ip`) through ``ProcessRunner`` on a thread of its own, so
/// a set-up that takes seconds never blocks one of the few threads async tests share, and with
/// no signal blocked: a child inherits its spawning thread's mask, Swift's concurrency threads
/// block nearly every signal, and a pvmd started with SIGTERM and SIGCHLD blocked neither stops
/// nor notices its tasks' exits.
enum TestHostsScript {
    /// iproute2's `ip`.
    static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/ip"

    static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String],
        timeout: Duration
    ) async throws -> ProcessRunner.Output {
        var merged = ProcessInfo.processInfo.environment
        merged.merge(environment) { _, new in new }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let environment = merged
        return try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                var none = sigset_t()
                sigemptyset(&none)
                pthread_sigmask(SIG_SETMASK, &none, nil)
                continuation.resume(with: Result {
                    try ProcessRunner.run(URL(fileURLWithPath: executable), arguments,
                                          environment: environment, timeout: seconds)
                })
            }
            thread.start()
        }
    }
}
