/// The load manager's decision rule: when to lease one more back-end, when to give one back.
///
/// The paper's rule with hysteresis: when every member is High, add a back-end; when every
/// back-end has been Low for `holdTime`, remove the last one added. On top of it:
/// - a back-end still being started counts as capacity on its way, so a burst does not make the
///   front-end ask again and again before the first lease is even ready (Knative's panic-mode
///   over-asking); a request older than `readinessAllowance` is treated as lost and may be retried;
/// - if load rises again while a back-end drains, the drain is cancelled rather than a new lease
///   asked for;
/// - `min_backends`/`max_backends` bound everything.
///
/// The policy is a value with the state hysteresis needs (since when all is Low); the caller
/// passes `now` and a snapshot each time, so tests drive it with any clock.
public struct ScalePolicy: Sendable {
    public var thresholds: LoadThresholds
    public var backends: BackendRange
    /// How long every back-end must stay Low before one is given back.
    public var holdTime: Duration
    /// How long a lease may take to become ready before another may be asked for. The load
    /// manager sets it from the readiness times it measures.
    public var readinessAllowance: Duration

    private var lowSince: Timestamp?

    public init(
        thresholds: LoadThresholds,
        backends: BackendRange,
        holdTime: Duration = .seconds(5),
        readinessAllowance: Duration = .seconds(5)
    ) {
        self.thresholds = thresholds
        self.backends = backends
        self.holdTime = holdTime
        self.readinessAllowance = readinessAllowance
    }

    /// What the front-end looks like now.
    public struct Snapshot: Sendable, Hashable {
        /// Requests in progress on the front-end's local instance.
        public var localInFlight: Int
        /// Requests in progress on each serving back-end, in the order they were added.
        public var serving: [Int]
        /// When each lease asked for but not yet serving was requested.
        public var pendingSince: [Timestamp]
        /// Back-ends draining after a scale-down (their drain may be cancelled), oldest first.
        public var draining: Int

        public init(localInFlight: Int = 0, serving: [Int] = [], pendingSince: [Timestamp] = [], draining: Int = 0) {
            self.localInFlight = localInFlight
            self.serving = serving
            self.pendingSince = pendingSince
            self.draining = draining
        }
    }

    public enum Decision: Sendable, Hashable {
        case hold
        /// Ask the broker for one more back-end.
        case acquire
        /// Keep the most recently drained back-end instead of leasing a new one.
        case cancelDrain
        /// Drain and give back the serving back-end at this index (the last added).
        case release(index: Int)
    }

    public mutating func evaluate(_ snapshot: Snapshot, now: Timestamp) -> Decision {
        let fresh = snapshot.pendingSince.filter { now - $0 < readinessAllowance }.count
        let held = snapshot.serving.count + fresh
        // Below the minimum: take a drain back if there is one, else lease.
        if held < backends.min {
            lowSince = nil
            return snapshot.draining > 0 ? .cancelDrain : .acquire
        }

        let levels = snapshot.serving.map { thresholds.level(inFlight: $0) }
        let overloaded = levels.isEmpty
            ? thresholds.level(inFlight: snapshot.localInFlight) == .high
            : levels.allSatisfy { $0 == .high }
        if overloaded {
            lowSince = nil
            if snapshot.draining > 0 { return .cancelDrain }
            if fresh > 0 || held >= backends.max { return .hold }
            return .acquire
        }

        guard !levels.isEmpty, levels.allSatisfy({ $0 == .low }), snapshot.serving.count > backends.min else {
            lowSince = nil
            return .hold
        }
        guard let since = lowSince else {
            lowSince = now
            return .hold
        }
        guard now - since >= holdTime else { return .hold }
        lowSince = nil  // The next release waits for a fresh hold period.
        return .release(index: snapshot.serving.count - 1)
    }
}
