/// What the reconciler is told: the broker's view of the leases and the members' measured load.
extension FrontendReconciler {
    /// The broker's view of one of this front-end's leases (the core's copy of the API's lease view).
    public struct LeaseStatus: Sendable, Hashable {
        public var id: LeaseID
        public var state: LeaseState
        public var host: String?
        /// `host:port` of the worker once the lease is active: where the front-end routes.
        public var endpoint: String?
        /// When the broker recorded the request (a lease whose ask this front-end did not see,
        /// e.g. before a restart, is measured from here).
        public var requestedAt: Timestamp
        /// Why a draining lease drains.
        public var drainReason: Drain.Reason?

        public init(
            id: LeaseID, state: LeaseState, host: String? = nil, endpoint: String? = nil,
            requestedAt: Timestamp, drainReason: Drain.Reason? = nil
        ) {
            self.id = id
            self.state = state
            self.host = host
            self.endpoint = endpoint
            self.requestedAt = requestedAt
            self.drainReason = drainReason
        }
    }

    /// The broker's answer to a registration or a heartbeat.
    public struct BrokerStatus: Sendable, Hashable {
        /// Every live lease of this front-end (requested, granted, active, draining).
        public var leases: [LeaseStatus]
        public var leaseTTL: Duration

        public init(leases: [LeaseStatus], leaseTTL: Duration) {
            self.leases = leases
            self.leaseTTL = leaseTTL
        }
    }

    /// The members' requests in progress, read just before the policy looks at them.
    public struct MeasuredLoad: Sendable, Hashable {
        public struct Backend: Sendable, Hashable {
            /// The member's name: a leased back-end's member is named after its lease id.
            public var name: String
            public var inFlight: Int

            public init(name: String, inFlight: Int) {
                self.name = name
                self.inFlight = inFlight
            }
        }

        /// Requests in progress on the local instance.
        public var localInFlight: Int
        /// The back-ends in rotation, in the order they were added.
        public var backends: [Backend]

        public init(localInFlight: Int, backends: [Backend] = []) {
            self.localInFlight = localInFlight
            self.backends = backends
        }
    }
}
