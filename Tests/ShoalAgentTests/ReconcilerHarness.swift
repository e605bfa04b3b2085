import ShoalCore

/// A ``FrontendReconciler`` driven by hand: thresholds low 2 / high 6, hold time 5 s, and a
/// clock that moves only when a test says so.
struct ReconcilerHarness {
    typealias Action = FrontendReconciler.Action
    typealias LeaseStatus = FrontendReconciler.LeaseStatus

    var reconciler: FrontendReconciler
    var now = Timestamp(milliseconds: 1_700_000_000_000)

    init(min: Int = 0, max: Int = 3, scaling: ScalingRule = .shoal, local: LocalRole = .standby) {
        reconciler = FrontendReconciler(configuration: .init(
            frontend: "fe-a", thresholds: LoadThresholds(low: 2, high: 6), backends: BackendRange(min: min, max: max),
            holdTime: .seconds(5), scaling: scaling, local: local))
    }

    mutating func advance(_ duration: Duration) {
        now = now + duration
    }

    /// The broker's answer to a heartbeat listing exactly these leases.
    @discardableResult
    mutating func brokerLists(_ leases: LeaseStatus...) -> [Action] {
        reconciler.brokerStatusArrived(.init(leases: leases, leaseTTL: .seconds(9)), now: now)
    }

    /// One control-loop tick with this load: back-ends by member name, in the order added.
    mutating func tick(local: Int = 0, _ backends: KeyValuePairs<LeaseID, Int> = [:]) -> [Action] {
        let load = FrontendReconciler.MeasuredLoad(
            localInFlight: local, backends: backends.map { .init(name: $0.key.rawValue, inFlight: $0.value) })
        return reconciler.loadMeasured(load, now: now)
    }

    func lease(
        _ id: LeaseID, _ state: LeaseState, endpoint: String? = nil, drainReason: Drain.Reason? = nil
    ) -> LeaseStatus {
        LeaseStatus(id: id, state: state, host: "c1", endpoint: endpoint, requestedAt: now, drainReason: drainReason)
    }

    func active(_ id: LeaseID) -> LeaseStatus {
        lease(id, .active, endpoint: Self.endpoint(id))
    }

    static func endpoint(_ id: LeaseID) -> String {
        "10.0.0.\(id.rawValue.last.map(String.init) ?? "9"):7000"
    }

    /// `id` serving and Low for the hold time, then its scale-down drain accepted by the broker:
    /// the drain's number (from the `waitForDrain` that follows).
    mutating func scaleDownAccepted(_ id: LeaseID) -> Int? {
        brokerLists(active(id))
        _ = tick([id: 0])
        advance(.seconds(5))
        _ = tick([id: 0])
        return Self.drainNumber(in: reconciler.drainAccepted(lease(id, .draining, endpoint: Self.endpoint(id), drainReason: .scaleDown)))
    }

    /// The drain number a `waitForDrain` action carries.
    static func drainNumber(in actions: [Action]) -> Int? {
        for case .waitForDrain(_, let drain) in actions { return drain }
        return nil
    }
}

let l1 = LeaseID("L-000001")
let l2 = LeaseID("L-000002")
let l3 = LeaseID("L-000003")
