import Metrics
import Prometheus
import ShoalAPI
import ShoalCore

/// The broker's metrics, through swift-metrics into its own Prometheus registry (no global
/// bootstrap: several brokers in one process — tests — keep theirs apart). `GET /metrics`
/// answers ``exposition()``.
///
/// Counted as things happen:
/// - `shoal_broker_grant_latency_seconds`: histogram, a lease's request to its grant (queueing included);
/// - `shoal_broker_pvm_notifications_total{kind}`: what the pool reported (`task-exit`,
///   `host-delete`, `worker-ready`, `worker-load`, `worker-drained`, `worker-failed`, `pool-lost`, `pool-restarted`);
/// - `shoal_broker_lease_events_total{kind}`: lease transitions recorded (grant, ready, drain, revoke, ...);
/// - `shoal_broker_backend_seconds_total{service}` and `shoal_broker_requests_served_total{service}`:
///   slot-seconds held and requests its front-ends answered; their ratio is its efficiency
///   (back-end-seconds per request);
/// - `shoal_broker_pruned_rows_total{table}`: old events and finished leases deleted (`event`, `lease`);
/// - `shoal_broker_database_bytes`: the lease table's SQLite file and its log, after each prune;
/// - `shoal_broker_api_requests_total{method,route,status}` and
///   `shoal_broker_api_request_duration_seconds{method,route}`: the HTTP API (routes by template).
///
/// Read from the lease table at each scrape (``refresh(leases:services:pool:)``):
/// - `shoal_broker_leases{service,state}`: live leases by service and state;
/// - `shoal_broker_queue_length`: requests waiting for a slot;
/// - `shoal_broker_slots{state}` (`total`, `used`) and `shoal_broker_hosts{state}` (`up`, `down`, `cordoned`).
public final class BrokerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let grantLatency: Metrics.Timer
    private let notifications: [String: Metrics.Counter]

    static let notificationKinds = ["task-exit", "host-delete", "worker-ready", "worker-load", "worker-drained", "worker-failed", "pool-lost", "pool-restarted"]
    static let liveStates: [LeaseState] = [.requested, .granted, .active, .draining]

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        // 1 ms … 60 s: a grant is immediate when a slot is free, and waits for a drain when not.
        let grantBuckets: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100),
                                        .milliseconds(500), .seconds(1), .seconds(5), .seconds(10), .seconds(30), .seconds(60)]
        // 100 µs … 60 s: most calls take a millisecond or so; an event long poll up to a minute.
        let apiBuckets: [Duration] = [.microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                                      .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
                                      .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5), .seconds(20), .seconds(60)]
        factory.durationHistogramBuckets = [
            "shoal_broker_grant_latency_seconds": grantBuckets,
            "shoal_broker_api_request_duration_seconds": apiBuckets,
        ]
        self.factory = factory
        grantLatency = Metrics.Timer(label: "shoal_broker_grant_latency_seconds", factory: factory)
        notifications = Dictionary(uniqueKeysWithValues: Self.notificationKinds.map { kind in
            (kind, Metrics.Counter(label: "shoal_broker_pvm_notifications_total", dimensions: [("kind", kind)], factory: factory))
        })
        Metrics.Gauge(label: "shoal_broker_queue_length", factory: factory).record(0)
    }

    /// The Prometheus text exposition of everything above.
    public func exposition() -> String {
        registry.emitToString()
    }

    // MARK: Counting

    func granted(after wait: Duration) {
        grantLatency.recordNanoseconds(Self.nanoseconds(max(.zero, wait)))
    }

    func notified(_ event: LauncherEvent) {
        let kind = switch event {
        case .ready: "worker-ready"
        case .load: "worker-load"
        case .drained: "worker-drained"
        case .failed: "worker-failed"
        case .exited: "task-exit"
        case .hostDown: "host-delete"
        case .poolLost: "pool-lost"
        case .poolRestarted: "pool-restarted"
        }
        notifications[kind]?.increment()
    }

    func held(_ held: [String: Int], for duration: Duration) {
        let seconds = duration / .seconds(1)
        for (service, slots) in held where slots > 0 {
            Metrics.FloatingPointCounter(label: "shoal_broker_backend_seconds_total", dimensions: [("service", service)], factory: factory)
                .increment(by: Double(slots) * seconds)
        }
    }

    func served(_ requests: Int, service: String) {
        Metrics.Counter(label: "shoal_broker_requests_served_total", dimensions: [("service", service)], factory: factory).increment(by: requests)
    }

    func pruned(events: Int, leases: Int, databaseBytes: Int) {
        Metrics.Counter(label: "shoal_broker_pruned_rows_total", dimensions: [("table", "event")], factory: factory).increment(by: events)
        Metrics.Counter(label: "shoal_broker_pruned_rows_total", dimensions: [("table", "lease")], factory: factory).increment(by: leases)
        Metrics.Gauge(label: "shoal_broker_database_bytes", factory: factory).record(databaseBytes)
    }

    func leaseEvent(_ kind: String) {
        Metrics.Counter(label: "shoal_broker_lease_events_total", dimensions: [("kind", kind)], factory: factory).increment()
    }

    func apiRequest(method: String, route: String, status: Int, duration: Duration) {
        Metrics.Counter(label: "shoal_broker_api_requests_total",
                        dimensions: [("method", method), ("route", route), ("status", String(status))], factory: factory).increment()
        Metrics.Timer(label: "shoal_broker_api_request_duration_seconds", dimensions: [("method", method), ("route", route)], factory: factory)
            .recordNanoseconds(Self.nanoseconds(duration))
    }

    /// Sets the gauges read from the lease table and the pool.
    func refresh(leases: [LeaseView], services: [String], pool: PoolView?) {
        var counts: [String: [LeaseState: Int]] = [:]
        for service in services { counts[service] = [:] }
        for lease in leases { counts[lease.service, default: [:]][lease.state, default: 0] += 1 }
        for (service, byState) in counts {
            for state in Self.liveStates {
                Metrics.Gauge(label: "shoal_broker_leases", dimensions: [("service", service), ("state", state.rawValue)], factory: factory)
                    .record(byState[state] ?? 0)
            }
        }
        Metrics.Gauge(label: "shoal_broker_queue_length", factory: factory).record(leases.count { $0.state == .requested })
        guard let pool else { return }
        let slots = [("total", pool.hosts.reduce(0) { $0 + $1.slots }), ("used", pool.hosts.reduce(0) { $0 + $1.used })]
        for (state, value) in slots {
            Metrics.Gauge(label: "shoal_broker_slots", dimensions: [("state", state)], factory: factory).record(value)
        }
        let hosts = [("up", pool.hosts.count { !$0.down }), ("down", pool.hosts.count(where: \.down)), ("cordoned", pool.hosts.count(where: \.cordoned))]
        for (state, value) in hosts {
            Metrics.Gauge(label: "shoal_broker_hosts", dimensions: [("state", state)], factory: factory).record(value)
        }
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
