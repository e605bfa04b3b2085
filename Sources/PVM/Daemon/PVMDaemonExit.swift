import Synchronization

/// The exit of a pvmd process: recorded by its termination handler, awaited by `stop()`.
final class PVMDaemonExit: Sendable {
    private struct State {
        var status: Int32?
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        var lastID = 0
    }

    private let state = Mutex(State())

    /// The exit status, once the process ended.
    var status: Int32? { state.withLock { $0.status } }

    func record(_ status: Int32) {
        let waiters = state.withLock { state in
            state.status = status
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        waiters.forEach { $0.resume(returning: true) }
    }

    /// Waits until the process ended (`true`) or `timeout` passed (`false`).
    func wait(for timeout: Duration) async -> Bool {
        let id = state.withLock { state -> Int in
            state.lastID += 1
            return state.lastID
        }
        let timer = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            self.resume(id, with: false)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { continuation in
            let done = state.withLock { state -> Bool in
                if state.status != nil { return true }
                state.waiters[id] = continuation
                return false
            }
            if done { continuation.resume(returning: true) }
        }
    }

    private func resume(_ id: Int, with value: Bool) {
        let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
        waiter?.resume(returning: value)
    }
}
