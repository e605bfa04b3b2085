import ShoalCore
import Testing

/// Leadership by a store lease, driven by hand with a manual clock.
@Suite struct LeadershipTests {
    let t0 = Timestamp(milliseconds: 9_000_000)

    @Test func anElectedBrokerRenewsEverySecondAndStaysActiveWhileRenewalsAreAcknowledged() {
        var leadership = Leadership()
        #expect(leadership.elected(term: 42, at: t0) == [.activate(term: 42)])
        #expect(leadership.mayAct(at: t0))
        var now = t0
        for _ in 0..<30 {
            now = now + .seconds(1)
            let actions = leadership.tick(now: now)
            #expect(actions == [.renew])
            #expect(leadership.renewed(sentAt: now, remaining: .seconds(3)).isEmpty)
            #expect(leadership.mayAct(at: now + .milliseconds(500)))
        }
        #expect(leadership.role == .active(term: 42))
    }

    @Test func aPartitionedLeaderStepsDownBeforeItsLeaseCanExpireInTheStore() {
        var leadership = Leadership()
        _ = leadership.elected(term: 7, at: t0)
        _ = leadership.tick(now: t0 + .seconds(1))
        _ = leadership.renewed(sentAt: t0 + .seconds(1), remaining: .seconds(3))
        // From here no renewal is acknowledged: the store is unreachable.
        #expect(leadership.tick(now: t0 + .seconds(2)) == [.renew])
        #expect(leadership.tick(now: t0 + .seconds(3)) == [.renew])
        #expect(leadership.mayAct(at: t0 + .milliseconds(3300)), "proven until 1 s + 0.8 × 3 s")
        let actions = leadership.tick(now: t0 + .milliseconds(3400))
        #expect(actions.count == 1)
        guard case .stepDown = actions.first else { Issue.record("expected a step-down, got \(actions)"); return }
        #expect(!leadership.mayAct(at: t0 + .milliseconds(3400)))
        // The store expires the lease 3 s after the last renewal reached it, 4 s at the earliest:
        // the old leader stopped 0.6 s before any standby could be elected.
        #expect(t0 + .milliseconds(3400) < t0 + .seconds(4))
        #expect(leadership.tick(now: t0 + .seconds(5)).isEmpty, "stepped down once")
        #expect(leadership.renewed(sentAt: t0 + .seconds(5), remaining: .seconds(3)).isEmpty, "a late acknowledgement changes nothing")
        #expect(!leadership.mayAct(at: t0 + .seconds(5)))
    }

    @Test func anExpiredLeaseOrARefusedWriteEndsLeadershipAtOnce() {
        var expired = Leadership()
        _ = expired.elected(term: 1, at: t0)
        #expect(expired.renewed(sentAt: t0 + .seconds(1), remaining: .zero) == [.stepDown(reason: "the store says the leadership lease expired")])

        var fenced = Leadership()
        _ = fenced.elected(term: 1, at: t0)
        #expect(fenced.writeRefused("leader key created at 9, not 1") == [.stepDown(reason: "a write was refused: leader key created at 9, not 1")])
        #expect(!fenced.mayAct(at: t0))
    }

    @Test func aStandbyDoesNothingUntilElected() {
        var leadership = Leadership()
        #expect(leadership.tick(now: t0).isEmpty)
        #expect(leadership.renewed(sentAt: t0, remaining: .seconds(3)).isEmpty)
        #expect(!leadership.mayAct(at: t0))
    }
}
