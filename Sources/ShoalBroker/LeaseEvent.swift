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
    /// The worker's last in-flight request finished.
    case drained
    /// Taken away at once.
    case revoke(RevocationReason)

    /// Runs the core's state machine for this event.
    func apply(to lease: inout Lease, now: Timestamp) throws(Lease.TransitionError) -> Lease.Action {
        switch self {
        case .spawned(let tasks): try lease.spawned(tasks: tasks)
        case .becameReady(let endpoint): try lease.becameReady(endpoint: endpoint)
        case .drainRequested(let drain): try lease.drainRequested(drain)
        case .drainCancelled: try lease.drainCancelled()
        case .drained: try lease.drained()
        case .revoke(let reason): try lease.revoke(reason)
        }
    }

    /// The kind of event row it is recorded as.
    var kind: BrokerEvent.Kind {
        switch self {
        case .spawned: .spawn
        case .becameReady: .ready
        case .drainRequested(let drain): drain.reason == .preemption ? .preempt : .drain
        case .drainCancelled: .resume
        case .drained: .release
        case .revoke: .revoke
        }
    }

    /// The reason recorded when the caller gives none.
    var defaultReason: String {
        switch self {
        case .spawned(let tasks): "worker and service started: tasks \(tasks.map(String.init).joined(separator: ", "))"
        case .becameReady(let endpoint): "service instance passed its health check; worker at \(endpoint)"
        case .drainRequested(let drain): "drain (\(drain.reason.rawValue)) ordered, deadline \(drain.deadline)"
        case .drainCancelled: "scale-down drain cancelled: load rose again"
        case .drained: "worker reported its last in-flight request finished"
        case .revoke(let reason): "revoked: \(reason.rawValue)"
        }
    }
}
