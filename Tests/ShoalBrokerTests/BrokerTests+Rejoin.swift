import PVM
import ShoalAPI
@testable import ShoalBroker
import ShoalCore
import Testing

private let twoHosts = [PoolHost(name: "c1", slots: 2), PoolHost(name: "c2", slots: 2)]

extension BrokerTests {
    @Suite("lost hosts")
    struct LostHosts {
        @Test("a host whose pvmd cannot start: PVM's own lines about it, what to check, and where PVM's log is")
        func aPvmdThatCannotStartIsExplained() {
            // What Debian's pvmd 3.4.6 logged when the remote shell ran pvmd without PVM_ALLOW_ROOT.
            let log = [
                "[t80040000] 12/06 06:31:24 ready Sun Dec  6 06:31:24 2026",
                "[t80000000] 12/06 06:31:24 stderr@c2: PVM is being run as user root",
                "[t80000000] 12/06 06:31:24 stdout@c2: EOF",
                "[t80040000] 12/06 06:31:24 startack() host c2 expected version, got \"PvmCantStart\"",
            ]
            let failure = PVMError(.cantStart, operation: "pvm_addhosts(c2)")
            let message = PVMLauncher.joinFailure(failure, host: "c2", poolLog: "/state/pvm/tmp/pvml.0.shoal", pvmSaid: log)
            #expect(message.hasPrefix(failure.description))
            #expect(message.contains("PVM says: stderr@c2: PVM is being run as user root / stdout@c2: EOF / startack()"))
            #expect(!message.contains("ready Sun"), "lines about other things are left out")
            #expect(message.contains("PVM_ALLOW_ROOT=1") && message.contains("PVM_TMP") && message.contains("docs/operations.md"))
            #expect(message.hasSuffix("PVM's own account: /state/pvm/tmp/pvml.0.shoal"))

            let duplicate = PVMError(.duplicateHost, operation: "pvm_addhosts(c2)")
            #expect(PVMLauncher.joinFailure(duplicate, host: "c2", poolLog: nil, pvmSaid: log) == duplicate.description,
                    "other failures say what PVM said, nothing more")
        }

        @Test("the schedule: 5 s after the loss, then 5, 10, 20, 40 s after each failure, at most 60 s")
        func schedule() {
            var schedule = RejoinSchedule(firstAttempt: brokerT0 + .seconds(5))
            #expect(!schedule.isDue(at: brokerT0 + .seconds(4)))
            #expect(schedule.isDue(at: brokerT0 + .seconds(5)))
            var now = brokerT0 + .seconds(5)
            var waits: [Duration] = []
            for _ in 0..<7 {
                schedule.failed(at: now)
                waits.append(schedule.nextAttempt - now)
                now = schedule.nextAttempt
            }
            #expect(waits == [5, 10, 20, 40, 60, 60, 60].map { Duration.seconds($0) })
            #expect(schedule.failures == 7)
        }

        @Test("a host PVM deleted is added again by the schedule; once it joins it is up, with a host-up event, and gets grants")
        func deletedHostRejoins() async throws {
            try await withBroker(hosts: twoHosts, configure: { $0.leaseTTL = .seconds(600) }) { h in
                try await h.register("a", max: 4)
                let lost = try await h.activeLease("a")
                #expect(try await h.lease(lost.id).lease.host == "c1")

                h.launcher.setHostNames(["c2"])
                h.launcher.failAdding(["c1": "pvm_addhosts(c1): PvmCantStart (-28): Can't start pvmd"])
                try await h.broker.handle(.hostDown(host: "c1"))
                #expect(try await h.lease(lost.id).lease.revocation == .hostFailed)
                #expect(try await h.broker.pool().hosts.map(\.down) == [true, false])

                // Not before the first delay (5 s), then every attempt fails and waits longer: 5 s, 10 s.
                try await tick(h, after: .seconds(4))
                #expect(h.addCalls == 0)
                try await tick(h, after: .seconds(1))
                try await expectAttempts(h, 1)
                try await tick(h, after: .seconds(4))
                try await expectAttempts(h, 1)
                try await tick(h, after: .seconds(1))
                try await expectAttempts(h, 2)
                try await tick(h, after: .seconds(9))
                try await expectAttempts(h, 2)
                // Meanwhile new leases go elsewhere.
                let meanwhile = try await h.acquire("a")
                #expect(meanwhile.host == "c2")

                h.launcher.failAdding([:])
                try await tick(h, after: .seconds(1))
                try await expectAttempts(h, 3)
                #expect(try await h.broker.pool().hosts.map(\.down) == [false, false])
                let hostEvents = try await h.store.events(after: 0, limit: 100).filter { $0.lease == nil }
                #expect(hostEvents.map(\.kind) == [.revoke, .hostUp])
                #expect(hostEvents.last?.host == "c1")
                #expect(hostEvents.last?.reason.contains("attempt 3") == true)

                // c1 takes leases again: c2 has one free slot left, c1 two.
                let again = try await h.acquire("a")
                #expect(again.state == .granted)
                #expect(again.host == "c1")
                try await h.waitForSpawn(again.id)
                #expect(h.launcher.launches.last?.host == "c1")
            }
        }

        @Test("a silent host not heard from during its quarantine is taken for dead: deleted from PVM and added again")
        func silentDeadHostIsRestarted() async throws {
            try await withBroker(hosts: twoHosts, configure: { $0.leaseTTL = .seconds(600) }) { h in
                let (silent, serving) = try await silenceFirstHost(h)
                #expect(try await h.lease(serving.id).lease.host == "c2")
                #expect(!h.launcher.calls.contains(.stop(tasks: [silent.task])), "a failed host's worker is sent no kill")
                #expect(try await h.broker.pool().hosts.map(\.down) == [true, false])

                try await h.advance(by: .seconds(30), reportingFrom: [serving.task])
                try await h.broker.tick()
                await h.broker.work.idle()
                #expect(h.launcher.calls.contains(.remove(hosts: ["c1"])))
                // The first attempt follows the delete at once.
                try await h.broker.tick()
                try await expectAttempts(h, 1)
                #expect(try await h.broker.pool().hosts.map(\.down) == [false, false])
                let hostEvents = try await h.store.events(after: 0, limit: 100).filter { $0.lease == nil }
                #expect(hostEvents.map(\.kind) == [.revoke, .revoke, .hostUp])
                #expect(hostEvents[1].reason.contains("taken for dead"))
            }
        }

        @Test("a silent host heard from during its quarantine (its link was cut) comes back after it, without a restart")
        func silentLiveHostReturnsAfterQuarantine() async throws {
            try await withBroker(hosts: twoHosts, configure: { $0.leaseTTL = .seconds(600) }) { h in
                let (silent, serving) = try await silenceFirstHost(h)
                // The link is back: the stranded worker asks about its lease (and exits).
                try await h.advance(by: .seconds(5), reportingFrom: [serving.task])
                #expect(try await h.broker.workerAsked(lease: silent.id).state == .revoked)

                try await h.advance(by: .seconds(25), reportingFrom: [serving.task])
                try await h.broker.tick()
                #expect(try await h.broker.pool().hosts.map(\.down) == [false, false])
                try await h.broker.tick()
                #expect(!h.launcher.calls.contains { if case .remove = $0 { true } else { false } })
                #expect(h.addCalls == 0)
            }
        }

        @Test("the pool's pvmd lost: every lease holding a slot revoked pool-restarted, no grants; the new pool's hosts take leases again")
        func lostPoolIsRestarted() async throws {
            try await withBroker(hosts: twoHosts, configure: { $0.leaseTTL = .seconds(600) }) { h in
                try await h.register("a", max: 4)
                let first = try await h.activeLease("a")
                let second = try await h.activeLease("a")

                h.launcher.setHostNames([])
                try await h.broker.handle(.poolLost(reason: "pvm_nrecv: PvmSysErr (-14)"))
                for id in [first.id, second.id] {
                    let lease = try await h.lease(id).lease
                    #expect(lease.state == .revoked)
                    #expect(lease.revocation == .poolRestarted)
                }
                #expect(try await h.broker.pool().hosts.map(\.down) == [true, true])
                let waiting = try await h.acquire("a")
                #expect(waiting.state == .requested, "no grants while the pool is down")
                try await h.broker.tick()
                #expect(h.addCalls == 0, "nothing to add hosts to")

                // The new pvmd runs on c1; c2 is added again at the next tick.
                h.launcher.setHostNames(["c1"])
                try await h.broker.handle(.poolRestarted(hosts: ["c1"]))
                #expect(try await h.lease(waiting.id).lease.state == .granted)
                #expect(try await h.lease(waiting.id).lease.host == "c1")
                try await h.broker.tick()
                try await expectAttempts(h, 1)
                #expect(try await h.broker.pool().hosts.map(\.down) == [false, false])
            }
        }

        @Test("a worker whose PVM reports are held up but which asks about its lease over HTTP is not taken for silent")
        func askingOverHTTPIsASignOfLife() async throws {
            try await withBroker(hosts: twoHosts, configure: { $0.leaseTTL = .seconds(600) }) { h in
                try await h.register("a", max: 4)
                let asking = try await h.activeLease("a")
                let silent = try await h.activeLease("a")
                for _ in 0..<8 {  // 4 s: past the 3 s silence limit, without one PVM report.
                    h.clock.advance(by: .milliseconds(500))
                    _ = try await h.broker.workerAsked(lease: asking.id)
                    try await h.broker.tick()
                }
                #expect(try await h.lease(asking.id).lease.state == .active)
                #expect(try await h.lease(silent.id).lease.state == .revoked, "the one that neither reported nor asked")
            }
        }

        /// Service `a` holds a lease on each host; c1 then goes silent for 4 s while c2 reports, and
        /// its lease is revoked as the host's failure. Returns (c1's lease, c2's lease).
        private func silenceFirstHost(_ h: BrokerHarness) async throws -> (silent: (id: String, task: Int32), serving: (id: String, task: Int32)) {
            try await h.register("a", max: 4)
            let silent = try await h.activeLease("a")
            let serving = try await h.activeLease("a")
            try await h.advance(by: .seconds(4), reportingFrom: [serving.task])
            try await h.broker.tick()
            #expect(try await h.lease(silent.id).lease.revocation == .hostFailed)
            return (silent, serving)
        }

        private func tick(_ h: BrokerHarness, after duration: Duration) async throws {
            h.clock.advance(by: duration)
            try await h.broker.tick()
        }

        /// Waits until no attempt is under way, and expects `count` so far.
        private func expectAttempts(_ h: BrokerHarness, _ count: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            await h.broker.work.idle()
            #expect(h.addCalls == count, "pvm_addhosts attempts: \(h.addCalls)", sourceLocation: sourceLocation)
        }
    }
}

extension BrokerHarness {
    /// `pvm_addhosts` calls so far.
    var addCalls: Int {
        launcher.calls.count { if case .add = $0 { true } else { false } }
    }
}
