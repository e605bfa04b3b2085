import ShoalCore

/// One row of the broker's event log: a grant, denial, queueing, preemption, drain, revocation
/// (…) with its reason. `shoal events` lists them; `shoal leases explain LEASE` shows one lease's.
public struct BrokerEvent: Sendable, Hashable, Identifiable {
    /// What happened. Open-ended, so a newer broker's kinds read back in an older one.
    public struct Kind: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A front-end asked for a back-end; a lease was created.
        public static let request = Kind(rawValue: "request")
        /// A slot was given to the lease.
        public static let grant = Kind(rawValue: "grant")
        /// A request was refused (e.g. the service is at `max_backends`).
        public static let deny = Kind(rawValue: "deny")
        /// A request waits for a free slot.
        public static let queue = Kind(rawValue: "queue")
        /// The lease's worker and service were started.
        public static let spawn = Kind(rawValue: "spawn")
        /// The service instance passed its health check.
        public static let ready = Kind(rawValue: "ready")
        /// A graceful drain was ordered (scale-down or maintenance).
        public static let drain = Kind(rawValue: "drain")
        /// A drain ordered to give the slot to a service below its fair share.
        public static let preempt = Kind(rawValue: "preempt")
        /// A scale-down drain was cancelled; the front-end routes to it again.
        public static let resume = Kind(rawValue: "resume")
        /// The lease was given back after its drain; its slot is free.
        public static let release = Kind(rawValue: "release")
        /// The lease was taken away (host or task died, TTL expired, drain deadline passed).
        public static let revoke = Kind(rawValue: "revoke")
        /// A pool host lost from the virtual machine was added again; it takes leases again.
        public static let hostUp = Kind(rawValue: "host-up")
    }

    /// Increasing, never reused: the order events happened in.
    public var id: Int64
    public var time: Timestamp
    public var kind: Kind
    public var lease: LeaseID?
    public var service: String?
    public var host: String?
    /// The lease's state before and after, for events that changed a lease.
    public var fromState: LeaseState?
    public var toState: LeaseState?
    /// Why, in words: the levels and figures that caused it.
    public var reason: String
    /// The same figures as a JSON object, when the caller gave them.
    public var details: String?

    public init(
        id: Int64, time: Timestamp, kind: Kind, lease: LeaseID? = nil, service: String? = nil,
        host: String? = nil, fromState: LeaseState? = nil, toState: LeaseState? = nil,
        reason: String, details: String? = nil
    ) {
        self.id = id
        self.time = time
        self.kind = kind
        self.lease = lease
        self.service = service
        self.host = host
        self.fromState = fromState
        self.toState = toState
        self.reason = reason
        self.details = details
    }
}
