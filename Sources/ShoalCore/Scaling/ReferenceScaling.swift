/// Which rule decides a front-end's number of back-ends: Shoal's own (``ScalePolicy``), or one
/// of the reference policies it is compared with on the same cluster (``ReferenceScaling``).
public enum ScalingRule: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case shoal
    /// Knative's pod autoscaler (``KnativePodAutoscaler``).
    case kpa
    /// Kubernetes' horizontal pod autoscaler (``HorizontalPodAutoscaler``).
    case hpa

    public var description: String { rawValue }
}

/// A reference policy (KPA or HPA) driving the same leases as ``ScalePolicy``: it is given the
/// same snapshot and answers with the same decisions, one step at a time towards the number of
/// back-ends the algorithm wants.
///
/// Pods are the members that serve: the back-ends, plus the front-end's own instance while it
/// serves (`local: serve`, or no back-end at all). So with `local: standby` one pod is the
/// instance alone, and two pods are two back-ends (the instance stands by).
public struct ReferenceScaling: Sendable {
    public enum Algorithm: Sendable {
        case kpa(KnativePodAutoscaler)
        case hpa(HorizontalPodAutoscaler)
    }

    public private(set) var algorithm: Algorithm
    public var backends: BackendRange
    public var local: LocalRole

    /// nil for ``ScalingRule/shoal``. `target`: requests in flight per member it aims for.
    public init?(rule: ScalingRule, target: Double, backends: BackendRange, local: LocalRole) {
        switch rule {
        case .shoal: return nil
        case .kpa: algorithm = .kpa(KnativePodAutoscaler(settings: .init(target: target)))
        case .hpa: algorithm = .hpa(HorizontalPodAutoscaler(settings: .init(target: target)))
        }
        self.backends = backends
        self.local = local
    }

    public var rule: ScalingRule {
        switch algorithm {
        case .kpa: .kpa
        case .hpa: .hpa
        }
    }

    public mutating func evaluate(_ snapshot: ScalePolicy.Snapshot, now: Timestamp) -> ScalePolicy.Decision {
        let serving = snapshot.serving.count
        let localServes = local == .serve || serving == 0
        let members = serving + (localServes ? 1 : 0)
        let concurrency = Double(snapshot.localInFlight + snapshot.serving.reduce(0, +))
        let wantedMembers: Int?
        let reading: String
        switch algorithm {
        case .kpa(var kpa):
            wantedMembers = kpa.observe(concurrency: concurrency, readyPods: members, now: now)
            algorithm = .kpa(kpa)
            reading = kpa.lastReading.map {
                "stable \(Self.figure($0.stable)), panic \(Self.figure($0.panic)) in flight, target \(Self.figure(kpa.settings.target))\($0.panicking ? ", panicking" : "")"
            } ?? ""
        case .hpa(var hpa):
            wantedMembers = hpa.observe(concurrency: concurrency, currentReplicas: members, now: now)
            algorithm = .hpa(hpa)
            reading = "\(Self.figure(hpa.lastMetric ?? 0)) in flight per member, target \(Self.figure(hpa.settings.target))"
        }
        guard let wantedMembers else { return .hold }
        let wanted = min(max(backendsFor(members: wantedMembers), backends.min), backends.max)

        let staying = serving - snapshot.leaving
        let holding = staying + snapshot.pendingSince.count + snapshot.queued
        let reason = ScalePolicy.Reason.referenceTarget(rule: rule, wants: wanted, holds: holding, reading: reading)
        if wanted > holding {
            if snapshot.draining > 0 { return .cancelDrain(reason) }
            // One request waiting in the broker's queue at a time; max_backends as the broker counts.
            let counted = serving + snapshot.pendingSince.count + snapshot.queued + snapshot.draining
            guard snapshot.queued == 0, backends.allowsAnother(holding: counted) else { return .hold }
            return .acquire(reason)
        }
        if wanted < staying, snapshot.leaving == 0 {
            let cheapest = ScalePolicy.cheapestToDrain(snapshot.serving)
            return .release(index: cheapest, reason)
        }
        return .hold
    }

    /// Back-ends that make `members` serving members.
    func backendsFor(members: Int) -> Int {
        switch local {
        case .serve: members - 1
        case .standby: members <= 1 ? 0 : members
        }
    }

    static func figure(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0 ? "\(Int(tenths / 10))" : "\(tenths / 10)"
    }
}
