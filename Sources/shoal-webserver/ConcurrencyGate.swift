import NIOConcurrencyHelpers
import NIOCore

/// At most `limit` requests processed at once; the rest wait in arrival order.
final class ConcurrencyGate: Sendable {
    private struct State {
        var inUse = 0
        var waiting = CircularBuffer<EventLoopPromise<Void>>()
    }

    private let limit: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int) {
        self.limit = limit
    }

    /// Succeeds when the caller may start; every success must be paired with one ``release()``.
    func acquire(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        state.withLockedValue { state in
            if state.inUse < limit {
                state.inUse += 1
                return eventLoop.makeSucceededVoidFuture()
            }
            let promise = eventLoop.makePromise(of: Void.self)
            state.waiting.append(promise)
            return promise.futureResult
        }
    }

    func release() {
        // Hand the slot straight to the next in line, so the count never dips and lets a newcomer jump it.
        let next = state.withLockedValue { state -> EventLoopPromise<Void>? in
            if let next = state.waiting.popFirst() { return next }
            state.inUse -= 1
            return nil
        }
        next?.succeed()
    }
}
