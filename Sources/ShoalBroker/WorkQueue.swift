import ServiceLifecycle
import Synchronization

/// Slow work the broker hands off so that no caller waits for it — starting a worker
/// (`pvm_spawn` can take seconds), adding a host back — run as children of one task group that
/// ``run()`` owns: nothing is left running when the broker stops, and tests can wait until
/// everything handed off has finished (``idle()``) instead of polling for it.
public final class WorkQueue: Sendable {
    public typealias Job = @Sendable () async -> Void

    private struct State {
        /// Handed off and not finished yet.
        var pending = 0
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let jobs: AsyncStream<Job>
    private let sink: AsyncStream<Job>.Continuation
    private let state = Mutex(State())

    public init() {
        (jobs, sink) = AsyncStream.makeStream(of: Job.self)
    }

    /// Runs `job` soon, beside the others.
    public func submit(_ job: @escaping Job) {
        state.withLock { $0.pending += 1 }
        sink.yield(job)
    }

    /// Runs the jobs until graceful shutdown or cancellation; jobs under way then finish first.
    /// One runner only (``Broker/run()``, or a test harness standing in for it).
    public func run() async {
        await withDiscardingTaskGroup { group in
            for await job in jobs.cancelOnGracefulShutdown() {
                group.addTask {
                    await job()
                    self.finished()
                }
            }
        }
    }

    /// Returns once every job submitted so far (and any they submitted) has finished.
    public func idle() async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                if state.pending == 0 { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    private func finished() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.pending -= 1
            guard state.pending == 0 else { return [] }
            defer { state.idleWaiters = [] }
            return state.idleWaiters
        }
        waiters.forEach { $0.resume() }
    }
}
