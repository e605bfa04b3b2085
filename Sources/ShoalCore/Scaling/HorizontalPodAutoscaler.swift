/// Kubernetes' horizontal pod autoscaler (HPA) decision, as a reference to compare Shoal's
/// policy with.
///
/// Implemented from the published algorithm ("Horizontal Pod Autoscaling", kubernetes.io docs;
/// `pkg/controller/podautoscaler/horizontal.go` and `replica_calculator.go`) with the
/// controller's defaults: a decision every 15 s (`--horizontal-pod-autoscaler-sync-period`), a
/// tolerance of 0.1, a scale-down stabilisation window of 300 s
/// (`--horizontal-pod-autoscaler-downscale-stabilization`), scale-up at most to
/// max(2 × current, 4).
///
/// - ratio = average metric per pod / target; within 1 ± tolerance nothing changes, else
///   desired = ⌈ratio × current pods⌉.
/// - The answer is the largest recommendation of the last 300 s (this one included): scale-up
///   is immediate, scale-down waits until every recommendation in the window agrees.
///
/// The metric is concurrency, requests in flight per serving member, averaged over the sync
/// period (the metrics pipeline reports an average over its resolution, not an instant).
public struct HorizontalPodAutoscaler: Sendable {
    public struct Settings: Sendable, Hashable {
        /// Requests in flight per pod it aims for.
        public var target: Double
        public var tolerance: Double = 0.1
        public var syncPeriod: Duration = .seconds(15)
        public var downscaleStabilization: Duration = .seconds(300)
        public var scaleUpLimitFactor: Double = 2
        public var scaleUpLimitMinimum = 4

        public init(target: Double) {
            self.target = target
        }
    }

    struct Recommendation: Sendable, Hashable {
        var at: Timestamp
        var replicas: Int
    }

    public let settings: Settings
    /// Total concurrency samples since the last sync.
    private var periodSamples: [Double] = []
    private var nextSync: Timestamp?
    private var recommendations: [Recommendation] = []
    /// The replicas it wants, from its last sync (nil before the first).
    public private(set) var desiredReplicas: Int?
    /// The metric per pod at the last sync, for the reason sentence.
    public private(set) var lastMetric: Double?

    public init(settings: Settings) {
        self.settings = settings
    }

    /// One sample of the total concurrency with `currentReplicas` serving; at each sync it
    /// decides again. Returns the replicas it wants now.
    public mutating func observe(concurrency: Double, currentReplicas: Int, now: Timestamp) -> Int? {
        periodSamples.append(concurrency)
        guard let next = nextSync else {
            nextSync = now + settings.syncPeriod
            return desiredReplicas
        }
        guard now >= next else { return desiredReplicas }
        nextSync = now + settings.syncPeriod
        let current = max(1, currentReplicas)
        let metric = periodSamples.reduce(0, +) / Double(periodSamples.count) / Double(current)
        periodSamples = []
        lastMetric = metric
        let ratio = metric / settings.target
        let recommendation = abs(ratio - 1) <= settings.tolerance ? current : Int((ratio * Double(current)).rounded(.up))
        recommendations.removeAll { now - $0.at > settings.downscaleStabilization }
        recommendations.append(Recommendation(at: now, replicas: recommendation))
        let stabilized = recommendations.map(\.replicas).max() ?? recommendation
        let scaleUpLimit = max(Int(settings.scaleUpLimitFactor * Double(current)), settings.scaleUpLimitMinimum)
        desiredReplicas = min(stabilized, scaleUpLimit)
        return desiredReplicas
    }
}
