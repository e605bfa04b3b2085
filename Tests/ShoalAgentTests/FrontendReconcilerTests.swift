import ShoalCore
import Testing

/// The load manager's decisions, one event at a time, with a hand-driven clock.
@Suite struct FrontendReconcilerTests {
    func lowForFiveSeconds(_ perBackend: Double) -> String {
        "back-ends Low over 5.0 seconds: \(perBackend) in flight each on average < low 2; giving back the cheapest to drain (in flight: 0)"
    }
    let nothingInFlight = "nothing in flight from fe-a"

    // MARK: Scaling up

    @Test func noAskBeforeTheBrokerKnowsUs() {
        var fe = ReconcilerHarness()
        #expect(fe.reconciler.heartbeatInterval == .milliseconds(500))
        #expect(fe.tick(local: 9).isEmpty)
        fe.brokerLists()
        #expect(fe.reconciler.heartbeatInterval == .seconds(3), "a third of the 9 s TTL")
        #expect(fe.tick(local: 9) == [.acquire(reason: "front-end alone is High: 9 in flight >= high 6")])
    }

    @Test func aBrokerThatDoesNotAnswerIsAskedAgainSoon() {
        var fe = ReconcilerHarness()
        fe.brokerLists()
        #expect(fe.reconciler.brokerUnreachable().isEmpty)
        #expect(fe.reconciler.heartbeatInterval == .milliseconds(500), "a standby may have taken over")
        fe.brokerLists()
        #expect(fe.reconciler.heartbeatInterval == .seconds(3))
    }

    @Test func oneMoreBackEndOnlyWhenEveryBackEndIsHigh() {
        var fe = ReconcilerHarness()
        #expect(fe.brokerLists(fe.active(l1), fe.active(l2)) == [
            .addMember(lease: l1, endpoint: "10.0.0.1:7000"), .addMember(lease: l2, endpoint: "10.0.0.2:7000"),
        ])
        #expect(fe.tick(local: 9, [l1: 7, l2: 5]).isEmpty, "l2 is only Medium")
        #expect(fe.tick(local: 0, [l1: 7, l2: 6]) == [.acquire(reason: "all 2 back-ends High: in flight [7, 6] >= high 6")])
    }

    @Test func holdWhileAPendingLeaseIsFreshThenAskAgain() {
        var fe = ReconcilerHarness()
        fe.brokerLists()
        #expect(fe.tick(local: 9).count == 1)
        #expect(fe.tick(local: 9).isEmpty, "the first ask has no answer yet")
        #expect(fe.reconciler.leaseAcquired(fe.lease(l1, .granted), now: fe.now).isEmpty)
        fe.advance(.seconds(4))
        #expect(fe.tick(local: 9).isEmpty, "granted 4 s ago: capacity on its way")
        fe.advance(.seconds(2))
        #expect(fe.tick(local: 9) == [.acquire(reason: "front-end alone is High: 9 in flight >= high 6")],
                "older than the 5 s readiness allowance: presumed lost")
    }

    @Test func readinessIsMeasuredFromAskingToServing() {
        var fe = ReconcilerHarness()
        fe.brokerLists()
        _ = fe.tick(local: 9)
        _ = fe.reconciler.leaseAcquired(fe.lease(l1, .granted), now: fe.now)
        fe.advance(.milliseconds(1500))
        #expect(fe.brokerLists(fe.active(l1)) == [.addMember(lease: l1, endpoint: "10.0.0.1:7000")])
        #expect(fe.reconciler.readinessSamples == [.milliseconds(1500)])
        #expect(fe.reconciler.policy.readinessAllowance == .seconds(3), "twice the slowest start")

        #expect(fe.tick([l1: 9]).count == 1)
        _ = fe.reconciler.leaseAcquired(fe.lease(l2, .granted), now: fe.now)
        fe.advance(.milliseconds(2900))
        #expect(fe.tick([l1: 9]).isEmpty)
        fe.advance(.milliseconds(200))
        #expect(fe.tick([l1: 9]) == [.acquire(reason: "all 1 back-ends High: in flight [9] >= high 6")],
                "past the measured 3 s allowance")

        _ = fe.reconciler.leaseAcquired(fe.lease(l3, .granted), now: fe.now)
        fe.advance(.milliseconds(100))
        _ = fe.brokerLists(fe.active(l1), fe.active(l3))
        #expect(fe.reconciler.readinessSamples == [.milliseconds(1500), .milliseconds(100)])
        #expect(fe.reconciler.policy.readinessAllowance == .seconds(3))
    }

    @Test func noSecondAskWhileOneWaitsInTheBrokersQueue() {
        var fe = ReconcilerHarness()
        fe.brokerLists()
        _ = fe.tick(local: 9)
        _ = fe.reconciler.leaseAcquired(fe.lease(l1, .requested), now: fe.now)
        fe.advance(.seconds(60))
        #expect(fe.tick(local: 9).isEmpty, "queued for a minute: asking again would only queue behind it")
        fe.brokerLists()  // The broker dropped the request.
        #expect(fe.tick(local: 9) == [.acquire(reason: "front-end alone is High: 9 in flight >= high 6")])
    }

    @Test func minAndMaxBackendsBoundEverything() {
        var fe = ReconcilerHarness(min: 1, max: 2)
        fe.brokerLists()
        #expect(fe.tick() == [.acquire(reason: "below min_backends 1: holds 0")])
        #expect(fe.reconciler.acquireFailed().isEmpty)
        #expect(fe.tick() == [.acquire(reason: "below min_backends 1: holds 0")], "a failed ask is retried")
        _ = fe.reconciler.leaseDenied()
        #expect(fe.brokerLists(fe.active(l1), fe.active(l2)).count == 2)
        #expect(fe.tick([l1: 9, l2: 9]).isEmpty, "at max_backends 2")

        var atMinimum = ReconcilerHarness(min: 1)
        atMinimum.brokerLists(atMinimum.active(l1))
        for _ in 0..<12 {
            #expect(atMinimum.tick([l1: 0]).isEmpty, "Low for a minute, but never below min_backends")
            atMinimum.advance(.seconds(5))
        }
    }

    // MARK: Scaling down

    @Test func scaleDownDrainsTheBackEndCheapestToDrainNotTheLastAdded() {
        var fe = ReconcilerHarness()
        fe.brokerLists(fe.active(l1), fe.active(l2))
        #expect(fe.tick([l1: 0, l2: 1]).isEmpty)
        fe.advance(.seconds(5))
        #expect(fe.tick([l1: 0, l2: 1]) == [.drain(lease: l1, reason: lowForFiveSeconds(0.5))])
    }

    @Test func aReferencePolicyDrivesTheSameLeasesOneScaleDownAtATime() {
        var fe = ReconcilerHarness(scaling: .kpa, local: .serve)
        fe.brokerLists(fe.active(l1), fe.active(l2))
        // 1 in flight over three members: KPA wants ⌊3 / 2⌋ = 1 pod, the instance alone; the idle back-end goes first.
        guard case .drain(l2, let reason)? = fe.tick([l1: 1, l2: 0]).first else { Issue.record("expected l2 drained"); return }
        #expect(reason == "kpa wants 0 back-ends, holds 2: stable 1, panic 1 in flight, target 6")
        fe.advance(.seconds(2))
        #expect(fe.tick([l1: 1, l2: 0]).isEmpty, "not a second while the broker has not answered the first")
        #expect(fe.reconciler.reference?.rule == .kpa)
    }

    @Test func scaleDownAfterTheHoldTimeDrainsTheIdleOne() throws {
        var fe = ReconcilerHarness()
        fe.brokerLists(fe.active(l1), fe.active(l2))
        #expect(fe.tick([l1: 1, l2: 0]).isEmpty)
        fe.advance(.seconds(4))
        #expect(fe.tick([l1: 1, l2: 0]).isEmpty)
        fe.advance(.seconds(1))
        #expect(fe.tick([l1: 1, l2: 0]) == [.drain(lease: l2, reason: lowForFiveSeconds(0.5))])

        let draining = fe.reconciler.drainAccepted(fe.lease(l2, .draining, endpoint: "10.0.0.2:7000", drainReason: .scaleDown))
        #expect(draining.first == .removeMember(lease: l2, abandoningInFlight: false, reason: lowForFiveSeconds(0.5)))
        let drain = try #require(ReconcilerHarness.drainNumber(in: draining))
        #expect(fe.reconciler.memberDrained(lease: l2, drain: drain) == [.release(lease: l2, reason: nothingInFlight)])
        #expect(fe.reconciler.releaseAccepted(fe.lease(l2, .draining, endpoint: "10.0.0.2:7000")).isEmpty)

        #expect(fe.tick([l1: 9]) == [.acquire(reason: "all 1 back-ends High: in flight [9] >= high 6")],
                "a released lease is no longer cancellable")
        #expect(fe.brokerLists(fe.active(l1), fe.lease(l2, .draining, endpoint: "10.0.0.2:7000")).isEmpty,
                "the worker still finishes: not a new drain")
        #expect(fe.brokerLists(fe.active(l1)).isEmpty, "gone after its release: no member to remove")
        #expect(fe.reconciler.lease(l2) == nil)
    }

    @Test func aRefusedScaleDownKeepsTheBackEnd() {
        var fe = ReconcilerHarness()
        fe.brokerLists(fe.active(l1))
        _ = fe.tick([l1: 0])
        fe.advance(.seconds(5))
        #expect(fe.tick([l1: 0]) == [.drain(lease: l1, reason: lowForFiveSeconds(0))])
        #expect(fe.reconciler.drainFailed(lease: l1).isEmpty)
        #expect(fe.brokerLists(fe.active(l1)).isEmpty, "still a member")
        _ = fe.tick([l1: 0])
        fe.advance(.seconds(5))
        #expect(fe.tick([l1: 0]) == [.drain(lease: l1, reason: lowForFiveSeconds(0))], "tried again after another hold period")
    }

    @Test func loadRisingDuringAScaleDownCancelsItAndTheMemberComesBack() throws {
        var fe = ReconcilerHarness()
        let accepted = fe.scaleDownAccepted(l1)
        let drain = try #require(accepted)

        #expect(fe.tick(local: 7) == [.cancelDrain(lease: l1, reason: "front-end alone is High: 7 in flight >= high 6")])
        #expect(fe.tick(local: 7).isEmpty, "one cancel at a time, and no new lease instead")
        #expect(fe.reconciler.drainCancelAccepted(fe.active(l1)) == [.addMember(lease: l1, endpoint: "10.0.0.1:7000")])
        #expect(fe.reconciler.memberDrained(lease: l1, drain: drain).isEmpty, "the old member's drain no longer releases")
        #expect(fe.brokerLists(fe.active(l1)).isEmpty, "already a member")

        // Drained again later: the first member's late "drained" is not taken for the second's.
        _ = fe.tick([l1: 0])
        fe.advance(.seconds(5))
        #expect(fe.tick([l1: 0]) == [.drain(lease: l1, reason: lowForFiveSeconds(0))])
        let again = fe.reconciler.drainAccepted(fe.lease(l1, .draining, endpoint: "10.0.0.1:7000", drainReason: .scaleDown))
        let secondDrain = try #require(ReconcilerHarness.drainNumber(in: again))
        #expect(fe.reconciler.memberDrained(lease: l1, drain: drain).isEmpty)
        #expect(fe.reconciler.memberDrained(lease: l1, drain: secondDrain) == [.release(lease: l1, reason: nothingInFlight)])
    }

    @Test func aRefusedCancelLetsTheDrainFinish() throws {
        var fe = ReconcilerHarness()
        let accepted = fe.scaleDownAccepted(l1)
        let drain = try #require(accepted)
        #expect(fe.tick(local: 7).count == 1)
        #expect(fe.reconciler.memberDrained(lease: l1, drain: drain).isEmpty, "a cancel is on its way: no release yet")
        #expect(fe.reconciler.drainCancelFailed(lease: l1) == [.release(lease: l1, reason: nothingInFlight)])
    }

    // MARK: The broker's doing

    @Test func aLeaseRevokedWhileDrainingIsNotReleased() throws {
        var fe = ReconcilerHarness()
        fe.brokerLists(fe.active(l1), fe.active(l2))
        _ = fe.tick([l1: 0, l2: 0])
        fe.advance(.seconds(5))
        _ = fe.tick([l1: 0, l2: 0])
        let draining = fe.reconciler.drainAccepted(fe.lease(l2, .draining, endpoint: "10.0.0.2:7000", drainReason: .scaleDown))
        let drain = try #require(ReconcilerHarness.drainNumber(in: draining))

        #expect(fe.brokerLists(fe.active(l1)).isEmpty, "l2 revoked while draining: its member is already out")
        #expect(fe.reconciler.memberDrained(lease: l2, drain: drain).isEmpty, "nothing to release")
        #expect(fe.reconciler.lease(l2) == nil)
        #expect(fe.brokerLists() == [.removeMember(lease: l1, abandoningInFlight: true, reason: "its lease ended")],
                "revoked while serving: out at once, its in-flight requests sent elsewhere")
    }

    @Test func aLeaseTheBrokerDrainsIsWaitedForThenReleased() throws {
        var fe = ReconcilerHarness()
        fe.brokerLists(fe.active(l1))
        let preempted = fe.lease(l1, .draining, endpoint: "10.0.0.1:7000", drainReason: .preemption)
        let actions = fe.brokerLists(preempted)
        #expect(actions.first == .removeMember(lease: l1, abandoningInFlight: false, reason: "preemption ordered by the broker"))
        let drain = try #require(ReconcilerHarness.drainNumber(in: actions))
        #expect(fe.brokerLists(preempted).isEmpty, "already draining")
        #expect(fe.tick(local: 9) == [.acquire(reason: "front-end alone is High: 9 in flight >= high 6")],
                "the broker's drain is not ours to cancel")
        #expect(fe.reconciler.memberDrained(lease: l1, drain: drain) == [.release(lease: l1, reason: nothingInFlight)])
        #expect(fe.reconciler.releaseAccepted(preempted).isEmpty)

        // A lease drained before it ever served has nothing in flight: released at once.
        fe.brokerLists(preempted, fe.lease(l2, .granted))
        #expect(fe.brokerLists(preempted, fe.lease(l2, .draining, drainReason: .maintenance)) == [.release(lease: l2, reason: nothingInFlight)])
    }

    @Test func whileTheBrokerIsUnreachableMembersStayAndTheReleaseIsRetried() throws {
        var fe = ReconcilerHarness()
        fe.brokerLists(fe.active(l1), fe.active(l2))
        let actions = fe.brokerLists(fe.active(l1), fe.lease(l2, .draining, endpoint: "10.0.0.2:7000", drainReason: .maintenance))
        let drain = try #require(ReconcilerHarness.drainNumber(in: actions))
        #expect(fe.reconciler.memberDrained(lease: l2, drain: drain) == [.release(lease: l2, reason: nothingInFlight)])

        #expect(fe.reconciler.releaseFailed(lease: l2, now: fe.now).isEmpty)
        #expect(fe.reconciler.brokerUnreachable().isEmpty, "nothing removed")
        fe.advance(.milliseconds(100))
        #expect(fe.tick([l1: 3]).isEmpty, "too soon to send the release again")
        fe.advance(.milliseconds(400))
        #expect(fe.tick([l1: 3]) == [.release(lease: l2, reason: nothingInFlight)])
        #expect(fe.tick([l1: 3]).isEmpty, "one release on its way at a time")
        #expect(fe.reconciler.lease(l1)?.state == .active)

        _ = fe.reconciler.releaseFailed(lease: l2, now: fe.now)
        #expect(fe.reconciler.brokerForgotUs().isEmpty)
        fe.advance(.seconds(1))
        #expect(fe.tick([l1: 9]) == [.release(lease: l2, reason: nothingInFlight)],
                "the release is retried, but no lease asked for while the broker does not know us")
    }

    @Test func aReleaseTheBrokerDoesNotKnowForgetsTheLease() throws {
        var fe = ReconcilerHarness()
        fe.brokerLists(fe.active(l1))
        let actions = fe.brokerLists(fe.lease(l1, .draining, endpoint: "10.0.0.1:7000", drainReason: .preemption))
        let drain = try #require(ReconcilerHarness.drainNumber(in: actions))
        #expect(fe.reconciler.memberDrained(lease: l1, drain: drain).count == 1)
        #expect(fe.reconciler.releaseFoundNoLease(lease: l1).isEmpty)
        #expect(fe.reconciler.lease(l1) == nil)
        #expect(fe.reconciler.leaseStates.isEmpty)
    }

    @Test func aMemberThatCouldNotBeAddedIsTriedAgain() {
        var fe = ReconcilerHarness()
        #expect(fe.brokerLists(fe.active(l1)).count == 1)
        #expect(fe.reconciler.memberCouldNotBeAdded(lease: l1).isEmpty)
        #expect(fe.brokerLists(fe.active(l1)) == [.addMember(lease: l1, endpoint: "10.0.0.1:7000")])
        #expect(fe.brokerLists(fe.active(l1)).isEmpty)
    }

    // MARK: Stopping

    @Test func stoppingGivesEverythingBack() {
        var fe = ReconcilerHarness()
        fe.brokerLists(fe.active(l1), fe.lease(l2, .granted), fe.lease(l3, .requested))
        #expect(fe.reconciler.frontendStopping() == [
            .removeMember(lease: l1, abandoningInFlight: false, reason: "front-end stopping"),
            .drain(lease: l1, reason: "front-end fe-a stopping"),
            .release(lease: l1, reason: "front-end fe-a stopped"),
            .release(lease: l2, reason: "front-end fe-a stopped"),
            .release(lease: l3, reason: "front-end fe-a stopped"),
        ])
        #expect(fe.reconciler.leaseStates.isEmpty)
        #expect(fe.tick(local: 9).isEmpty, "nothing is decided after stopping")
        #expect(fe.brokerLists(fe.active(l1)).isEmpty, "a late heartbeat adds no member")
        let late = LeaseID("L-000004")
        #expect(fe.reconciler.leaseAcquired(fe.lease(late, .granted), now: fe.now) == [.release(lease: late, reason: "front-end fe-a stopped")])
    }
}
