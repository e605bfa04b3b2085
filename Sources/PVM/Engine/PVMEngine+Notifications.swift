import CPVM

/// The tags of `pvm_notify` messages: the engine's reserved range, never sent by applications.
enum NotifyTag {
    static let taskExit = PVMMessage.reservedTags + 1
    static let hostDelete = PVMMessage.reservedTags + 2
    static let hostAdd = PVMMessage.reservedTags + 3
}

extension PVMEngine {
    /// Asks for a `.taskExited` event when each task ends (`pvm_notify(PvmTaskExit)`). A task
    /// that is already gone is reported at once.
    public func watch(tasks: [PVMTaskID]) throws {
        try notify(PvmTaskExit, tag: NotifyTag.taskExit, tasks.map(\.rawValue), "pvm_notify(PvmTaskExit, \(tasks))")
    }

    /// Asks for a `.hostDeleted` event when each host is deleted or fails
    /// (`pvm_notify(PvmHostDelete)`).
    public func watch(hosts: [PVMHostID]) throws {
        try notify(PvmHostDelete, tag: NotifyTag.hostDelete, hosts.map(\.rawValue), "pvm_notify(PvmHostDelete, \(hosts))")
    }

    /// Asks for a `.hostsAdded` event whenever hosts join the virtual machine, until closed
    /// (`pvm_notify(PvmHostAdd, -1)`).
    public func watchHostAdditions() throws {
        let operation = "pvm_notify(PvmHostAdd)"
        try requireAttached(operation)
        if let error = PVMError.check(pvm_notify(PvmHostAdd, NotifyTag.hostAdd, -1, nil), operation) { throw error }
    }

    private func notify(_ kind: Int32, tag: Int32, _ tids: [Int32], _ operation: @autoclosure () -> String) throws {
        try requireAttached(operation())
        guard !tids.isEmpty else { return }
        var tids = tids
        if let error = PVMError.check(pvm_notify(kind, tag, Int32(tids.count), &tids), operation()) { throw error }
    }
}
