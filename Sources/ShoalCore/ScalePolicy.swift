/// The load manager's decision rule: when to lease one more back-end, when to give one back.
///
/// The paper's rule with hysteresis: when every member is High, add a back-end; when the
/// back-ends have been Low for `holdTime`, give one back. "Low" is judged on their load averaged
/// over the hold time — requests in flight per back-end below `low` — rather than at every
/// sample: the paper's dispatch fills the first member to `low` before the next, so a steady
/// lull of a few connections keeps one back-end at `low` and a per-sample rule never gives any
/// back (docs/thresholds.md). The average is taken over the back-ends held; the ones that remain
/// must stay below High on that average, so a release cannot cause a grant. On top of it:
/// - a back-end still being started counts as capacity on its way, so a burst does not make the
///   front-end ask again and again before the first lease is even ready (Knative's panic-mode
///   over-asking); a request older than `readinessAllowance` is treated as lost and may be retried;
/// - if load rises again while a back-end drains, the drain is cancelled rather than a new lease
///   asked for;
/// - while a request already waits in the broker's queue, no second one is sent (it would only
///   queue behind the first);
/// - `min_backends`/`max_backends` bound everything.
///
/// The policy is a value with the state hysteresis needs (since when all is Low); the caller
/// passes `now` and a snapshot each time, so tests drive it with any clock. Every decision other
/// than `hold` carries the ``Reason`` it was taken for, with its figures, for the broker's event
/// log.
public struct ScalePolicy: Sendable {
    public var thresholds: LoadThresholds
    public var backends: BackendRange
    /// How long the back-ends must stay Low, on their load averaged over it, before one is given back.
    public var holdTime: Duration
    /// How long a lease may take to become ready before another may be asked for. The load
    /// manager sets it from the readiness times it measures.
    public var readinessAllowance: Duration

    private var quiet = QuietWindow()

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
        /// Leases asked for and still waiting in the broker's queue for a free slot.
        public var queued: Int
        /// Serving back-ends whose scale-down drain was asked and not yet answered (still in
        /// `serving`): the reference policies do not count them, nor give back a second meanwhile.
        public var leaving: Int

        public init(
            localInFlight: Int = 0, serving: [Int] = [], pendingSince: [Timestamp] = [], draining: Int = 0, queued: Int = 0,
            leaving: Int = 0
        ) {
            self.localInFlight = localInFlight
            self.serving = serving
            self.pendingSince = pendingSince
            self.draining = draining
            self.queued = queued
            self.leaving = leaving
        }
    }

    public enum Decision: Sendable, Hashable {
        case hold
        /// Ask the broker for one more back-end.
        case acquire(Reason)
        /// Keep the most recently drained back-end instead of leasing a new one.
        case cancelDrain(Reason)
        /// Drain and give back the serving back-end at this index: the cheapest to drain (fewest
        /// requests in flight; of equals, the last added).
        case release(index: Int, Reason)
    }

    /// Why the policy decided what it did, with the figures it compared.
    public enum Reason: Sendable, Hashable, CustomStringConvertible {
        /// Fewer back-ends serving or starting than `min_backends`.
        case belowMinimum(minimum: Int, holding: Int)
        /// No back-end, and the local instance is High.
        case frontendAloneHigh(inFlight: Int, high: Int)
        /// Every serving back-end is High.
        case allBackendsHigh(inFlight: [Int], high: Int)
        /// The back-ends' load, averaged over the hold time, was below `low` per back-end
        /// (`perBackend`, requests in flight to one decimal); the one given back has `inFlight`.
        case lowOnAverage(perBackend: Double, low: Int, holdTime: Duration, inFlight: Int)
        /// A reference policy (``ReferenceScaling``) wants this many back-ends; `reading` has its figures.
        case referenceTarget(rule: ScalingRule, wants: Int, holds: Int, reading: String)

        public var description: String {
            switch self {
            case .belowMinimum(let minimum, let holding):
                "below min_backends \(minimum): holds \(holding)"
            case .frontendAloneHigh(let inFlight, let high):
                "front-end alone is High: \(inFlight) in flight >= high \(high)"
            case .allBackendsHigh(let inFlight, let high):
                "all \(inFlight.count) back-ends High: in flight \(inFlight) >= high \(high)"
            case .lowOnAverage(let perBackend, let low, let holdTime, let inFlight):
                "back-ends Low over \(holdTime): \(perBackend) in flight each on average < low \(low); giving back the cheapest to drain (in flight: \(inFlight))"
            case .referenceTarget(let rule, let wants, let holds, let reading):
                "\(rule) wants \(wants) back-ends, holds \(holds): \(reading)"
            }
        }
    }

    public mutating func evaluate(_ snapshot: Snapshot, now: Timestamp) -> Decision {
        let fresh = snapshot.pendingSince.filter { now - $0 < readinessAllowance }.count
        let held = snapshot.serving.count + fresh
        // Below the minimum: take a drain back if there is one, else lease.
        if held < backends.min {
            quiet.reset()
            let reason = Reason.belowMinimum(minimum: backends.min, holding: held)
            if snapshot.draining > 0 { return .cancelDrain(reason) }
            return snapshot.queued > 0 ? .hold : .acquire(reason)
        }

        let levels = snapshot.serving.map { thresholds.level(inFlight: $0) }
        let overloaded = levels.isEmpty
            ? thresholds.level(inFlight: snapshot.localInFlight) == .high
            : levels.allSatisfy { $0 == .high }
        if overloaded {
            quiet.reset()
            let reason = levels.isEmpty
                ? Reason.frontendAloneHigh(inFlight: snapshot.localInFlight, high: thresholds.high)
                : Reason.allBackendsHigh(inFlight: snapshot.serving, high: thresholds.high)
            if snapshot.draining > 0 { return .cancelDrain(reason) }
            // The broker's own rule for max_backends, on what it counts: every lease held or asked for.
            let counted = snapshot.serving.count + snapshot.pendingSince.count + snapshot.queued + snapshot.draining
            if fresh > 0 || snapshot.queued > 0 || !backends.allowsAnother(holding: counted) { return .hold }
            return .acquire(reason)
        }

        guard !levels.isEmpty, snapshot.serving.count > backends.min else {
            quiet.reset()
            return .hold
        }
        let n = snapshot.serving.count
        guard let total = quiet.add(snapshot.serving.reduce(0, +), backends: n, now: now, span: holdTime) else { return .hold }
        // Low per back-end on average, and the rest not High once this one's share moves to them.
        let remaining = n > 1 ? Double(n - 1) : 1
        guard total < Double(n * thresholds.low), total / remaining < Double(thresholds.high) else { return .hold }
        quiet.reset()  // The next release waits for a fresh hold period.
        // Peers drain a victim blindly; the front-end sees each member's requests in flight.
        let cheapest = Self.cheapestToDrain(snapshot.serving)
        let perBackend = (total / Double(n) * 10).rounded() / 10  // one decimal, as the event log shows it
        let reason = Reason.lowOnAverage(perBackend: perBackend, low: thresholds.low, holdTime: holdTime, inFlight: snapshot.serving[cheapest])
        return .release(index: cheapest, reason)
    }

    /// The serving back-end to give back: fewest requests in flight; of equals, the last added.
    static func cheapestToDrain(_ serving: [Int]) -> Int {
        serving.indices.min { (serving[$0], -$0) < (serving[$1], -$1) } ?? serving.count - 1
    }
}

/// The back-ends' total requests in flight, sampled, over the last hold time, while their number
/// stays the same. A few dozen samples (one per policy interval), so a plain array will do.
struct QuietWindow: Sendable {
    private var samples: [(at: Timestamp, total: Int)] = []
    private var sum = 0
    private var since: Timestamp?
    private var backends = 0

    mutating func reset() {
        samples.removeAll(keepingCapacity: true)
        sum = 0
        since = nil
    }

    /// Adds a sample; once the window has covered `span` with the same number of back-ends,
    /// returns the mean total in flight over it.
    mutating func add(_ total: Int, backends count: Int, now: Timestamp, span: Duration) -> Double? {
        if count != backends { reset(); backends = count }
        if since == nil { since = now }
        samples.append((now, total))
        sum += total
        while samples.count > 1, now - samples[0].at > span {
            sum -= samples.removeFirst().total
        }
        guard let since, now - since >= span else { return nil }
        return Double(sum) / Double(samples.count)
    }
}
