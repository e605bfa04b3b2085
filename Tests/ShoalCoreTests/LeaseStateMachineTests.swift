import ShoalCore
import Testing

@Suite struct LeaseStateMachineTests {
    let start = Timestamp(milliseconds: 1_000_000)
    let ttl = Duration.seconds(10)

    func newLease() -> Lease {
        Lease(id: LeaseID("L-1"), service: "a", frontend: "fe-a", requestedAt: start, ttl: ttl)
    }

    func activeLease() throws -> Lease {
        var lease = newLease()
        _ = try lease.grant(host: "c1", now: start)
        _ = try lease.spawned(tasks: [0x40001, 0x40002])
        _ = try lease.becameReady(endpoint: "10.0.0.1:9000")
        return lease
    }

    @Test func theHappyPathRunsRequestedToReleased() throws {
        var lease = newLease()
        #expect(lease.state == .requested && !lease.holdsSlot)
        #expect(try lease.grant(host: "c1", now: start) == .spawn(host: "c1"))
        #expect(lease.state == .granted && lease.host == "c1" && lease.holdsSlot)
        #expect(try lease.spawned(tasks: [7, 8]) == .none)
        #expect(lease.tasks == [7, 8])
        #expect(try lease.becameReady(endpoint: "10.0.0.1:9000") == .addMember)
        #expect(lease.state == .active)
        let deadline = start + .seconds(30)
        #expect(try lease.drainRequested(Drain(reason: .scaleDown, deadline: deadline)) == .orderDrain(deadline: deadline))
        #expect(lease.state == .draining && lease.holdsSlot)
        #expect(try lease.drained() == .stopTasks)
        #expect(lease.state == .released && !lease.holdsSlot)
    }

    @Test func aRefusedEventChangesNothing() throws {
        var lease = try activeLease()
        let before = lease
        #expect(throws: Lease.TransitionError.self) { try lease.grant(host: "c2", now: start) }
        #expect(throws: Lease.TransitionError.self) { try lease.drained() }
        #expect(lease == before)
        let error = Lease.TransitionError(lease: LeaseID("L-1"), event: "grant", state: .active)
        #expect(error.description == "lease L-1 is active: cannot grant")
    }

    @Test func aFinalLeaseCannotBeRenewedOrRevokedAgain() throws {
        var lease = try activeLease()
        #expect(try lease.revoke(.hostFailed) == .abandonTasks, "a failed host's tasks get no message: it would hold up every other host's")
        #expect(lease.state == .revoked && lease.revocation == .hostFailed)
        #expect(throws: Lease.TransitionError.self) { try lease.renew(now: start, ttl: ttl) }
        #expect(throws: Lease.TransitionError.self) { try lease.revoke(.taskDied) }
        #expect(lease.revocation == .hostFailed)
    }

    @Test func drainingAnUnservedLeaseEndsItAtOnce() throws {
        var requested = newLease()
        #expect(try requested.drainRequested(Drain(reason: .scaleDown, deadline: start)) == .none)
        #expect(requested.state == .released)

        var granted = newLease()
        _ = try granted.grant(host: "c1", now: start)
        #expect(try granted.drainRequested(Drain(reason: .scaleDown, deadline: start)) == .stopTasks)
        #expect(granted.state == .released)
    }

    @Test func aSecondDrainKeepsTheEarlierDeadline() throws {
        var lease = try activeLease()
        let early = start + .seconds(5), late = start + .seconds(50)
        _ = try lease.drainRequested(Drain(reason: .scaleDown, deadline: early))
        #expect(try lease.drainRequested(Drain(reason: .maintenance, deadline: late)) == .none)
        #expect(lease.drain == Drain(reason: .scaleDown, deadline: early))
        let earlier = start + .seconds(1)
        #expect(try lease.drainRequested(Drain(reason: .preemption, deadline: earlier)) == .orderDrain(deadline: earlier))
        #expect(lease.drain?.reason == .preemption)
    }

    @Test func onlyAScaleDownDrainCanBeCancelled() throws {
        var lease = try activeLease()
        _ = try lease.drainRequested(Drain(reason: .scaleDown, deadline: start + .seconds(30)))
        #expect(try lease.drainCancelled() == .resumeRouting)
        #expect(lease.state == .active && lease.drain == nil)

        _ = try lease.drainRequested(Drain(reason: .preemption, deadline: start + .seconds(30)))
        #expect(throws: Lease.TransitionError.self) { try lease.drainCancelled() }
        #expect(lease.state == .draining)
    }

    @Test func anUnrenewedLeaseExpiresAndARenewedOneDoesNot() throws {
        var lease = try activeLease()
        #expect(lease.tick(now: start + .seconds(9)) == .none)
        _ = try lease.renew(now: start + .seconds(9), ttl: ttl)
        #expect(lease.tick(now: start + .seconds(15)) == .none)
        #expect(lease.tick(now: start + .seconds(19)) == .stopTasks)
        #expect(lease.state == .revoked && lease.revocation == .ttlExpired)
        #expect(lease.tick(now: start + .seconds(100)) == .none)
    }

    @Test func aDrainPastItsDeadlineIsRevoked() throws {
        var lease = try activeLease()
        _ = try lease.renew(now: start, ttl: .seconds(3600))
        _ = try lease.drainRequested(Drain(reason: .preemption, deadline: start + .seconds(5)))
        #expect(lease.tick(now: start + .seconds(4)) == .none)
        #expect(lease.tick(now: start + .seconds(5)) == .stopTasks)
        #expect(lease.revocation == .drainDeadlinePassed)
    }

    @Test func aRequestWithNoSlotYetNeedsNoKill() throws {
        var lease = newLease()
        #expect(try lease.revoke(.ttlExpired) == .none)
        #expect(lease.state == .revoked)
    }

    @Test func timestampsAddDurationsInMilliseconds() {
        #expect(start + .milliseconds(1500) == Timestamp(milliseconds: 1_001_500))
        #expect((start + .seconds(2)) - start == .seconds(2))
    }
}

/// The events the broker's release and the workers' exits bring.
@Suite struct LeaseReleaseAndExitTests {
    let start = Timestamp(milliseconds: 1_000_000)

    func activeLease() throws -> Lease {
        var lease = Lease(id: LeaseID("L-1"), service: "a", frontend: "fe-a", requestedAt: start, ttl: .seconds(10))
        _ = try lease.grant(host: "c1", now: start)
        _ = try lease.spawned(tasks: [7])
        _ = try lease.becameReady(endpoint: "10.0.0.1:9000")
        return lease
    }

    @Test func theFrontEndsReleaseDrainsTheWorkerAndItsExitThenMeansDrained() throws {
        var lease = try activeLease()
        #expect(try lease.frontendReleased(now: start, drainTimeout: .seconds(20)) == .drainWorker)
        #expect(lease.state == .draining && lease.workerDraining)
        #expect(lease.drain == Drain(reason: .scaleDown, deadline: start + .seconds(20)))
        #expect(lease.workerExited() == .stopTasks)
        #expect(lease.state == .released)
        #expect(try lease.frontendReleased(now: start, drainTimeout: .seconds(20)) == .none, "releasing twice is harmless")
    }

    @Test func aReleaseDuringABrokerDrainKeepsItsDeadline() throws {
        var lease = try activeLease()
        _ = try lease.drainRequested(Drain(reason: .preemption, deadline: start + .seconds(5)))
        #expect(try lease.frontendReleased(now: start, drainTimeout: .seconds(20)) == .drainWorker)
        #expect(lease.drain == Drain(reason: .preemption, deadline: start + .seconds(5)))
    }

    @Test func aWorkerExitWithoutADrainOrderIsItsDeath() throws {
        var lease = try activeLease()
        _ = try lease.drainRequested(Drain(reason: .scaleDown, deadline: start + .seconds(5)))
        #expect(lease.workerExited() == .stopTasks)
        #expect(lease.state == .revoked && lease.revocation == .taskDied)
        #expect(lease.workerExited() == .none)
    }

    @Test func aWithdrawnRequestEndsAtOnce() throws {
        var lease = Lease(id: LeaseID("L-2"), service: "a", frontend: "fe-a", requestedAt: start, ttl: .seconds(10))
        #expect(try lease.frontendReleased(now: start, drainTimeout: .seconds(20)) == .none)
        #expect(lease.state == .released)
    }

    @Test func readinessCountsFromTheGrantNotTheRequest() throws {
        var lease = Lease(id: LeaseID("L-3"), service: "a", frontend: "fe-a", requestedAt: start, ttl: .seconds(600))
        _ = try lease.grant(host: "c1", now: start + .seconds(90))
        #expect(lease.tick(now: start + .seconds(120), readinessTimeout: .seconds(60)) == .none)
        #expect(lease.tick(now: start + .seconds(151), readinessTimeout: .seconds(60)) == .stopTasks)
        #expect(lease.revocation == .spawnFailed)
    }
}

/// What a restarted broker does with each live lease it finds.
@Suite struct LeaseRecoveryTests {
    let start = Timestamp(milliseconds: 1_000_000)

    func lease(_ state: LeaseState, tasks: [Int32]) -> Lease {
        var lease = Lease(id: LeaseID("L-1"), service: "a", frontend: "fe-a", requestedAt: start, ttl: .seconds(10))
        lease.state = state
        lease.host = "c1"
        lease.tasks = tasks
        return lease
    }

    @Test func aLeaseWhoseWorkerRunsOnAHostInThePoolIsAdopted() {
        #expect(lease(.active, tasks: [7]).recoveryVerdict(alive: [7], hostInPool: true) == nil)
    }

    @Test func aGrantWhoseSpawnWasNeverRecordedAWorkerGoneOrAHostGoneIsRevoked() {
        #expect(lease(.granted, tasks: []).recoveryVerdict(alive: [], hostInPool: true)?.reason == .spawnFailed)
        #expect(lease(.draining, tasks: [7]).recoveryVerdict(alive: [], hostInPool: true)?.reason == .taskDied)
        #expect(lease(.active, tasks: [7]).recoveryVerdict(alive: [7], hostInPool: false)?.reason == .hostFailed)
        #expect(lease(.active, tasks: [7]).recoveryVerdict(alive: [], hostInPool: true, poolIsNew: true)?.reason == .poolRestarted)
    }
}

@Suite struct TimestampTests {
    @Test func readsAsAUTCClockTime() {
        #expect(Timestamp(milliseconds: 0).description == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(milliseconds: 1_796_480_204_636).description == "2026-12-05T14:16:44.636Z")
        #expect(Timestamp(milliseconds: 951_782_400_007).description == "2000-02-29T00:00:00.007Z")
        #expect(Timestamp(milliseconds: -1).description == "1969-12-31T23:59:59.999Z")
    }
}
