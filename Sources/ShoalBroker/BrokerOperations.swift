import ShoalAPI

/// What the broker's HTTP API can ask of the broker: one method per route. ``Broker`` is the
/// real one; the HTTP layer knows only this, so its tests can use a fake.
public protocol BrokerOperations: Sendable {
    func pool() async throws -> PoolView
    func services() async throws -> [ServiceView]
    /// Live leases; with `includingFinal`, released and revoked ones too.
    func leases(includingFinal: Bool) async throws -> [LeaseView]
    /// One lease and every event of its life.
    func explain(lease id: String) async throws -> LeaseExplanation
    /// The lease, as its worker asks for it (``LeaseWatch``): the asking is a sign of the worker's
    /// life that does not pass through PVM.
    func workerAsked(lease id: String) async throws -> LeaseView
    /// Events after `after`, oldest first, at most `limit`; if there are none yet, waits up to
    /// `wait` for one.
    func events(after: Int64, limit: Int, wait: Duration) async throws -> EventPage
    /// Leases per service over the last minutes, for the status page's chart; none by default (stand-ins).
    func history() async throws -> LeaseHistoryView

    /// A new lease for the front-end's service: granted at once if a slot is free, else queued.
    func acquire(_ request: AcquireRequest) async throws -> LeaseView
    func renew(lease id: String) async throws -> LeaseView
    /// The front-end stopped routing to the lease's back-end (scale-down); it may still cancel.
    func drain(lease id: String, _ request: LeaseChangeRequest) async throws -> LeaseView
    func cancelDrain(lease id: String, _ request: LeaseChangeRequest) async throws -> LeaseView
    /// The front-end has nothing in flight there any more: the worker drains and stops, the slot
    /// is freed. A queued lease is simply withdrawn.
    func release(lease id: String, _ request: LeaseChangeRequest) async throws -> LeaseView

    func register(_ registration: FrontendRegistration) async throws -> FrontendStatus
    func heartbeat(frontend name: String, _ heartbeat: Heartbeat) async throws -> FrontendStatus
    /// Maintenance: no new grants on the host, and every lease there drains.
    func drainHost(_ name: String) async throws -> HostDrainResult
    /// Maintenance over: the host takes new leases again.
    func undrainHost(_ name: String) async throws -> HostDrainResult

    /// What `GET /metrics` exposes besides the API's own counts; `nil` by default (stand-ins).
    var metrics: BrokerMetrics? { get }
}

/// A refusal the API turns into a status code with the message as `{"error": ...}`.
public struct BrokerError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// 400: the request itself is wrong.
        case invalid
        /// 404: no such lease, front-end or host.
        case notFound
        /// 409: valid, but not in the current state (e.g. cancel a drain that is not a scale-down).
        case conflict
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
