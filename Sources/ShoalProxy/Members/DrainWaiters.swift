import NIOConcurrencyHelpers

/// Tasks waiting for a count to reach zero: a removed member's in-flight requests, or the relay's
/// while it drains.
///
/// The condition is evaluated under the lock, both by waiters and by ``signal(when:)``, so a
/// waiter can never miss the moment the count reaches zero.
final class DrainWaiters: Sendable {
    private struct State {
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Void, any Error>] = [:]
        /// Waiters cancelled before they got to register.
        var cancelledEarly: Set<Int> = []
    }

    private let state = NIOLockedValueBox(State())

    /// Returns once `isDrained()` holds; throws `CancellationError` if the task is cancelled first.
    func wait(until isDrained: () -> Bool) async throws {
        let id = state.withLockedValue { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Outcome { case waiting, drained, cancelled }
                let outcome = state.withLockedValue { state -> Outcome in
                    if state.cancelledEarly.remove(id) != nil { return .cancelled }
                    if isDrained() { return .drained }
                    state.waiters[id] = continuation
                    return .waiting
                }
                switch outcome {
                case .waiting: break
                case .drained: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let continuation = state.withLockedValue { state -> CheckedContinuation<Void, any Error>? in
                if let continuation = state.waiters.removeValue(forKey: id) { return continuation }
                state.cancelledEarly.insert(id)
                return nil
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// Wakes every waiter if `isDrained()` holds now. Returns whether it held.
    @discardableResult
    func signal(when isDrained: () -> Bool) -> Bool {
        let woken = state.withLockedValue { state -> [CheckedContinuation<Void, any Error>]? in
            guard isDrained() else { return nil }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        guard let woken else { return false }
        for continuation in woken { continuation.resume() }
        return true
    }
}
