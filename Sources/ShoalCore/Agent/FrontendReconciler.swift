/// The front-end's load manager, as decisions only: what it knows of its leases, the
/// ``ScalePolicy``, and the readiness measurement. Each event (`FrontendReconciler+Events.swift`)
/// is a `mutating func` named after what happened; it returns the ``Action``s the load manager
/// actor carries out, and the actor reports each broker answer back as another event.
///
/// One lease's routing, from the front-end's side:
/// ```
///  acquired, or first listed
///     │
///     ▼     broker: active                policy: release                drainAccepted
///  waiting ───────────────► inRotation ─────────────────► scaleDownRequested ──────────┐
///     │                       │    ▲                                                   │
///     │ broker: draining      │    └─────────────── drainCancelAccepted ────────────┐  │
///     │ (preemption, maint.)  │                                                   │  ▼
///     └───────────────────────┴──────────────────────────────────────────────────► draining
///                                                 memberDrained → release → releaseAccepted │
///                                                                            released ◄─────┘
/// ```
/// A lease the broker stops listing is forgotten; if it was still routed to, its member is
/// removed abandoning what is in flight there (it was revoked: the back-end is gone).
///
/// The reconciler never reads a clock: events that depend on time take `now`.
public struct FrontendReconciler: Sendable {
    public struct Configuration: Sendable {
        /// This front-end's name, as the broker knows it (used in reason sentences).
        public var frontend: String
        public var thresholds: LoadThresholds
        public var backends: BackendRange
        /// How long the back-ends stay Low, on average, before one is given back.
        public var holdTime: Duration
        /// How long to wait after a failed release before sending it again.
        public var releaseRetryDelay: Duration
        /// Which rule decides the number of back-ends (Shoal's unless a comparison asks otherwise).
        public var scaling: ScalingRule
        /// A reference policy's target, requests in flight per member (nil: the High threshold).
        public var scalingTarget: Double?
        /// The manifest's `local`: whether the front-end's own instance counts as a member beside back-ends.
        public var local: LocalRole

        public init(
            frontend: String, thresholds: LoadThresholds, backends: BackendRange,
            holdTime: Duration = .seconds(5), releaseRetryDelay: Duration = .milliseconds(500),
            scaling: ScalingRule = .shoal, scalingTarget: Double? = nil, local: LocalRole = .standby
        ) {
            self.frontend = frontend
            self.thresholds = thresholds
            self.backends = backends
            self.holdTime = holdTime
            self.releaseRetryDelay = releaseRetryDelay
            self.scaling = scaling
            self.scalingTarget = scalingTarget
            self.local = local
        }
    }

    public let configuration: Configuration
    public internal(set) var policy: ScalePolicy
    /// Decides instead of `policy` when the configuration names KPA or HPA.
    public internal(set) var reference: ReferenceScaling?
    /// Every lease the broker lists for this front-end, and any just acquired.
    var leases: [LeaseID: TrackedLease] = [:]
    /// Whether the broker knows this front-end (it answered a registration or a heartbeat).
    /// Until then the policy is not applied: leases would be asked for by a stranger.
    public internal(set) var isRegistered = false
    /// How long the broker keeps a lease that is not renewed.
    public internal(set) var leaseTTL: Duration = .seconds(10)
    /// An acquire was sent and its answer has not come: never two at once.
    var acquireInFlight = false
    /// Numbers each drain, so a member's late "drained" is not taken for a later drain's.
    var lastDrainNumber = 0
    /// Measured times from asking to serving, newest last (at most 8).
    public internal(set) var readinessSamples: [Duration] = []
    /// The front-end is stopping and gave everything back: nothing more is decided.
    var stopped = false

    public init(configuration: Configuration) {
        self.configuration = configuration
        policy = ScalePolicy(thresholds: configuration.thresholds, backends: configuration.backends, holdTime: configuration.holdTime)
        reference = ReferenceScaling(
            rule: configuration.scaling, target: configuration.scalingTarget ?? Double(configuration.thresholds.high),
            backends: configuration.backends, local: configuration.local)
    }

    /// What the front-end knows of one lease.
    struct TrackedLease: Sendable, Hashable {
        /// The broker's last word on it.
        var status: LeaseStatus
        /// When this front-end asked for it, until it serves: one readiness sample.
        var askedAt: Timestamp?
        var routing: Routing
    }

    /// Whether requests go to a lease's back-end, and what the front-end waits for there.
    enum Routing: Sendable, Hashable {
        /// Not routed to yet: queued, starting, or active without a usable endpoint.
        case waiting
        /// A member routes to it.
        case inRotation
        /// Our scale-down drain was asked for; it stays in rotation until the broker agrees.
        case scaleDownRequested(reason: String)
        /// Out of rotation; the front-end's in-flight requests there finish, then it is released.
        case draining(DrainProgress)
        /// The broker accepted the release; forgotten once the broker stops listing it.
        case released
    }

    /// How far a drain has come.
    struct DrainProgress: Sendable, Hashable {
        enum Origin: Sendable, Hashable {
            /// Our scale-down: may be cancelled while the release has not been accepted.
            case frontend
            /// Preemption or maintenance: the broker wants the slot back.
            case broker
        }

        enum Request: Sendable, Hashable {
            case cancel
            case release
        }

        var orderedBy: Origin
        var number: Int
        /// The front-end has nothing in flight there any more (or never routed there).
        var memberDrained: Bool
        /// A cancel or release sent whose answer has not come.
        var request: Request?
        /// After a failed release, when to send it again.
        var retryReleaseAt: Timestamp?
    }

    // MARK: Reading

    /// The state of each lease, as the broker last told it (for the metrics).
    public var leaseStates: [LeaseState] { leases.values.map(\.status.state) }

    /// The broker's last word on one lease, if it is one of ours.
    public func lease(_ id: LeaseID) -> LeaseStatus? { leases[id]?.status }

    /// An event in the broker's log about one of our leases, or about a host (which may hold
    /// one), is a reason to synchronize now rather than at the next heartbeat.
    public func concerns(lease: LeaseID?, host: String?) -> Bool {
        lease.map { leases[$0] != nil } ?? (host != nil)
    }

    /// How long until the next heartbeat: a third of the TTL, so one lost heartbeat costs no lease;
    /// every 500 ms while the broker does not know us yet.
    /// A third of the TTL; half a second until registered, and after a broker did not answer (a
    /// standby may have taken over: the sooner it is found, the sooner leases come back).
    public var heartbeatInterval: Duration { isRegistered && brokerAnswered ? leaseTTL / 3 : .milliseconds(500) }
    /// The last heartbeat or registration was answered.
    public internal(set) var brokerAnswered = true

    // MARK: Readiness

    /// One more time from asking to serving: the policy's readiness allowance becomes twice the
    /// slowest of the newest 8 (at least 1 s), so a lease still starting within it counts as
    /// capacity on its way, and one slower than that is presumed lost.
    mutating func recordReadiness(_ sample: Duration) {
        readinessSamples = Array((readinessSamples + [sample]).suffix(8))
        policy.readinessAllowance = max(.seconds(1), (readinessSamples.max() ?? .seconds(5)) * 2)
    }
}
