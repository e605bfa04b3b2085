import ShoalCore
import Testing

/// The load manager's rule, thresholds low 2 / high 6, with a hand-driven clock.
@Suite struct ScalePolicyTests {
    let t0 = Timestamp(milliseconds: 5_000_000)
    func lowForFiveSeconds(_ perBackend: Double, inFlight: Int) -> ScalePolicy.Reason {
        .lowOnAverage(perBackend: perBackend, low: 2, holdTime: .seconds(5), inFlight: inFlight)
    }

    func policy(min: Int = 0, max: Int = 3, low: Int = 2, high: Int = 6) -> ScalePolicy {
        ScalePolicy(thresholds: LoadThresholds(low: low, high: high), backends: BackendRange(min: min, max: max),
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

    @Test func lowForTheHoldTimeReleasesTheCheapestToDrain() {
        var scale = policy()
        let lowLoad = ScalePolicy.Snapshot(serving: [1, 0, 1])
        #expect(scale.evaluate(lowLoad, now: t0) == .hold)
        #expect(scale.evaluate(lowLoad, now: t0 + .seconds(4)) == .hold)
        #expect(scale.evaluate(lowLoad, now: t0 + .seconds(5)) == .release(index: 1, lowForFiveSeconds(0.7, inFlight: 0)),
                "the idle one, not the last added")
        // The next release needs a new hold period; of equals, the last added goes.
        #expect(scale.evaluate(.init(serving: [1, 1]), now: t0 + .seconds(6)) == .hold)
        #expect(scale.evaluate(.init(serving: [1, 1]), now: t0 + .seconds(11)) == .release(index: 1, lowForFiveSeconds(1, inFlight: 1)))
    }

    @Test func aSteadyLullThatKeepsOneBackendAtLowStillGivesTheOthersBack() {
        // Four connections: the paper's dispatch fills the instance to 2 and the first back-end
        // to 2, so that one is never Low at a sample; on average the back-ends are.
        var scale = policy()
        for tenth in 0..<50 {
            #expect(scale.evaluate(.init(localInFlight: 2, serving: [2, 0, 0]), now: t0 + .milliseconds(100 * tenth)) == .hold)
        }
        #expect(scale.evaluate(.init(localInFlight: 2, serving: [2, 0, 0]), now: t0 + .seconds(5))
                == .release(index: 2, lowForFiveSeconds(0.7, inFlight: 0)))
        for tenth in 1...50 {
            #expect(scale.evaluate(.init(localInFlight: 2, serving: [2, 0]), now: t0 + .seconds(5) + .milliseconds(100 * tenth)) == .hold)
        }
        #expect(scale.evaluate(.init(localInFlight: 2, serving: [2, 0]), now: t0 + .milliseconds(10_100))
                == .release(index: 1, lowForFiveSeconds(1, inFlight: 0)))
        // One back-end at 2 is not Low on average: it stays.
        for second in 11..<30 {
            #expect(scale.evaluate(.init(localInFlight: 2, serving: [2]), now: t0 + .seconds(second)) == .hold)
        }
    }

    @Test func aBusyMomentCountsInTheAverage() {
        var scale = policy()
        #expect(scale.evaluate(.init(serving: [0, 0]), now: t0) == .hold)
        // Mean over the last 5 s of [0, 10, 0, 0, 0, 0] samples: 10 / 6 per 2 back-ends, still Low.
        #expect(scale.evaluate(.init(serving: [5, 5]), now: t0 + .seconds(1)) == .hold)
        for second in 2...4 {
            #expect(scale.evaluate(.init(serving: [0, 0]), now: t0 + .seconds(second)) == .hold)
        }
        #expect(scale.evaluate(.init(serving: [0, 0]), now: t0 + .seconds(5)) == .release(index: 1, lowForFiveSeconds(0.8, inFlight: 0)))
        // A sustained Medium load does not average out.
        var busy = policy()
        for second in 0...12 {
            #expect(busy.evaluate(.init(serving: [5, 0]), now: t0 + .seconds(second)) == .hold)
        }
    }

    @Test func theBackendsThatStayAreNotMadeHighByTheRelease() {
        // Low 3 / high 4: two back-ends at 2 each are Low, but one alone would carry 4, High.
        var scale = policy(low: 3, high: 4)
        for second in 0...10 {
            #expect(scale.evaluate(.init(serving: [2, 2]), now: t0 + .seconds(second)) == .hold)
        }
    }

    @Test func aChangeInTheBackendsHeldStartsTheWindowAgain() {
        var scale = policy()
        #expect(scale.evaluate(.init(serving: [0, 0, 0]), now: t0) == .hold)
        #expect(scale.evaluate(.init(serving: [0, 0]), now: t0 + .seconds(4)) == .hold, "one went away: a new window")
        #expect(scale.evaluate(.init(serving: [0, 0]), now: t0 + .seconds(8)) == .hold)
        #expect(scale.evaluate(.init(serving: [0, 0]), now: t0 + .seconds(9)) == .release(index: 1, lowForFiveSeconds(0, inFlight: 0)))
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
        #expect(lowForFiveSeconds(0.7, inFlight: 1).description
            == "back-ends Low over 5.0 seconds: 0.7 in flight each on average < low 2; giving back the cheapest to drain (in flight: 1)")
    }
}
