import Metrics
import Prometheus
import ShoalCore
import ShoalProxy

/// A front-end agent's metrics, as one Prometheus exposition for its admin listener's
/// `GET /metrics`:
/// - the load manager's, through swift-metrics into this agent's own Prometheus registry:
///   `shoal_frontend_leases{state}` (leases held, by state) and
///   `shoal_frontend_lease_requests_total{result}` (asked for: granted, queued, denied, failed);
/// - the service manager's (the relay's), read from the atomics its request path keeps when
///   scraped (see ``ShoalProxy/HTTPRelayServer/metricsExposition(prefix:labels:)``): requests by
///   member and status class, latency, in flight, retries, local error answers.
///
/// Every series carries `service`. The registry is the agent's own (no global bootstrap), so
/// several agents in one process (tests) keep theirs apart.
public final class FrontendMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    public let service: String
    private let relay: HTTPRelayServer
    private let leaseGauges: [LeaseState: Metrics.Gauge]
    private let leaseRequests: [String: Metrics.Counter]

    /// The live states a front-end's leases can be in.
    static let heldStates: [LeaseState] = [.requested, .granted, .active, .draining]

    public init(service: String, relay: HTTPRelayServer) {
        self.service = service
        self.relay = relay
        let factory = PrometheusMetricsFactory(registry: registry)
        leaseGauges = Dictionary(uniqueKeysWithValues: Self.heldStates.map { state in
            (state, Metrics.Gauge(label: "shoal_frontend_leases", dimensions: [("service", service), ("state", state.rawValue)], factory: factory))
        })
        leaseRequests = Dictionary(uniqueKeysWithValues: ["granted", "queued", "denied", "failed"].map { result in
            (result, Metrics.Counter(label: "shoal_frontend_lease_requests_total", dimensions: [("service", service), ("result", result)], factory: factory))
        })
        for gauge in leaseGauges.values { gauge.record(0) }
    }

    /// The load manager's leases changed: the gauges follow.
    func leasesChanged(_ states: some Sequence<LeaseState>) {
        var counts: [LeaseState: Int] = [:]
        for state in states { counts[state, default: 0] += 1 }
        for (state, gauge) in leaseGauges { gauge.record(counts[state] ?? 0) }
    }

    /// The load manager asked the broker for a back-end: `granted`, `queued`, `denied` or `failed`.
    func leaseRequested(_ result: String) {
        leaseRequests[result]?.increment()
    }

    /// The whole exposition (Prometheus text format 0.0.4).
    public func exposition() -> String {
        registry.emitToString() + relay.metricsExposition(prefix: "shoal_frontend", labels: [("service", service)])
    }
}
