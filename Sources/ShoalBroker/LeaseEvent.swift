import ShoalCore

/// An event of the lease state machine that the store can apply by lease id. The grant is not
/// here: it also takes a slot, see ``LeaseStore/grant(_:host:slotIndex:now:reason:)``.
public enum LeaseEvent: Sendable, Hashable {
    /// The worker and service instance were started with these PVM task ids.
    case spawned(tasks: [Int32])
    /// The service instance passed its health check; its worker listens at `endpoint`.
    case becameReady(endpoint: String)
    /// Give the back-end back gracefully (scale-down, preemption or maintenance).
    case drainRequested(Drain)
    /// Load rose again before a scale-down drain finished.
    case drainCancelled
    /// The front-end has nothing in flight there any more (see ``Lease/frontendReleased(now:drainTimeout:)``).
    case frontendReleased(drainTimeout: Duration)
    /// The worker's last in-flight request finished.
    case drained
    /// The lease's worker task exited (`pvm_notify`).
    case workerExited(task: Int32)
    /// Taken away at once.
    case revoke(RevocationReason)

    /// Runs the core's state machine for this event.
    func apply(to lease: inout Lease, now: Timestamp) throws(Lease.TransitionError) -> Lease.Action {
        switch self {
        case .spawned(let tasks): try lease.spawned(tasks: tasks)
        case .becameReady(let endpoint): try lease.becameReady(endpoint: endpoint)
        case .drainRequested(let drain): try lease.drainRequested(drain)
        case .drainCancelled: try lease.drainCancelled()
        case .frontendReleased(let drainTimeout): try lease.frontendReleased(now: now, drainTimeout: drainTimeout)
        case .drained: try lease.drained()
        case .workerExited: lease.workerExited()
        case .revoke(let reason): try lease.revoke(reason)
        }
    }

    /// The kind of event row it is recorded as, once it turned `lease` into what it is now.
    func kind(after lease: Lease) -> BrokerEvent.Kind {
        switch self {
        case .spawned: .spawn
        case .becameReady: .ready
        case .drainRequested(let drain): drain.reason == .preemption ? .preempt : .drain
        case .drainCancelled: .resume
        case .frontendReleased: .drain
        case .drained: .release
        case .workerExited: lease.state == .released ? .release : .revoke
        case .revoke: .revoke
        }
    }

    /// The reason recorded when the caller gives none, once it turned `lease` into what it is now.
    func defaultReason(after lease: Lease) -> String {
        switch self {
        case .spawned(let tasks): "worker and service started: tasks \(tasks.map(String.init).joined(separator: ", "))"
        case .becameReady(let endpoint): "service instance passed its health check; worker at \(endpoint)"
        case .drainRequested(let drain): "drain (\(drain.reason.rawValue)) ordered, to finish by \(drain.deadline)"
        case .drainCancelled: "scale-down drain cancelled: load rose again"
        case .frontendReleased: lease.state == .draining
            ? "front-end \(lease.frontend) has nothing in flight there: the worker finishes what it serves and stops"
            : "withdrawn by front-end \(lease.frontend) before it served"
        case .drained: "worker reported its last in-flight request finished"
        case .workerExited(let task): lease.state == .released
            ? "worker \(task) exited after its drain order: nothing left in flight"
            : "worker task \(task) exited (pvm_notify)"
        case .revoke(let reason): "revoked: \(reason.rawValue)"
        }
    }
}
