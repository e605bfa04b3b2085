/// Received messages nobody asked for yet, and the `receive` calls waiting for one.
///
/// A message goes to the oldest waiter whose filter matches, else into the queue; a `receive`
/// takes the oldest queued match first. Per sender and tag, order is kept.
struct PVMMailbox {
    /// What a `receive` accepts.
    struct Filter: Hashable, Sendable {
        var source: PVMTaskID?
        var tag: Int32?

        func matches(_ message: PVMReceivedMessage) -> Bool {
            (source == nil || source == message.source) && (tag == nil || tag == message.tag)
        }
    }

    struct Waiter {
        let id: Int
        let filter: Filter
        let continuation: CheckedContinuation<PVMReceivedMessage, any Error>
        /// Ends the wait after its timeout; cancelled when the wait ends otherwise.
        var timer: Task<Void, Never>?
    }

    /// Messages kept for later receives; beyond this the oldest is dropped.
    static let capacity = 10_000

    private(set) var queued: [PVMReceivedMessage] = []
    private var waiters: [Waiter] = []
    private var lastID = 0

    mutating func nextWaiterID() -> Int {
        lastID += 1
        return lastID
    }

    /// Hands `message` to a waiter or queues it; returns a message dropped to make room.
    mutating func deliver(_ message: PVMReceivedMessage) -> PVMReceivedMessage? {
        if let index = waiters.firstIndex(where: { $0.filter.matches(message) }) {
            let waiter = waiters.remove(at: index)
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: message)
            return nil
        }
        queued.append(message)
        return queued.count > Self.capacity ? queued.removeFirst() : nil
    }

    /// The oldest queued message matching `filter`, removed from the queue.
    mutating func take(_ filter: Filter) -> PVMReceivedMessage? {
        guard let index = queued.firstIndex(where: filter.matches) else { return nil }
        return queued.remove(at: index)
    }

    mutating func wait(_ waiter: Waiter) {
        waiters.append(waiter)
    }

    /// Ends the wait `id` with `error`, if it is still waiting.
    mutating func fail(waiter id: Int, _ error: any Error) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        let waiter = waiters.remove(at: index)
        waiter.timer?.cancel()
        waiter.continuation.resume(throwing: error)
    }

    /// Ends every wait with `error`.
    mutating func failAll(_ error: any Error) {
        let all = waiters
        waiters = []
        for waiter in all {
            waiter.timer?.cancel()
            waiter.continuation.resume(throwing: error)
        }
    }
}
