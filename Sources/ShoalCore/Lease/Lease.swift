/// One back-end slot held by one front-end for one service.
///
/// The lease's life is the state machine in `Lease+StateMachine.swift`; this type is the record
/// the broker keeps (and stores) for it.
public struct Lease: Sendable, Hashable, Codable, Identifiable {
    public var id: LeaseID
    public var service: String
    public var frontend: String
    /// The host whose slot it holds; chosen at grant.
    public var host: String?
    public var state: LeaseState
    /// PVM task ids of the worker and the service instance, once spawned.
    public var tasks: [Int32]
    /// `host:port` of the worker once the lease is active: where the front-end routes.
    public var endpoint: String?
    public var requestedAt: Timestamp
    /// Past this, a lease whose front-end has not renewed it is revoked.
    public var expiresAt: Timestamp
    /// Why a draining lease is draining, and when the drain stops waiting.
    public var drain: Drain?
    /// Why a revoked lease was revoked.
    public var revocation: RevocationReason?
    /// When a slot was given to it: its worker's start-up time counts from here, not from the
    /// request (a lease may wait in the queue for long).
    public var grantedAt: Timestamp?
    /// The worker was told to drain (the front-end has nothing in flight there any more): it
    /// finishes what it still serves, reports `drained` and exits; its exit then means drained.
    public var workerDraining: Bool

    public init(id: LeaseID, service: String, frontend: String, requestedAt: Timestamp, ttl: Duration) {
        self.id = id
        self.service = service
        self.frontend = frontend
        self.host = nil
        self.state = .requested
        self.tasks = []
        self.endpoint = nil
        self.requestedAt = requestedAt
        self.expiresAt = requestedAt + ttl
        self.drain = nil
        self.revocation = nil
        self.grantedAt = nil
        self.workerDraining = false
    }

    /// Whether the lease holds (or is about to hold) a slot.
    public var holdsSlot: Bool { state.holdsSlot }
}

/// A lease's identity, stable across broker restarts.
public struct LeaseID: RawRepresentable, Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public static func < (lhs: LeaseID, rhs: LeaseID) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { rawValue }
}

public enum LeaseState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Asked for; waiting for a free slot.
    case requested
    /// A host was chosen; the worker and the service instance are being started there.
    case granted
    /// The service instance passed its health check; the front-end routes to it.
    case active
    /// The front-end stopped routing to it; the worker is finishing its in-flight requests.
    case draining
    /// Given back after its drain; its tasks are gone and its slot is free.
    case released
    /// Taken away: see ``RevocationReason``.
    case revoked

    public var isFinal: Bool { self == .released || self == .revoked }

    /// Whether a lease in this state holds (or is about to hold) a slot.
    public var holdsSlot: Bool { Self.holdingSlot.contains(self) }

    /// Whether its worker serves (or finishes serving): it has an endpoint and reports its load.
    public var hasServingWorker: Bool { self == .active || self == .draining }

    /// The states of a lease that is not over: waiting, starting, serving or draining.
    public static let live: [LeaseState] = [.requested, .granted, .active, .draining]
    /// The states of a lease that holds a slot of its host.
    public static let holdingSlot: [LeaseState] = [.granted, .active, .draining]
}

public struct Drain: Sendable, Hashable, Codable {
    public enum Reason: String, Sendable, Hashable, Codable {
        /// The front-end's load manager gives the back-end back (load fell).
        case scaleDown = "scale-down"
        /// The broker reclaims the slot for a service below its fair share.
        case preemption
        /// An operator drains the host (`shoal drain HOST`).
        case maintenance
    }

    public var reason: Reason
    /// When the drain stops waiting for in-flight requests.
    public var deadline: Timestamp

    public init(reason: Reason, deadline: Timestamp) {
        self.reason = reason
        self.deadline = deadline
    }
}

public enum RevocationReason: String, Sendable, Hashable, Codable {
    case hostFailed = "host-failed"
    case taskDied = "task-died"
    case ttlExpired = "ttl-expired"
    case drainDeadlinePassed = "drain-deadline-passed"
    case spawnFailed = "spawn-failed"
    /// The pool's pvmd died, and every worker with it; the broker started a new pool.
    case poolRestarted = "pool-restarted"
}
