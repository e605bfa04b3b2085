import ShoalCore
import Testing

/// Knative's KPA and Kubernetes' HPA as implemented for the policy comparison, target 6 in
/// flight per member, driven one sample a second by a hand-driven clock.
@Suite struct ReferencePoliciesTests {
    let t0 = Timestamp(milliseconds: 5_000_000)

    func at(_ second: Int) -> Timestamp { t0 + .seconds(second) }

    /// Feeds `concurrency` every second over `seconds` (both ends included); the last answer.
    @discardableResult
    func feed(_ kpa: inout KnativePodAutoscaler, _ concurrency: Double, ready: Int, _ seconds: ClosedRange<Int>) -> Int? {
        var desired: Int?
        for second in seconds { desired = kpa.observe(concurrency: concurrency, readyPods: ready, now: at(second)) }
        return desired
    }

    @discardableResult
    func feed(_ hpa: inout HorizontalPodAutoscaler, _ concurrency: Double, replicas: Int, _ seconds: ClosedRange<Int>) -> Int? {
        var desired: Int?
        for second in seconds { desired = hpa.observe(concurrency: concurrency, currentReplicas: replicas, now: at(second)) }
        return desired
    }

    // MARK: KPA

    @Test func kpaStableModeFollowsTheSixtySecondAverage() {
        var kpa = KnativePodAutoscaler(settings: .init(target: 6))
        #expect(feed(&kpa, 18, ready: 3, 0...59) == 3)
        #expect(!kpa.isPanicking)
        // The load stops; the 60 s window still holds 39 s of 18 at 80 s: ⌈11.7 / 6⌉ = 2.
        #expect(feed(&kpa, 0, ready: 3, 60...80) == 2)
        #expect(kpa.lastReading?.stable == 11.7)
        // At 110 s: 9 s of 18 in the window, 2.7 in flight: one pod.
        #expect(feed(&kpa, 0, ready: 2, 81...110) == 1)
    }

    @Test func kpaPanicsAtTwiceTheTargetOverSixSecondsAndHoldsItsPeakWhilePanicking() {
        var kpa = KnativePodAutoscaler(settings: .init(target: 6))
        // At the target, one pod, no panic.
        #expect(feed(&kpa, 6, ready: 1, 0...59) == 1)
        #expect(!kpa.isPanicking)
        // A burst to 20: within 6 s the panic window wants ⌈avg / 6⌉ ≥ 2 × 1 pod, and it panics,
        // provisioning for the panic window while the stable one still says 1 or 2.
        let desired = feed(&kpa, 20, ready: 1, 60...66)
        #expect(kpa.isPanicking)
        #expect(desired == 4)
        #expect((kpa.lastReading?.stable ?? 0) < 12)
        // The burst ends: no scale-down while panicking, for 60 s after it last crossed the threshold.
        #expect(feed(&kpa, 0, ready: 4, 67...120) == 4)
        #expect(kpa.isPanicking)
        // Past that, it un-panics and follows the stable window (halving at most per decision).
        #expect(feed(&kpa, 0, ready: 4, 121...130) == 2)
        #expect(!kpa.isPanicking)
    }

    @Test func kpaDecidesEveryTwoSeconds() {
        var kpa = KnativePodAutoscaler(settings: .init(target: 6))
        #expect(kpa.observe(concurrency: 6, readyPods: 1, now: at(0)) == 1)
        // A burst one second later waits for the next tick.
        #expect(kpa.observe(concurrency: 60, readyPods: 1, now: at(1)) == 1)
        // Then the window holds 6, 60, 60: ⌈42 / 6⌉ = 7.
        #expect(kpa.observe(concurrency: 60, readyPods: 1, now: at(2)) == 7)
    }

    // MARK: HPA

    @Test func hpaDecidesOnceASyncPeriodWithinATolerance() {
        var hpa = HorizontalPodAutoscaler(settings: .init(target: 6))
        #expect(feed(&hpa, 30, replicas: 1, 0...14) == nil)
        // 6.5 per pod is within 10 % of 6: nothing changes.
        var within = HorizontalPodAutoscaler(settings: .init(target: 6))
        #expect(feed(&within, 6.5, replicas: 1, 0...15) == 1)
        // 6.7 is outside it: ⌈1.12 × 1⌉ = 2.
        var outside = HorizontalPodAutoscaler(settings: .init(target: 6))
        #expect(feed(&outside, 6.7, replicas: 1, 0...15) == 2)
        // Scale-up limited to max(2 × current, 4).
        #expect(feed(&hpa, 30, replicas: 1, 15...15) == 4)
    }

    @Test func hpaScalesDownOnlyWhenEveryRecommendationOfTheLastFiveMinutesAgrees() {
        var hpa = HorizontalPodAutoscaler(settings: .init(target: 6))
        #expect(feed(&hpa, 18, replicas: 3, 0...15) == 3)
        // The load falls to 6 in all (2 per pod): the recommendation is 1, but the window holds a 3.
        #expect(feed(&hpa, 6, replicas: 3, 16...300) == 3)
        #expect(hpa.lastMetric == 2)
        // 300 s after the last recommendation of 3 (at 15 s), the maximum in the window is 1.
        #expect(feed(&hpa, 6, replicas: 3, 301...330) == 1)
    }

    // MARK: Driving the leases

    @Test func podsAreMembersSoTheLocalRoleChangesHowManyBackends() {
        var serve = ReferenceScaling(rule: .kpa, target: 6, backends: BackendRange(min: 0, max: 3), local: .serve)!
        var standby = ReferenceScaling(rule: .kpa, target: 6, backends: BackendRange(min: 0, max: 3), local: .standby)!
        // 9 in flight on the instance alone: KPA wants 2 pods. Serving, that is one back-end beside
        // the instance; standing by, two back-ends (one would only replace the instance).
        guard case .acquire(.referenceTarget(.kpa, let serveWants, 0, _)) = serve.evaluate(.init(localInFlight: 9), now: t0),
              case .acquire(.referenceTarget(.kpa, let standbyWants, 0, _)) = standby.evaluate(.init(localInFlight: 9), now: t0)
        else { Issue.record("expected both to acquire"); return }
        #expect(serveWants == 1)
        #expect(standbyWants == 2)
        #expect(ReferenceScaling(rule: .shoal, target: 6, backends: BackendRange(), local: .serve) == nil)
    }

    @Test func oneStepAtATimeCountingLeasesOnTheirWay() {
        var hpa = ReferenceScaling(rule: .hpa, target: 6, backends: BackendRange(min: 0, max: 3), local: .serve)!
        _ = hpa.evaluate(.init(localInFlight: 6, serving: [6, 6]), now: t0)
        // 36 in flight on average over 3 members, 12 each: twice the target, 6 members, 5 back-ends: max_backends 3.
        let busy = ScalePolicy.Snapshot(localInFlight: 18, serving: [18, 18])
        guard case .acquire = hpa.evaluate(busy, now: t0 + .seconds(15)) else { Issue.record("expected an acquire"); return }
        // One starting already makes three: hold; a queued request is not doubled.
        #expect(hpa.evaluate(.init(localInFlight: 18, serving: [18, 18], pendingSince: [t0]), now: t0 + .seconds(16)) == .hold)
        #expect(hpa.evaluate(.init(localInFlight: 18, serving: [18], queued: 1), now: t0 + .seconds(17)) == .hold)
        // Our scale-down drain is taken back rather than a new lease asked for.
        guard case .cancelDrain = hpa.evaluate(.init(localInFlight: 18, serving: [18], draining: 1), now: t0 + .seconds(18)) else {
            Issue.record("expected a drain cancelled"); return
        }
    }

    @Test func givesBackTheCheapestAndNotASecondWhileOneIsLeaving() {
        var kpa = ReferenceScaling(rule: .kpa, target: 6, backends: BackendRange(min: 0, max: 3), local: .serve)!
        // Nothing in flight over 4 members: it wants max(0, ⌊4 / 2⌋) = 2 members, one back-end.
        guard case .release(index: 1, _) = kpa.evaluate(.init(serving: [1, 0, 1]), now: t0) else {
            Issue.record("expected the idle back-end given back"); return
        }
        #expect(kpa.evaluate(.init(serving: [1, 0, 1], leaving: 1), now: t0 + .seconds(2)) == .hold)
    }
}
