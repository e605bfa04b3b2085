import ShoalCore
import Testing

/// The pool's health rules, driven by hand: silent workers, quarantine, restart and rejoin.
@Suite struct PoolHealthTests {
    let t0 = Timestamp(milliseconds: 5_000_000)
    let hosts = [PoolHost(name: "c1", slots: 2), PoolHost(name: "c2", slots: 2)]
    let a = LeaseID("L-1"), b = LeaseID("L-2"), c = LeaseID("L-3")

    func serving(_ pairs: (LeaseID, String)...) -> [PoolHealth.ServingLease] {
        pairs.map { PoolHealth.ServingLease(id: $0.0, host: $0.1) }
    }

    @Test func aWorkerThatKeepsReportingIsNeverTakenForLost() {
        var health = PoolHealth(hosts: hosts)
        var now = t0
        for _ in 0..<40 {  // 20 s, a report every half second: a long drain included.
            health.workerHeard(a, on: "c1", at: now)
            #expect(health.tick(now: now, serving: serving((a, "c1"))).isEmpty)
            now = now + .milliseconds(500)
        }
    }

    @Test func oneSilentWorkerOnAHostWithOthersIsRevokedTaskDied() {
        var health = PoolHealth(hosts: hosts)
        _ = health.tick(now: t0, serving: serving((a, "c1"), (b, "c1")))
        health.workerHeard(b, on: "c1", at: t0 + .seconds(3))
        #expect(health.tick(now: t0 + .seconds(3), serving: serving((a, "c1"), (b, "c1"))).isEmpty, "3 s is the limit, not past it")
        health.workerHeard(b, on: "c1", at: t0 + .milliseconds(3100))
        let actions = health.tick(now: t0 + .milliseconds(3100), serving: serving((a, "c1"), (b, "c1")))
        #expect(actions == [.revoke(a, .taskDied, reason: "worker silent for 3.0 seconds: no load report")])
        #expect(health.hosts["c1"]?.isOpen == true)
    }

    @Test func everyWorkerOfAHostSilentQuarantinesItThenAHostNotHeardFromIsRestarted() {
        var health = PoolHealth(hosts: hosts)
        let all = serving((a, "c1"), (b, "c2"))
        _ = health.tick(now: t0, serving: all)
        health.workerHeard(b, on: "c2", at: t0 + .seconds(4))
        let actions = health.tick(now: t0 + .seconds(4), serving: all)
        #expect(actions.count == 2)
        #expect(actions.last == .revoke(a, .hostFailed, reason: "host c1 silent for 3.0 seconds: every worker there stopped reporting"))
        #expect(health.hosts["c1"]?.isOpen == false)
        #expect(health.openHosts == ["c2"])

        // 30 s of quarantine, nothing heard from c1: its pvmd is taken for dead.
        #expect(health.tick(now: t0 + .seconds(33), serving: []).isEmpty, "still quarantined")
        let end = health.tick(now: t0 + .seconds(34), serving: [])
        #expect(end.contains(.remove(host: "c1")))
        #expect(health.hosts["c1"]?.down == true)
        #expect(!end.contains { if case .rejoin = $0 { true } else { false } }, "no attempt while the delete runs")
        health.removed("c1")
        let rejoin = health.tick(now: t0 + .seconds(34), serving: [])
        #expect(rejoin == [.rejoin(host: "c1", attempt: 1)])
        #expect(health.tick(now: t0 + .seconds(35), serving: []).isEmpty, "one attempt at a time")
        let back = health.rejoinFinished("c1", failure: nil, now: t0 + .seconds(36))
        #expect(back.last == .arbitrate)
        #expect(health.openHosts == ["c1", "c2"])
    }

    @Test func aQuarantinedHostHeardFromMeanwhileComesBackWithoutARestart() {
        var health = PoolHealth(hosts: hosts)
        _ = health.tick(now: t0, serving: serving((a, "c1")))
        _ = health.tick(now: t0 + .seconds(4), serving: serving((a, "c1")))
        #expect(health.hosts["c1"]?.quarantinedUntil == t0 + .seconds(34))
        // The link is back: the stranded worker asks about its lease.
        health.workerHeard(nil, on: "c1", at: t0 + .seconds(10))
        #expect(health.tick(now: t0 + .seconds(34), serving: []) == [.arbitrate])
        #expect(health.hosts["c1"]?.isOpen == true)
        #expect(health.hosts["c1"]?.down == false)
    }

    @Test func aDeletedHostRejoinsByTheScheduleAndAFailureIsToldOnceUntilItChanges() {
        var health = PoolHealth(hosts: hosts)
        let deleted = health.hostDeleted("c1", leases: [a], now: t0)
        #expect(deleted.count == 2)
        #expect(deleted.last == .revoke(a, .hostFailed, reason: "host c1 failed (pvm_notify host delete)"))
        #expect(health.tick(now: t0 + .seconds(4), serving: []).isEmpty)
        #expect(health.tick(now: t0 + .seconds(5), serving: []) == [.rejoin(host: "c1", attempt: 1)])
        let first = health.rejoinFinished("c1", failure: "PvmCantStart", now: t0 + .seconds(5))
        #expect(first.count == 1)
        #expect(health.tick(now: t0 + .seconds(9), serving: []).isEmpty)
        #expect(health.tick(now: t0 + .seconds(10), serving: []) == [.rejoin(host: "c1", attempt: 2)])
        #expect(health.rejoinFinished("c1", failure: "PvmCantStart", now: t0 + .seconds(10)).isEmpty, "the same reason again: said once")
        #expect(health.tick(now: t0 + .seconds(20), serving: []) == [.rejoin(host: "c1", attempt: 3)])
        let up = health.rejoinFinished("c1", failure: nil, now: t0 + .seconds(21))
        #expect(up.first == .record(.up, host: "c1", reason:
            "host c1 is back in the virtual machine (pvm_addhosts, attempt 3): it takes leases again"))
    }

    @Test func aHostTheBrokerDeletedIsAddedAtOnceWhenPVMLetsGoAndItsEarlierAttemptsCount() {
        var health = PoolHealth(hosts: hosts)
        _ = health.tick(now: t0, serving: serving((a, "c1")))
        _ = health.tick(now: t0 + .seconds(4), serving: serving((a, "c1")))
        _ = health.tick(now: t0 + .seconds(34), serving: [])  // Taken for dead: deleted.
        health.removed("c1")
        for (attempt, at) in [(1, 34), (2, 39)] {
            #expect(health.tick(now: t0 + .seconds(Int64(at)), serving: []) == [.rejoin(host: "c1", attempt: attempt)])
            _ = health.rejoinFinished("c1", failure: "PvmDupHost", now: t0 + .seconds(Int64(at)))
        }
        // PVM gives the host up (its delete notice) well before the next attempt was due.
        #expect(health.hostDeleted("c1", leases: [], now: t0 + .seconds(41)).isEmpty)
        #expect(health.tick(now: t0 + .seconds(41), serving: []) == [.rejoin(host: "c1", attempt: 3)])
        let up = health.rejoinFinished("c1", failure: nil, now: t0 + .seconds(42))
        #expect(up.first == .record(.up, host: "c1", reason:
            "host c1 is back in the virtual machine (pvm_addhosts, attempt 3): it takes leases again"))
    }

    @Test func aCordonedHostTakesNothingUntilUndrained() {
        var health = PoolHealth(hosts: hosts)
        #expect(health.cordon("c1", true).isEmpty)
        #expect(health.openHosts == ["c2"])
        #expect(health.cordon("c1", false) == [.arbitrate])
        #expect(health.cordon("nowhere", true).isEmpty)
    }

    @Test func aLostPoolRevokesEveryLeaseHoldingASlotAndClosesEveryHostUntilANewPoolRuns() {
        var health = PoolHealth(hosts: hosts)
        health.workerHeard(a, on: "c1", at: t0)
        let lost = health.poolLost(reason: "pvmd hung up", leases: [a, b], now: t0)
        #expect(lost.filter { if case .record(.lost, _, _) = $0 { true } else { false } }.count == 2)
        #expect(lost.suffix(2) == [
            .revoke(a, .poolRestarted, reason: "the pool's pvmd died (pvmd hung up); its worker went with it"),
            .revoke(b, .poolRestarted, reason: "the pool's pvmd died (pvmd hung up); its worker went with it"),
        ])
        #expect(health.openHosts.isEmpty)
        #expect(health.poolLost(reason: "again", leases: [a], now: t0).isEmpty, "one loss is told once")
        // Nothing to silence, quarantine or add to while no pvmd runs.
        #expect(health.tick(now: t0 + .seconds(60), serving: serving((a, "c1"))).isEmpty)

        // The new pvmd runs on c1; c2 is added again at the next tick, not after the usual 5 s.
        let restarted = health.poolRestarted(present: ["c1"], now: t0 + .seconds(61))
        #expect(restarted == [.record(.up, host: "c1", reason: "host c1 is in the new pool: it takes leases again"), .arbitrate])
        #expect(health.openHosts == ["c1"])
        #expect(health.tick(now: t0 + .seconds(61), serving: []) == [.rejoin(host: "c2", attempt: 1)])
        #expect(health.rejoinFinished("c2", failure: nil, now: t0 + .seconds(62)).last == .arbitrate)
        #expect(health.openHosts == ["c1", "c2"])
    }
}
