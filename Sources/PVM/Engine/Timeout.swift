/// Runs `operation`, throwing `PVMError(.timedOut)` if it has not finished after `duration`.
/// `operation` must end promptly when cancelled.
func withTimeout<T: Sendable>(
    _ duration: Duration,
    operation what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: duration)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else {
            throw PVMError(.timedOut, operation: what, detail: "no result after \(duration)")
        }
        return value
    }
}
