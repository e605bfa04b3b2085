/// Something the virtual machine told the engine, delivered on ``PVMEngine/events``.
///
/// Task exits and host deletions arrive for what the engine watches: tasks it spawned (unless
/// asked not to), hosts it added, and whatever was passed to `watch(tasks:)`/`watch(hosts:)`.
public enum PVMEvent: Hashable, Sendable {
    /// A watched task exited, was killed, or went down with its host.
    case taskExited(PVMTaskID)
    /// A watched host was deleted or its pvmd died.
    case hostDeleted(PVMHostID)
    /// Hosts joined the virtual machine (after `watchHostAdditions()`).
    case hostsAdded([PVMHostID])
    /// The connection to the pvmd broke; the engine is detached and this is the last event.
    case disconnected(PVMError)
}
