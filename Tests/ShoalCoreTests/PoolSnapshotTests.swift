import ShoalCore
import Testing

/// One snapshot of the pool behind fair share, max_backends, the plan and the slots it uses.
@Suite struct PoolSnapshotTests {
    let now = Timestamp(milliseconds: 9_000_000)

    func lease(_ id: Int, _ service: String, _ state: LeaseState, _ host: String? = nil, _ slot: Int? = nil) -> PoolSnapshot.LeaseSlot {
        PoolSnapshot.LeaseSlot(id: LeaseID("L-\(id)"), service: service, state: state, host: host, slot: slot)
    }

    @Test func aLeaseOnACordonedHostCountsInCapacitySoEveryViewAgrees() {
        // c1 is cordoned with a lease still draining there; c2 is open with one free slot.
        let pool = PoolSnapshot(
            hosts: [.init(name: "c1", slots: 2, isOpen: false), .init(name: "c2", slots: 2)],
            services: ["a": .init(backends: BackendRange(min: 0, max: 3)), "b": .init(backends: BackendRange(min: 0, max: 3))],
            leases: [lease(1, "a", .active, "c1", 0), lease(2, "a", .active, "c2", 0), lease(3, "b", .requested)])
        #expect(pool.capacity == 3, "one free on c2, two held")
        #expect(pool.allocation.shares == ["a": 2, "b": 1])
        #expect(pool.queuedReason(for: "b") == "queued: no free slot for b (fair share 1, holds 0)")
        let assignment = pool.assign(now: now)
        #expect(assignment.steps == [.grant(LeaseID("L-3"), host: "c2", slot: 1, reason: "granted slot 1 of c2: b is below its fair share 1")])
        #expect(assignment.explanation == pool.allocation.explanation)
    }

    @Test func maxBackendsCountsEveryLeaseHeldOrWaitedFor() {
        let pool = PoolSnapshot(
            hosts: [.init(name: "c1", slots: 4)],
            services: ["a": .init(backends: BackendRange(min: 0, max: 2))],
            leases: [lease(1, "a", .draining, "c1", 0), lease(2, "a", .requested), lease(3, "a", .released, "c1", 1)])
        #expect(pool.usage(of: "a").counted == 2)
        #expect(pool.refusal(ofAnotherFor: "a") == "denied: a already holds or waits for 2 of its max_backends 2")
        #expect(BackendRange(min: 0, max: 2).allowsAnother(holding: 1))
        #expect(!BackendRange(min: 0, max: 2).allowsAnother(holding: 2))
    }

    @Test func aPreemptionDrainsTheNewestLeaseOfTheServiceAboveItsShareByItsDrainTimeout() {
        let pool = PoolSnapshot(
            hosts: [.init(name: "c1", slots: 2)],
            services: ["hi": .init(backends: BackendRange(min: 0, max: 1), priority: 1),
                       "lo": .init(backends: BackendRange(min: 0, max: 2), drainTimeout: .seconds(5))],
            leases: [lease(1, "lo", .active, "c1", 0), lease(2, "lo", .active, "c1", 1), lease(3, "hi", .requested)])
        let steps = pool.assign(now: now).steps
        #expect(steps.count == 1)
        guard case .preempt(let id, let deadline, let reason)? = steps.first else {
            Issue.record("expected a preemption: \(steps)")
            return
        }
        #expect(id == LeaseID("L-2"))
        #expect(deadline == now + .seconds(5))
        #expect(reason.hasPrefix("preempted: lo holds more than its fair share 1"))
    }

    @Test func aPreemptionTakesTheBackEndCheapestToDrainNotTheNewest() {
        var busy = lease(2, "lo", .active, "c1", 1)  // The newest: the blind choice.
        busy.inFlight = 7
        var idle = lease(1, "lo", .active, "c1", 0)
        idle.inFlight = 1
        let pool = PoolSnapshot(
            hosts: [.init(name: "c1", slots: 2)],
            services: ["hi": .init(backends: BackendRange(min: 0, max: 1), priority: 1),
                       "lo": .init(backends: BackendRange(min: 0, max: 2))],
            leases: [idle, busy, lease(3, "hi", .requested)])
        #expect(pool.usage(of: "lo").preemptible == [LeaseID("L-1"), LeaseID("L-2")])
        guard case .preempt(let id, _, let reason)? = pool.assign(now: now).steps.first else {
            Issue.record("expected a preemption")
            return
        }
        #expect(id == LeaseID("L-1"))
        #expect(reason.hasSuffix("of lo's back-ends this one is the cheapest to drain (in flight: 1)"), "\(reason)")
    }

    @Test func aPlanStepTheSnapshotCannotCarryOutIsRejectedWithWhy() {
        let pool = PoolSnapshot(
            hosts: [.init(name: "c1", slots: 1)],
            services: ["a": .init(backends: BackendRange(min: 0, max: 3))],
            leases: [lease(1, "a", .requested)])
        let plan = Arbitration.Plan(
            decisions: [.grant(service: "a", host: "c1"), .grant(service: "a", host: "c1")],
            allocation: pool.allocation)
        let assignment = pool.assign(plan, now: now)
        #expect(assignment.steps.count == 1)
        #expect(assignment.rejected.map(\.why) == ["a has no waiting lease left"])
    }
}
