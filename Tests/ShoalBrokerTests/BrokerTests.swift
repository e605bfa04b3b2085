import Foundation
import ShoalAPI
@testable import ShoalBroker
import ShoalCore
import Testing

private let oneHost = [PoolHost(name: "c1", slots: 2)]
private let twoHosts = [PoolHost(name: "c1", slots: 2), PoolHost(name: "c2", slots: 2)]

/// The `Broker` actor on a real lease store, a fake launcher and a clock the tests move.
@Suite("Broker")
struct BrokerTests {}

extension BrokerTests {
    @Suite("acquiring")
    struct Acquiring {
        @Test("a lease with a free slot is granted, its worker launched, and active once ready")
        func grantLaunchReady() async throws {
            try await withBroker(hosts: oneHost) { h in
                let path = try await h.register("a")
                let view = try await h.acquire("a")
                #expect(view.state == .granted)
                #expect(view.host == "c1")

                let tasks = try await h.waitForSpawn(view.id)
                #expect(tasks == [262_145])
                #expect(h.launcher.calls == [.launch(lease: LeaseID(view.id), manifestPath: path, host: "c1")])

                try await h.broker.handle(.ready(task: 262_145, endpoint: "c1:9145"))
                let active = try #require(try await h.broker.leases(includingFinal: false).first)
                #expect(active.state == .active)
                #expect(active.endpoint == "c1:9145")

                let events = try await h.events(of: view.id)
                #expect(events.map(\.kind) == [.request, .grant, .spawn, .ready])
                #expect(events[0].reason.contains("front-end fe-a asked for a back-end"))
                #expect(events[1].reason.contains("granted slot 0 of c1"))
                #expect(events[1].reason.contains("fair share"))
                #expect(events[2].reason.contains("262145"))
                #expect(events[3].reason.contains("serves at c1:9145"))
            }
        }

        @Test("a service at its max_backends is denied with 409 and a deny event")
        func maxBackendsDenied() async throws {
            try await withBroker(hosts: oneHost) { h in
                try await h.register("a", max: 1)
                try await h.waitForSpawn(try await h.acquire("a").id)

                let error = await #expect(throws: BrokerError.self) { try await h.acquire("a") }
                #expect(error?.code == .conflict)
                let last = try #require(try await h.store.events(after: 0, limit: 100).last)
                #expect(last.kind == .deny)
                #expect(last.service == "a")
                #expect(last.reason.contains("max_backends 1"))
                #expect(try await h.store.leases().count == 1)
            }
        }

        @Test("an unregistered front-end gets 404")
        func unregisteredFrontend() async throws {
            try await withBroker(hosts: oneHost) { h in
                let error = await #expect(throws: BrokerError.self) {
                    try await h.broker.acquire(AcquireRequest(frontend: "fe-nobody"))
                }
                #expect(error?.code == .notFound)
                let leases = try await h.store.leases()
                #expect(leases.isEmpty)
            }
        }

        @Test("with no free slot a lease is queued with the fair share, and granted when another service's lease is released")
        func queuedUntilReleased() async throws {
            try await withBroker(hosts: oneHost) { h in
                try await h.register("a")
                try await h.register("b")
                let b = try await h.activeLease("b")
                _ = try await h.activeLease("a")

                let queued = try await h.acquire("a")
                #expect(queued.state == .requested)
                let queueEvent = try #require(try await h.events(of: queued.id).last)
                #expect(queueEvent.kind == .queue)
                #expect(queueEvent.reason.contains("no free slot for a (fair share 1, holds 1)"))
                #expect(queueEvent.details?.contains("capacity 2 slots") == true)
                #expect(try await h.lease(b.id).lease.state == .active, "equal shares: nothing is preempted")

                _ = try await h.broker.release(lease: b.id, LeaseChangeRequest(reason: "load fell"))
                #expect(h.launcher.drained == [b.task])
                #expect(try await h.lease(queued.id).lease.state == .requested, "the slot is not free until b's worker drained")

                try await h.broker.handle(.drained(task: b.task))
                #expect(try await h.lease(b.id).lease.state == .released)
                #expect(h.launcher.stopped == [b.task])
                let granted = try await h.lease(queued.id)
                #expect(granted.lease.state == .granted)
                #expect(granted.lease.host == "c1")
                try await h.waitForSpawn(queued.id)
                #expect(h.launcher.launches.last?.lease == LeaseID(queued.id))
            }
        }

        @Test("a launch that fails revokes the lease spawn-failed")
        func launchFailure() async throws {
            try await withBroker(hosts: oneHost) { h in
                try await h.register("a")
                h.launcher.failLaunches()
                let view = try await h.acquire("a")
                await h.broker.work.idle()  // The launch was tried and failed.
                let failed = try await h.lease(view.id)
                #expect(failed.lease.state == .revoked)
                #expect(failed.lease.revocation == .spawnFailed)
                #expect(try await h.events(of: view.id).last?.reason.contains("could not be started on c1") == true)
            }
        }

        @Test("a lease queued longer than the readiness timeout still gets its full readiness time once granted")
        func readinessTimeoutCountsFromGrant() async throws {
            try await withBroker(hosts: [PoolHost(name: "c1", slots: 1)], configure: {
                $0.readinessTimeout = .seconds(60)
                $0.leaseTTL = .seconds(300)
            }) { h in
                try await h.register("a")
                let holder = try await h.activeLease("a")
                let queued = try await h.acquire("a")
                #expect(queued.state == .requested)

                h.clock.advance(by: .seconds(90))
                _ = try await h.broker.release(lease: holder.id, LeaseChangeRequest())
                try await h.broker.handle(.drained(task: holder.task))
                #expect(try await h.lease(queued.id).lease.state == .granted)
                try await h.waitForSpawn(queued.id)

                h.clock.advance(by: .seconds(1))
                try await h.broker.tick()
                #expect(try await h.lease(queued.id).lease.state == .granted, "granted 1 s ago: not yet overdue")

                h.clock.advance(by: .seconds(60))
                try await h.broker.tick()
                let overdue = try await h.lease(queued.id)
                #expect(overdue.lease.state == .revoked)
                #expect(overdue.lease.revocation == .spawnFailed)
            }
        }
    }
}

extension BrokerTests {
    @Suite("preemption and drains")
    struct Draining {
        @Test("a higher-priority service preempts a lower one's lease, and is granted its slot once it is released")
        func preemption() async throws {
            try await withBroker(hosts: oneHost) { h in
                try await h.register("a", priority: 1, max: 1)
                try await h.register("b", priority: 0, max: 2, drainTimeout: "5s")
                let b1 = try await h.activeLease("b")
                let b2 = try await h.activeLease("b")

                h.clock.advance(by: .seconds(1))
                let a = try await h.acquire("a")
                #expect(a.state == .requested)

                let victim = try await h.lease(b2.id)
                #expect(victim.lease.state == .draining)
                #expect(victim.lease.drain == Drain(reason: .preemption, deadline: h.clock.now + .seconds(5)))
                #expect(try await h.lease(b1.id).lease.state == .active, "only one slot is needed")
                let preempt = try #require(try await h.events(of: b2.id).last)
                #expect(preempt.kind == .preempt)
                #expect(preempt.reason.contains("fair share"))
                #expect(preempt.reason.contains("a is below its share 1"))

                _ = try await h.broker.release(lease: b2.id, LeaseChangeRequest())
                #expect(h.launcher.drained == [b2.task])
                try await h.broker.handle(.drained(task: b2.task))
                #expect(try await h.lease(b2.id).lease.state == .released)
                #expect(h.launcher.stopped == [b2.task])

                let granted = try await h.lease(a.id)
                let freed = try await h.lease(b2.id)
                #expect(granted.lease.state == .granted)
                #expect(granted.slotIndex == freed.slotIndex)
                try await h.waitForSpawn(a.id)
            }
        }

        @Test("a scale-down drain can be cancelled: the lease is active again")
        func scaleDownCancelled() async throws {
            try await withBroker(hosts: oneHost) { h in
                try await h.register("a", drainTimeout: "10s")
                let a = try await h.activeLease("a")

                let draining = try await h.broker.drain(lease: a.id, LeaseChangeRequest(reason: "every member Low"))
                #expect(draining.state == .draining)
                #expect(draining.drainReason == .scaleDown)
                #expect(draining.drainDeadline == (h.clock.now + .seconds(10)).milliseconds)

                let resumed = try await h.broker.cancelDrain(lease: a.id, LeaseChangeRequest(reason: "load rose"))
                #expect(resumed.state == .active)
                #expect(resumed.drainReason == nil)
                let events = try await h.events(of: a.id)
                #expect(events.suffix(2).map(\.kind) == [.drain, .resume])
                #expect(events.last?.reason == "drain cancelled: load rose")
            }
        }

        /// The state machine's refusal reaches the API as a conflict (409) and changes nothing.
        @Test("a preemption drain cannot be cancelled")
        func preemptionNotCancellable() async throws {
            try await withBroker(hosts: [PoolHost(name: "c1", slots: 1)]) { h in
                try await h.register("a", priority: 1, max: 1)
                try await h.register("b", priority: 0, max: 1)
                let b = try await h.activeLease("b")
                _ = try await h.acquire("a")
                #expect(try await h.lease(b.id).lease.drain?.reason == .preemption)

                await #expect(throws: BrokerError(.conflict, "lease \(b.id) is draining: cannot cancel its drain")) {
                    try await h.broker.cancelDrain(lease: b.id, LeaseChangeRequest())
                }
                #expect(try await h.lease(b.id).lease.state == .draining)
                #expect(try await h.lease(b.id).lease.drain?.reason == .preemption)
            }
        }

        @Test("draining a host cordons it and drains its leases for maintenance")
        func drainHost() async throws {
            try await withBroker(hosts: twoHosts) { h in
                try await h.register("a")
                let onC1 = try await h.activeLease("a")
                let onC2 = try await h.activeLease("a")
                #expect(try await h.lease(onC1.id).lease.host == "c1")
                #expect(try await h.lease(onC2.id).lease.host == "c2")

                let result = try await h.broker.drainHost("c1")
                #expect(result == HostDrainResult(host: "c1", draining: [onC1.id]))
                let drained = try await h.lease(onC1.id)
                #expect(drained.lease.state == .draining)
                #expect(drained.lease.drain?.reason == .maintenance)
                #expect(try await h.lease(onC2.id).lease.state == .active)

                let pool = try await h.broker.pool()
                #expect(pool.hosts.map(\.cordoned) == [true, false])

                // c1 and c2 have one free slot each; the first choice would be c1 were it not cordoned.
                let next = try await h.acquire("a")
                #expect(next.host == "c2")
            }
        }

        @Test("a drained host stays drained across a restart until undrained")
        func drainSurvivesRestartUntilUndone() async throws {
            try await withStateDirectory { directory in
                try await withBroker(in: directory, hosts: twoHosts) { first in
                    _ = try await first.broker.drainHost("c1")
                }
                try await withBroker(in: directory, hosts: twoHosts) { second in
                try await second.broker.recover()
                #expect(try await second.broker.pool().hosts.map(\.cordoned) == [true, false])
                try await second.register("a")
                #expect(try await second.acquire("a").host == "c2")

                _ = try await second.broker.undrainHost("c1")
                #expect(try await second.broker.pool().hosts.map(\.cordoned) == [false, false])
                #expect(try await second.acquire("a").host == "c1")
                #expect(try await second.store.events().contains { $0.kind == .resume && $0.host == "c1" })
                }
            }
        }

        @Test("draining an unknown host is 404")
        func drainUnknownHost() async throws {
            try await withBroker(hosts: oneHost) { h in
                let error = await #expect(throws: BrokerError.self) { try await h.broker.drainHost("nowhere") }
                #expect(error?.code == .notFound)
            }
        }
    }
}

extension BrokerTests {
    @Suite("pool events")
    struct PoolEvents {
        @Test("a worker task exiting revokes its lease task-died, stops its tasks and frees the slot")
        func taskExited() async throws {
            try await withBroker(hosts: oneHost) { h in
                try await h.register("a")
                let a = try await h.activeLease("a")
                let other = try await h.activeLease("a")

                try await h.broker.handle(.exited(task: a.task))
                let revoked = try await h.lease(a.id)
                #expect(revoked.lease.state == .revoked)
                #expect(revoked.lease.revocation == .taskDied)
                #expect(h.launcher.stopped == [a.task])
                #expect(try await h.lease(other.id).lease.state == .active)
                #expect(try await h.broker.pool().hosts[0].used == 1)
            }
        }

        @Test("a host going down revokes every live lease on it host-failed and marks it down")
        func hostDown() async throws {
            try await withBroker(hosts: twoHosts) { h in
                try await h.register("a")
                let first = try await h.activeLease("a")
                let second = try await h.activeLease("a")
                let third = try await h.activeLease("a")
                let hostsInOrder = try await [first.id, second.id, third.id].asyncMap { try await h.lease($0).lease.host }
                #expect(hostsInOrder == ["c1", "c2", "c1"])

                try await h.broker.handle(.hostDown(host: "c1"))
                for id in [first.id, third.id] {
                    let revoked = try await h.lease(id)
                    #expect(revoked.lease.state == .revoked)
                    #expect(revoked.lease.revocation == .hostFailed)
                }
                #expect(try await h.lease(second.id).lease.state == .active)
                #expect(h.launcher.stopped.isEmpty, "a failed host's workers are sent no kill: it would hold up every other host's messages")

                let pool = try await h.broker.pool()
                #expect(pool.hosts.map(\.down) == [true, false])
                #expect(pool.hosts.map(\.used) == [0, 1])
                let hostEvent = try await h.store.events(after: 0, limit: 100).first { $0.kind == .revoke && $0.lease == nil }
                #expect(hostEvent?.host == "c1")
            }
        }

        @Test("a worker that could not start its service revokes the lease spawn-failed")
        func workerFailed() async throws {
            try await withBroker(hosts: oneHost) { h in
                try await h.register("a")
                let view = try await h.acquire("a")
                let task = try #require(try await h.waitForSpawn(view.id).first)

                try await h.broker.handle(.failed(task: task, reason: "health check never passed"))
                let revoked = try await h.lease(view.id)
                #expect(revoked.lease.state == .revoked)
                #expect(revoked.lease.revocation == .spawnFailed)
                #expect(h.launcher.stopped == [task])
                #expect(try await h.events(of: view.id).last?.reason.contains("health check never passed") == true)
            }
        }
    }
}

extension BrokerTests {
    @Suite("clock")
    struct ClockDriven {
        @Test("a lease not renewed within its TTL is revoked ttl-expired by the tick and its tasks stopped")
        func ttlExpires() async throws {
            try await withBroker(hosts: oneHost, configure: { $0.leaseTTL = .seconds(10) }) { h in
                try await h.register("a")
                let a = try await h.activeLease("a")

                try await h.advance(by: .seconds(9), reportingFrom: [a.task])
                try await h.broker.tick()
                #expect(try await h.lease(a.id).lease.state == .active)

                try await h.advance(by: .seconds(2), reportingFrom: [a.task])
                try await h.broker.tick()
                let expired = try await h.lease(a.id)
                #expect(expired.lease.state == .revoked)
                #expect(expired.lease.revocation == .ttlExpired)
                #expect(h.launcher.stopped == [a.task])
                #expect(try await h.events(of: a.id).last?.reason.hasPrefix("ttl-expired") == true)
            }
        }

        @Test("a front-end's heartbeat keeps its leases past the first TTL")
        func heartbeatRenews() async throws {
            try await withBroker(hosts: oneHost, configure: { $0.leaseTTL = .seconds(10) }) { h in
                try await h.register("a")
                let a = try await h.activeLease("a")

                try await h.advance(by: .seconds(6), reportingFrom: [a.task])
                let status = try await h.broker.heartbeat(frontend: "fe-a", Heartbeat())
                #expect(status.leases.map(\.expiresAt) == [(h.clock.now + .seconds(10)).milliseconds])

                try await h.advance(by: .seconds(6), reportingFrom: [a.task])
                try await h.broker.tick()
                #expect(try await h.lease(a.id).lease.state == .active)
                #expect(h.launcher.stopped.isEmpty)
            }
        }
    }
}

extension BrokerTests {
    @Suite("recovery")
    struct Recovery {
        @Test("a restarted broker keeps leases whose workers live and revokes the rest")
        func recoverAfterCrash() async throws {
            try await withStateDirectory { directory in
                let (alive, dead, unspawned) = try await withBroker(in: directory, hosts: [PoolHost(name: "c1", slots: 3)]) { first in
                    try await first.register("a")
                    let alive = try await first.activeLease("a")
                    let dead = try await first.activeLease("a")
                    // The first broker dies between granting a lease and recording its spawn.
                    let unspawned = try await first.store.create(service: "a", frontend: "fe-a", now: first.clock.now,
                                                                 ttl: .seconds(10))
                    try await first.store.grant(unspawned.id, host: "c1", slotIndex: 2, now: first.clock.now)
                    return (alive, dead, unspawned)
                }

                try await withBroker(in: directory, hosts: [PoolHost(name: "c1", slots: 3)]) { second in
                second.launcher.setAlive([alive.task])
                try await second.broker.recover()

                let calls = second.launcher.calls
                #expect(calls.contains(.adopt(tasks: [alive.task, dead.task])))
                #expect(calls.last == .stopStrays(owned: [alive.task]))
                #expect(second.launcher.stopped == [dead.task])
                #expect(try await second.lease(alive.id).lease.state == .active)
                let gone = try await second.lease(dead.id)
                #expect(gone.lease.state == .revoked)
                #expect(gone.lease.revocation == .taskDied)
                let neverStarted = try await second.lease(unspawned.id.rawValue)
                #expect(neverStarted.lease.state == .revoked)
                #expect(neverStarted.lease.revocation == .spawnFailed)

                // The front-end's registration came back from the store, and the adopted task is owned.
                #expect(try await second.broker.services().map(\.frontends) == [["fe-a"]])
                try await second.broker.handle(.exited(task: alive.task))
                #expect(try await second.lease(alive.id).lease.revocation == .taskDied)
                }
            }
        }

        @Test("a restarted broker adds missing hosts; one that cannot join is down and its leases revoked host-failed")
        func recoverWithHostThatCannotJoin() async throws {
            try await withStateDirectory { directory in
                let (onC1, onC2) = try await withBroker(in: directory, hosts: twoHosts) { first in
                    try await first.register("a")
                    return (try await first.activeLease("a"), try await first.activeLease("a"))
                }

                try await withBroker(in: directory, hosts: twoHosts) { second in
                second.launcher.setHostNames(["c1"])
                second.launcher.failAdding(["c2": "pvmd did not start"])
                try await second.broker.recover()

                #expect(second.launcher.calls.first == .add(hosts: ["c2"]))
                #expect(try await second.broker.pool().hosts.map(\.down) == [false, true])
                #expect(try await second.lease(onC1.id).lease.state == .active)
                #expect(try await second.lease(onC2.id).lease.revocation == .hostFailed)
                }
            }
        }
    }
}

extension BrokerTests {
    @Suite("event log long poll")
    struct EventLog {
        @Test("a long poll answers at once when there are events")
        func answersAtOnce() async throws {
            try await withBroker(hosts: oneHost) { h in
                try await h.register("a")
                _ = try await h.acquire("a")
                try await h.waitForSpawn("L-000001")

                let started = ContinuousClock.now
                let page = try await h.broker.events(after: 0, limit: 100, wait: .seconds(30))
                #expect(ContinuousClock.now - started < .seconds(10))
                #expect(page.events.map(\.kind) == ["request", "grant", "spawn"])
                #expect(page.next == page.events.last?.id)
            }
        }

        @Test("a long poll with nothing new is woken by an acquire before its wait ends")
        func wokenByAcquire() async throws {
            try await withBroker(hosts: oneHost) { h in
                try await h.register("a")
                let latest = try await h.store.latestEventID()
                let broker = h.broker

                let started = ContinuousClock.now
                let poll = Task { try await broker.events(after: latest, limit: 100, wait: .seconds(10)) }
                try await h.waitForLongPoll()
                _ = try await h.acquire("a")
                let page = try await poll.value
                #expect(ContinuousClock.now - started < .seconds(5))
                #expect(page.events.first?.kind == "request")
                #expect(page.events.allSatisfy { $0.id > latest })
            }
        }

        @Test("a host going down wakes a long poll even when no lease was on it")
        func wokenByHostDown() async throws {
            try await withBroker(hosts: twoHosts) { h in
                let broker = h.broker
                let started = ContinuousClock.now
                let poll = Task { try await broker.events(after: -1, limit: 100, wait: .seconds(10)) }
                try await h.waitForLongPoll()
                try await h.broker.handle(.hostDown(host: "c2"))
                let page = try await poll.value
                #expect(ContinuousClock.now - started < .seconds(5))
                #expect(page.events.map(\.kind) == ["revoke"])
                #expect(page.events.first?.host == "c2")
            }
        }

        @Test("after -1 returns only events still to come")
        func afterMinusOneIsFromNow() async throws {
            try await withBroker(hosts: oneHost) { h in
                try await h.register("a")
                let old = try await h.acquire("a")
                try await h.waitForSpawn(old.id)
                let latest = try await h.store.latestEventID()
                #expect(latest > 0)

                let empty = try await h.broker.events(after: -1, limit: 100, wait: .zero)
                #expect(empty.events.isEmpty)
                #expect(empty.next == latest)

                let broker = h.broker
                let poll = Task { try await broker.events(after: -1, limit: 100, wait: .seconds(10)) }
                try await h.waitForLongPoll()
                let new = try await h.acquire("a")
                let page = try await poll.value
                #expect(page.events.first?.kind == "request")
                #expect(page.events.allSatisfy { $0.id > latest && $0.lease == new.id })
            }
        }
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
