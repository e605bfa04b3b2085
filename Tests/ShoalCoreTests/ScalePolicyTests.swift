import ShoalCore
import Testing

/// The load manager's rule, thresholds low 2 / high 6, with a hand-driven clock.
@Suite struct ScalePolicyTests {
    let t0 = Timestamp(milliseconds: 5_000_000)
    func lowForFiveSeconds(_ inFlight: Int) -> ScalePolicy.Reason {
        .allBackendsLow(low: 2, holdTime: .seconds(5), inFlight: inFlight)
    }

    func policy(min: Int = 0, max: Int = 3) -> ScalePolicy {
        ScalePolicy(thresholds: LoadThresholds(low: 2, high: 6), backends: BackendRange(min: min, max: max),
                    holdTime: .seconds(5), readinessAllowance: .seconds(2))
    }

    @Test func aHighFrontEndAloneLeasesItsFirstBackend() {
        var scale = policy()
        #expect(scale.evaluate(.init(localInFlight: 5), now: t0) == .hold)
        #expect(scale.evaluate(.init(localInFlight: 6), now: t0) == .acquire(.frontendAloneHigh(inFlight: 6, high: 6)))
    }

    @Test func oneMoreOnlyWhenEveryBackendIsHigh() {
        var scale = policy()
        #expect(scale.evaluate(.init(serving: [6, 5]), now: t0) == .hold)
        #expect(scale.evaluate(.init(serving: [6, 9]), now: t0) == .acquire(.allBackendsHigh(inFlight: [6, 9], high: 6)))
    }

    @Test func aPendingLeaseIsCountedSoABurstDoesNotOverAsk() {
        var scale = policy()
        let pending = [t0]
        #expect(scale.evaluate(.init(serving: [9], pendingSince: pending), now: t0 + .seconds(1)) == .hold)
        // Past the readiness allowance the request is presumed lost; another may be asked for.
        #expect(scale.evaluate(.init(serving: [9], pendingSince: pending), now: t0 + .seconds(3)) == .acquire(.allBackendsHigh(inFlight: [9], high: 6)))
    }

    @Test func neverAboveMaxBackends() {
        var scale = policy(max: 2)
        #expect(scale.evaluate(.init(serving: [9, 9]), now: t0) == .hold)
    }

    @Test func risingLoadCancelsADrainInsteadOfLeasing() {
        var scale = policy()
        #expect(scale.evaluate(.init(serving: [8], draining: 1), now: t0) == .cancelDrain(.allBackendsHigh(inFlight: [8], high: 6)))
    }

    @Test func theMinimumIsKeptEvenWithoutLoad() {
        var scale = policy(min: 1)
        #expect(scale.evaluate(.init(), now: t0) == .acquire(.belowMinimum(minimum: 1, holding: 0)))
        #expect(scale.evaluate(.init(pendingSince: [t0]), now: t0) == .hold)
        #expect(scale.evaluate(.init(draining: 1), now: t0) == .cancelDrain(.belowMinimum(minimum: 1, holding: 0)))
        #expect(scale.evaluate(.init(serving: [0]), now: t0 + .seconds(60)) == .hold, "not below min")
    }

    @Test func allLowForTheHoldTimeReleasesTheCheapestToDrain() {
        var scale = policy()
        let lowLoad = ScalePolicy.Snapshot(serving: [1, 0, 1])
        #expect(scale.evaluate(lowLoad, now: t0) == .hold)
        #expect(scale.evaluate(lowLoad, now: t0 + .seconds(4)) == .hold)
        #expect(scale.evaluate(lowLoad, now: t0 + .seconds(5)) == .release(index: 1, lowForFiveSeconds(0)),
                "the idle one, not the last added")
        // The next release needs a new hold period; of equals, the last added goes.
        #expect(scale.evaluate(.init(serving: [1, 1]), now: t0 + .seconds(6)) == .hold)
        #expect(scale.evaluate(.init(serving: [1, 1]), now: t0 + .seconds(11)) == .release(index: 1, lowForFiveSeconds(1)))
    }

    @Test func aMediumMomentRestartsTheHoldPeriod() {
        var scale = policy()
        #expect(scale.evaluate(.init(serving: [0, 0]), now: t0) == .hold)
        #expect(scale.evaluate(.init(serving: [3, 0]), now: t0 + .seconds(3)) == .hold)
        #expect(scale.evaluate(.init(serving: [0, 0]), now: t0 + .seconds(6)) == .hold)
        #expect(scale.evaluate(.init(serving: [0, 0]), now: t0 + .seconds(10)) == .hold)
        #expect(scale.evaluate(.init(serving: [0, 0]), now: t0 + .seconds(11)) == .release(index: 1, lowForFiveSeconds(0)))
    }

    @Test func hysteresisMediumLoadNeitherAddsNorRemoves() {
        var scale = policy()
        for second in 0..<30 {
            #expect(scale.evaluate(.init(serving: [4, 3]), now: t0 + .seconds(second)) == .hold)
        }
    }

    @Test func noSecondAskWhileOneWaitsInTheBrokersQueue() {
        var scale = policy(min: 1)
        #expect(scale.evaluate(.init(serving: [9], queued: 1), now: t0) == .hold)
        #expect(scale.evaluate(.init(queued: 1), now: t0) == .hold, "below min, but the ask is already queued")
        #expect(scale.evaluate(.init(serving: [9], draining: 1, queued: 1), now: t0) == .cancelDrain(.allBackendsHigh(inFlight: [9], high: 6)))
    }

    @Test func reasonsReadAsTheEventLogShowsThem() {
        #expect(ScalePolicy.Reason.belowMinimum(minimum: 2, holding: 1).description == "below min_backends 2: holds 1")
        #expect(ScalePolicy.Reason.frontendAloneHigh(inFlight: 7, high: 6).description == "front-end alone is High: 7 in flight >= high 6")
        #expect(ScalePolicy.Reason.allBackendsHigh(inFlight: [6, 9], high: 6).description == "all 2 back-ends High: in flight [6, 9] >= high 6")
        #expect(lowForFiveSeconds(1).description
            == "every back-end Low (< 2 in flight) for 5.0 seconds; giving back the cheapest to drain (in flight: 1)")
    }
}
