import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// Which requests a relay takes: it counts them, can cap how many run at once with a bounded
/// wait queue (the worker, like a Knative queue-proxy), and can drain (take no new ones and say
/// when the last in-flight one finished).
///
/// Without ``Limits`` (the front-end) admission is one atomic add per request. With limits the
/// count, the queue and the drain flag share one lock: the cap spans every event loop, so some
/// shared state is unavoidable, and one short critical section keeps the queue hand-off exact.
public final class Admission: Sendable {
    /// The concurrency cap and its wait queue.
    public struct Limits: Sendable, Hashable {
        /// Requests relayed at once (the manifest's `concurrency`).
        public var maxConcurrent: Int
        /// Requests that may wait for a turn; beyond that, `503`.
        public var maxQueued: Int
        /// How long a request may wait for a turn before it gets `503`.
        public var queueTimeout: TimeAmount

        public init(maxConcurrent: Int, maxQueued: Int, queueTimeout: TimeAmount = .seconds(30)) {
            self.maxConcurrent = max(1, maxConcurrent)
            self.maxQueued = max(0, maxQueued)
            self.queueTimeout = queueTimeout
        }
    }

    enum Decision {
        case admitted
        /// Wait for the promise; cancel with ``cancel(_:)`` if the client gives up.
        case queued(EventLoopPromise<Void>)
        case queueFull
        case draining
    }

    private struct Queue {
        var running = 0
        var waiting = CircularBuffer<EventLoopPromise<Void>>()
    }

    public let limits: Limits?
    /// Running plus waiting requests (both modes), for readers and for the drain condition.
    private let count = Atomic<Int>(0)
    private let draining = Atomic<Bool>(false)
    private let queue = NIOLockedValueBox(Queue())
    private let waiters = DrainWaiters()

    /// `nil` limits: count only, never refuse (except while draining).
    public init(limits: Limits? = nil) {
        self.limits = limits
    }

    /// Requests admitted and not finished, including those waiting in the queue.
    public var inFlight: Int { count.load(ordering: .relaxed) }

    /// Requests admitted and being relayed (not waiting).
    public var running: Int {
        guard limits != nil else { return count.load(ordering: .relaxed) }
        return queue.withLockedValue { $0.running }
    }

    /// Requests waiting for a turn.
    public var queued: Int {
        guard limits != nil else { return 0 }
        return queue.withLockedValue { $0.waiting.count }
    }

    public var isDraining: Bool { draining.load(ordering: .sequentiallyConsistent) }

    /// Stop taking new requests; they get `503` with `Connection: close`. Requests already
    /// admitted or queued still run.
    public func beginDrain() {
        draining.store(true, ordering: .sequentiallyConsistent)
        signalIfDrained()
    }

    /// Takes requests again after a drain (a worker whose drain order was withdrawn).
    public func endDrain() {
        draining.store(false, ordering: .sequentiallyConsistent)
    }

    /// Returns once draining and every admitted or queued request has finished.
    public func drained() async throws {
        try await waiters.wait { isDraining && count.load(ordering: .sequentiallyConsistent) == 0 }
    }

    func admit(on eventLoop: any EventLoop) -> Decision {
        guard let limits else {
            // Count first, check the flag second: beginDrain() does the opposite, so a request is
            // either refused here or counted before drained() can see zero.
            count.add(1, ordering: .sequentiallyConsistent)
            if draining.load(ordering: .sequentiallyConsistent) {
                release()
                return .draining
            }
            return .admitted
        }
        return queue.withLockedValue { queue in
            if draining.load(ordering: .sequentiallyConsistent) { return .draining }
            if queue.running < limits.maxConcurrent {
                queue.running += 1
                count.add(1, ordering: .sequentiallyConsistent)
                return .admitted
            }
            guard queue.waiting.count < limits.maxQueued else { return .queueFull }
            let promise = eventLoop.makePromise(of: Void.self)
            queue.waiting.append(promise)
            count.add(1, ordering: .sequentiallyConsistent)
            return .queued(promise)
        }
    }

    /// One admitted request finished. With limits, its turn goes straight to the next in line.
    func release() {
        if limits != nil {
            let next = queue.withLockedValue { queue -> EventLoopPromise<Void>? in
                if let next = queue.waiting.popFirst() { return next }
                queue.running -= 1
                return nil
            }
            count.subtract(1, ordering: .sequentiallyConsistent)
            // The promise completes on its own loop: the only cross-loop hop, and only for queued requests.
            next?.succeed()
        } else {
            count.subtract(1, ordering: .sequentiallyConsistent)
        }
        signalIfDrained()
    }

    /// Takes a waiting request out of the queue. `false` if its turn already came: then it is
    /// admitted and must be released like any other.
    func cancel(_ ticket: EventLoopPromise<Void>) -> Bool {
        let removed = queue.withLockedValue { queue -> Bool in
            guard let index = queue.waiting.firstIndex(where: { $0.futureResult === ticket.futureResult }) else { return false }
            queue.waiting.remove(at: index)
            count.subtract(1, ordering: .sequentiallyConsistent)
            return true
        }
        if removed {
            // Completed so no promise is dropped unfulfilled; the waiter ignores failures.
            ticket.fail(CancellationError())
            signalIfDrained()
        }
        return removed
    }

    @inline(__always)
    private func signalIfDrained() {
        guard draining.load(ordering: .sequentiallyConsistent) else { return }
        waiters.signal { isDraining && count.load(ordering: .sequentiallyConsistent) == 0 }
    }
}
