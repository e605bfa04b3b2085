/// Runs `operations` at once and returns the first result; the others are cancelled and not
/// waited for. Unlike a task group's `next()`, this returns even when a loser ignores
/// cancellation (such as a wait for a child process to exit, which ends soon after anyway).
public func firstOf<T: Sendable>(_ operations: [@Sendable () async -> T]) async -> T? {
    let (results, continuation) = AsyncStream.makeStream(of: T.self)
    let tasks = operations.map { operation in
        Task { continuation.yield(await operation()) }
    }
    var iterator = results.makeAsyncIterator()
    let first = await iterator.next()
    tasks.forEach { $0.cancel() }
    continuation.finish()
    return first
}
