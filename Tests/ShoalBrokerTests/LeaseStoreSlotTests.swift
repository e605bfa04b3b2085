import Foundation
import GRDB
import ShoalBroker
import ShoalCore
import Testing

private let t0 = Timestamp(milliseconds: 1_700_000_000_000)
private let ttl = Duration.seconds(30)

@Suite("Lease store: slots and expiry")
struct LeaseStoreSlotTests {
    @Test("a slot held by a live lease is refused cleanly, and free again after release")
    func slotTaken() async throws {
        try await withStateDirectory { dir in
            let store = try dir.open()
            let first = try await store.create(service: "A", frontend: "fe-a", now: t0, ttl: ttl)
            let second = try await store.create(service: "B", frontend: "fe-b", now: t0, ttl: ttl)
            try await store.grant(first.id, host: "c1", slotIndex: 0, now: t0)
            let before = try LeaseStoreTests.dump(dir)

            let error = await #expect(throws: LeaseStoreError.self) {
                try await store.grant(second.id, host: "c1", slotIndex: 0, now: t0)
            }
            #expect(error?.code == .slotTaken)
            #expect(error?.holder == first.id)
            #expect(try LeaseStoreTests.dump(dir) == before)

            // Another slot of the host, or the same index of another host, is fine.
            try await store.grant(second.id, host: "c2", slotIndex: 0, now: t0)
            #expect(try await store.liveLeasesByHost().mapValues { $0.map(\.id) } == ["c1": [first.id], "c2": [second.id]])

            // Released: the slot can be leased again.
            try await store.apply(.revoke(.hostFailed), to: first.id, now: t0)
            let third = try await store.create(service: "C", frontend: "fe-c", now: t0, ttl: ttl)
            #expect(try await store.grant(third.id, host: "c1", slotIndex: 0, now: t0).action == .spawn(host: "c1"))
            try store.close()
        }
    }

    @Test("the database itself refuses a second live lease on a slot, bypassing the store")
    func constraintHoldsAgainstRawWrites() async throws {
        try await withStateDirectory { dir in
            let store = try dir.open()
            let holder = try await store.create(service: "A", frontend: "fe-a", now: t0, ttl: ttl)
            let other = try await store.create(service: "B", frontend: "fe-b", now: t0, ttl: ttl)
            let old = try await store.create(service: "B", frontend: "fe-b", now: t0, ttl: ttl)
            try await store.grant(old.id, host: "c1", slotIndex: 0, now: t0)
            try await store.apply(.revoke(.taskDied), to: old.id, now: t0)
            try await store.grant(holder.id, host: "c1", slotIndex: 0, now: t0)
            try store.close()

            let raw = try DatabasePool(path: dir.databasePath)
            func refused(_ sql: String, _ code: ResultCode) {
                do {
                    try raw.write { db in try db.execute(sql: sql) }
                    Issue.record("accepted: \(sql)")
                } catch let error as DatabaseError {
                    #expect(error.extendedResultCode == code, "\(sql): \(error)")
                } catch {
                    Issue.record("\(error)")
                }
            }
            // Grant the held slot to another lease.
            refused("UPDATE lease SET state = 'granted', host = 'c1', slot_index = 0 WHERE id = '\(other.id)'", .SQLITE_CONSTRAINT_UNIQUE)
            // Bring a revoked lease on that slot back to life.
            refused("UPDATE lease SET state = 'active', revocation = NULL WHERE id = '\(old.id)'", .SQLITE_CONSTRAINT_UNIQUE)
            // Insert a new live lease on it.
            refused("""
                INSERT INTO lease (id, service, frontend, host, slot_index, state, requested_at, expires_at)
                VALUES ('L-900000', 'C', 'fe-c', 'c1', 0, 'active', 0, 0)
                """, .SQLITE_CONSTRAINT_UNIQUE)
            // A live lease without a slot would slip past the index: refused too.
            refused("UPDATE lease SET state = 'active', host = 'c1', slot_index = NULL WHERE id = '\(other.id)'", .SQLITE_CONSTRAINT_CHECK)
            refused("UPDATE lease SET state = 'bogus' WHERE id = '\(other.id)'", .SQLITE_CONSTRAINT_CHECK)
            try raw.close()

            let reopened = try dir.open()
            #expect(try await reopened.liveLeasesByHost()["c1"]?.map(\.id) == [holder.id])
            try reopened.close()
        }
    }

    @Test("two writers racing for the last slot: exactly one wins", arguments: [false, true])
    func raceForLastSlot(separateConnections: Bool) async throws {
        try await withStateDirectory { dir in
            let store = try dir.open()
            // A second store on the same file stands for a second broker process.
            let rival = separateConnections ? try dir.open() : store
            for round in 0..<20 {
                let a = try await store.create(service: "A", frontend: "fe-a", now: t0, ttl: ttl)
                let b = try await rival.create(service: "B", frontend: "fe-b", now: t0, ttl: ttl)
                async let first = Self.tryGrant(store, a.id, slot: round)
                async let second = Self.tryGrant(rival, b.id, slot: round)
                let outcomes = await [first, second]
                #expect(outcomes.filter { $0 == nil }.count == 1, "round \(round): \(outcomes)")
                let loser = try #require(outcomes.compactMap { $0 }.first)
                #expect(loser.code == .slotTaken)
                let held = try await store.liveLeasesByHost()["c1"]?.filter { $0.slotIndex == round }
                #expect(held?.count == 1)
                #expect(loser.holder == held?.first?.id)
            }
            if separateConnections { try rival.close() }
            try store.close()
        }
    }

    private static func tryGrant(_ store: LeaseStore, _ id: LeaseID, slot: Int) async -> LeaseStoreError? {
        do {
            try await store.grant(id, host: "c1", slotIndex: slot, now: t0)
            return nil
        } catch let error as LeaseStoreError {
            return error
        } catch {
            return LeaseStoreError(code: .init(rawValue: "unexpected"), message: "\(error)")
        }
    }

    @Test("expire revokes exactly the unrenewed leases and overdue drains, with reasons")
    func expireRevokesUnrenewed() async throws {
        try await withStateDirectory { dir in
            let store = try dir.open()
            let renewed = try await store.create(service: "A", frontend: "fe-a", now: t0, ttl: ttl)
            let silent = try await store.create(service: "B", frontend: "fe-b", now: t0, ttl: ttl)
            let waiting = try await store.create(service: "C", frontend: "fe-c", now: t0, ttl: ttl)
            let draining = try await store.create(service: "A", frontend: "fe-a", now: t0, ttl: ttl)
            let done = try await store.create(service: "A", frontend: "fe-a", now: t0, ttl: ttl)
            for (slot, lease) in [renewed, silent, draining, done].enumerated() {
                try await store.grant(lease.id, host: "c1", slotIndex: slot, now: t0)
                try await store.apply(.becameReady(endpoint: "10.0.0.1:9000"), to: lease.id, now: t0)
            }
            try await store.apply(.drainRequested(Drain(reason: .preemption, deadline: t0 + .seconds(20))),
                                  to: draining.id, now: t0 + .seconds(10))
            try await store.apply(.drainRequested(Drain(reason: .scaleDown, deadline: t0 + .seconds(20))), to: done.id, now: t0)
            try await store.apply(.drained, to: done.id, now: t0)
            // fe-a's heartbeat renews its live leases (renewed, draining), not the released one.
            let renewedByHeartbeat = try await store.renew(frontend: "fe-a", now: t0 + .seconds(20), ttl: ttl)
            #expect(renewedByHeartbeat.map(\.id) == [renewed.id, draining.id])

            // Before anything is due: nothing happens.
            #expect(try await store.expire(now: t0 + .seconds(15)).isEmpty)

            let changes = try await store.expire(now: t0 + .seconds(31))
            #expect(changes.map(\.lease.id) == [silent.id, waiting.id, draining.id])
            #expect(changes.map(\.action) == [.stopTasks, .none, .stopTasks])
            #expect(changes.map(\.lease.lease.revocation) == [.ttlExpired, .ttlExpired, .drainDeadlinePassed])
            #expect(changes.map(\.event.kind) == [.revoke, .revoke, .revoke])
            #expect(changes[0].event.reason.hasPrefix("ttl-expired"))
            #expect(changes[0].event.reason.contains("1000 ms ago"))
            #expect(changes[0].event.fromState == .active && changes[0].event.toState == .revoked)
            #expect(changes[2].event.reason.hasPrefix("drain-deadline-passed: preemption drain"))
            let details = try #require(changes[2].event.details)
            let figures = try JSONSerialization.jsonObject(with: Data(details.utf8)) as? [String: Any]
            #expect(figures?["lateMs"] as? Int == 11_000)
            #expect(figures?["drainReason"] as? String == "preemption")

            // Persisted: the renewed lease alone is live; the events are in the log.
            try store.close()
            let reopened = try dir.open()
            #expect(try await reopened.leases().map(\.id) == [renewed.id])
            #expect(try await reopened.events(forLease: silent.id).last?.kind == .revoke)
            #expect(try await reopened.expire(now: t0 + .seconds(31)).isEmpty)
            try reopened.close()
        }
    }
}
