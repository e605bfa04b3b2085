import CPVM

extension PVMEngine {
    /// Sends `message` to the task `destination` (`pvm_initsend` + packing + `pvm_send`).
    public func send(_ message: PVMMessage, to destination: PVMTaskID) throws {
        let operation = "pvm_send(tag \(message.tag) to \(destination))"
        try requireAttached(operation)
        guard (0..<PVMMessage.reservedTags).contains(message.tag) else {
            throw PVMError(.badParam, operation: operation,
                           detail: "tags are 0..<\(PVMMessage.reservedTags)")
        }
        if let error = PVMError.check(pvm_initsend(PvmDataDefault), "pvm_initsend") { throw error }
        if let error = PVMError.check(PVMWire.pack(message.fields), "pack message") { throw error }
        if let error = PVMError.check(pvm_send(destination.rawValue, message.tag), operation) { throw error }
    }

    /// Waits for a message, oldest first, optionally only from `source` and/or with `tag`.
    ///
    /// - Throws: `PVMError` `.timedOut` after `timeout` (if given), `.notAttached` if the engine
    ///   closes or loses its pvmd meanwhile; `CancellationError` if the task is cancelled.
    public func receive(
        from source: PVMTaskID? = nil,
        tag: Int32? = nil,
        timeout: Duration? = nil
    ) async throws -> PVMReceivedMessage {
        try requireAttached("receive")
        let filter = PVMMailbox.Filter(source: source, tag: tag)
        if let message = mailbox.take(filter) { return message }
        let id = mailbox.nextWaiterID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                var timer: Task<Void, Never>?
                if let timeout {
                    timer = Task {
                        // Cancelled (the wait ended first) means: do nothing.
                        guard (try? await Task.sleep(for: timeout)) != nil else { return }
                        self.expire(waiter: id, filter: filter, after: timeout)
                    }
                }
                mailbox.wait(.init(id: id, filter: filter, continuation: continuation, timer: timer))
            }
        } onCancel: {
            Task { await self.cancel(waiter: id) }
        }
    }

    private func expire(waiter id: Int, filter: PVMMailbox.Filter, after timeout: Duration) {
        let from = filter.source.map { " from \($0)" } ?? ""
        let tag = filter.tag.map { " tag \($0)" } ?? ""
        mailbox.fail(waiter: id, PVMError(.timedOut, operation: "receive\(from)\(tag)",
                                          detail: "nothing after \(timeout)"))
    }

    private func cancel(waiter id: Int) {
        mailbox.fail(waiter: id, CancellationError())
    }
}
