/// Knative's pod autoscaler (KPA) decision, as a reference to compare Shoal's policy with.
///
/// Implemented from Knative Serving's published algorithm: `Scale` in
/// `knative/serving/pkg/autoscaler/scaling/autoscaler.go`, and the defaults of its
/// `config-autoscaler` ("Configuring the Autoscaler", knative.dev docs): a stable window of 60 s,
/// a panic window of 6 s (10 % of it), panic at 200 % of the target, a decision every 2 s,
/// scale-up by at most ×1000 and scale-down by at most ÷2 per decision.
///
/// - Stable mode: desired pods = ⌈average total concurrency over 60 s / target⌉.
/// - Panic mode starts when ⌈6 s average / target⌉ ÷ ready pods ≥ 2, is extended while that holds,
///   and ends 60 s after it last held. While panicking the count follows the larger of the two
///   windows and never goes down.
///
/// Concurrency is the total of requests in flight over every serving member; windows average
/// the samples they hold (Knative averages per-second buckets; our samples are evenly spaced).
/// Scale-to-zero and the activator have no counterpart: the front-end's own instance is always there.
public struct KnativePodAutoscaler: Sendable {
    public struct Settings: Sendable, Hashable {
        /// Requests in flight per pod it aims for.
        public var target: Double
        public var stableWindow: Duration = .seconds(60)
        public var panicWindow: Duration = .seconds(6)
        /// Panic when the panic window wants this many times the ready pods (200 %).
        public var panicThreshold: Double = 2
        public var maxScaleUpRate: Double = 1000
        public var maxScaleDownRate: Double = 2
        public var tickInterval: Duration = .seconds(2)

        public init(target: Double) {
            self.target = target
        }
    }

    /// What the last decision saw, for the reason sentence.
    public struct Reading: Sendable, Hashable {
        public var stable: Double
        public var panic: Double
        public var panicking: Bool
    }

    struct Sample: Sendable, Hashable {
        var at: Timestamp
        var concurrency: Double
    }

    public let settings: Settings
    private var samples: [Sample] = []
    /// The last decision at which the panic threshold was crossed; nil when not panicking.
    private var lastOverPanicThreshold: Timestamp?
    private var maxPanicPods = 0
    private var nextTick: Timestamp?
    /// The pods it wants, from its last decision (nil before the first).
    public private(set) var desiredPods: Int?
    public private(set) var lastReading: Reading?

    public init(settings: Settings) {
        self.settings = settings
    }

    public var isPanicking: Bool { lastOverPanicThreshold != nil }

    /// One sample of the total concurrency with `readyPods` serving; every `tickInterval` it
    /// decides again. Returns the pods it wants now.
    public mutating func observe(concurrency: Double, readyPods: Int, now: Timestamp) -> Int? {
        samples.append(Sample(at: now, concurrency: concurrency))
        samples.removeAll { now - $0.at >= settings.stableWindow }
        if let next = nextTick, now < next { return desiredPods }
        nextTick = now + settings.tickInterval
        desiredPods = decide(readyPods: readyPods, now: now)
        return desiredPods
    }

    private mutating func decide(readyPods: Int, now: Timestamp) -> Int {
        let ready = Double(max(1, readyPods))
        let stable = average(within: settings.stableWindow, now: now)
        let panic = average(within: settings.panicWindow, now: now)
        let maxScaleUp = (settings.maxScaleUpRate * ready).rounded(.up)
        let maxScaleDown = (ready / settings.maxScaleDownRate).rounded(.down)
        let stablePods = (stable / settings.target).rounded(.up)
        let panicPods = (panic / settings.target).rounded(.up)
        let desiredStable = Int(min(max(stablePods, maxScaleDown), maxScaleUp))
        let desiredPanic = Int(min(max(panicPods, maxScaleDown), maxScaleUp))

        if panicPods / ready >= settings.panicThreshold {
            lastOverPanicThreshold = now  // Begin, or extend, panic.
        } else if let last = lastOverPanicThreshold, last + settings.stableWindow < now {
            lastOverPanicThreshold = nil  // The surge has made its way into the stable window.
            maxPanicPods = 0
        }
        var desired = desiredStable
        if isPanicking {
            // Provision for the larger window, and never scale down while panicking.
            maxPanicPods = max(maxPanicPods, desired, desiredPanic)
            desired = maxPanicPods
        }
        lastReading = Reading(stable: stable, panic: panic, panicking: isPanicking)
        return desired
    }

    private func average(within window: Duration, now: Timestamp) -> Double {
        let recent = samples.filter { now - $0.at < window }
        return recent.isEmpty ? 0 : recent.map(\.concurrency).reduce(0, +) / Double(recent.count)
    }
}
