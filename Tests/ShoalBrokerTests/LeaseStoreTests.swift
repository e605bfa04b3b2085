import Foundation
import GRDB
import ShoalBroker
import ShoalCore
import Testing

private let t0 = Timestamp(milliseconds: 1_700_000_000_000)
private let ttl = Duration.seconds(30)

@Suite("Lease store")
struct LeaseStoreTests {
    @Test("a lease's whole life is persisted and survives a restart")
    func lifecycleSurvivesRestart() async throws {
        try await withStateDirectory { dir in
            let store = try dir.open()
            let lease = try await store.create(service: "A", frontend: "fe-a", now: t0, ttl: ttl)
            #expect(lease.id == LeaseID("L-000001"))
            #expect(try await store.grant(lease.id, host: "c1", slotIndex: 0, now: t0 + .seconds(1)).action == .spawn(host: "c1"))
            #expect(try await store.apply(.spawned(tasks: [262_145, 262_146]), to: lease.id, now: t0 + .seconds(2)).action == Lease.Action.none)
            #expect(try await store.apply(.becameReady(endpoint: "10.0.0.1:9000"), to: lease.id, now: t0 + .seconds(3)).action == .addMember)
            try store.close()

            // Restart mid-life: the lease is still active on c1 slot 0 with its tasks.
            let reopened = try dir.open()
            let active = try #require(try await reopened.lease(lease.id))
            #expect(active.lease.state == .active)
            #expect(active.lease.host == "c1")
            #expect(active.slotIndex == 0)
            #expect(active.lease.tasks == [262_145, 262_146])
            #expect(try await reopened.liveLeasesByHost()["c1"]?.map(\.id) == [lease.id])

            let deadline = t0 + .seconds(60)
            let drain = Drain(reason: .scaleDown, deadline: deadline)
            #expect(try await reopened.apply(.drainRequested(drain), to: lease.id, now: t0 + .seconds(4),
                                              reason: EventReason("every member Low for 10 s")).action == .orderDrain(deadline: deadline))
            #expect(try await reopened.apply(.drained, to: lease.id, now: t0 + .seconds(5)).action == .stopTasks)
            try reopened.close()

            let third = try dir.open()
            let released = try #require(try await third.lease(lease.id))
            #expect(released.lease.state == .released)
            #expect(released.lease.drain == drain)
            #expect(try await third.leases().isEmpty)
            #expect(try await third.leases(includingFinal: true).map(\.id) == [lease.id])
            #expect(try await third.liveLeasesByHost().isEmpty)

            let history = try await third.events(forLease: lease.id)
            #expect(history.map(\.kind) == [.request, .grant, .spawn, .ready, .drain, .release])
            #expect(history.map(\.toState) == [.requested, .granted, .granted, .active, .draining, .released])
            #expect(history.map(\.fromState) == [nil, .requested, .granted, .granted, .active, .draining])
            #expect(history[4].reason == "every member Low for 10 s")
            #expect(history[1].host == "c1")
            #expect(history.map(\.time) == (0...5).map { t0 + .seconds($0) })
            try third.close()
        }
    }

    @Test("the narrow reads: one service's or front-end's live leases, and whether any lease waits")
    func narrowReads() async throws {
        try await withStateDirectory { dir in
            let store = try dir.open()
            #expect(try await store.hasWaitingLease() == false)
            let a1 = try await store.create(service: "A", frontend: "fe-a", now: t0, ttl: ttl)
            let b1 = try await store.create(service: "B", frontend: "fe-b", now: t0, ttl: ttl)
            // A front-end that re-registered for another service still owns its old lease.
            let old = try await store.create(service: "C", frontend: "fe-a", now: t0, ttl: ttl)
            let a2 = try await store.create(service: "A", frontend: "fe-a2", now: t0, ttl: ttl)
            #expect(try await store.hasWaitingLease())
            #expect(try await store.liveLeases(service: "A", frontend: "fe-a").map(\.id) == [a1.id, old.id, a2.id])
            #expect(try await store.liveLeases(service: "B", frontend: "fe-b").map(\.id) == [b1.id])

            for (index, lease) in [a1, b1, old, a2].enumerated() {
                _ = try await store.grant(lease.id, host: "c1", slotIndex: index, now: t0)
            }
            #expect(try await store.hasWaitingLease() == false, "granted leases wait for nothing")
            _ = try await store.apply(.frontendReleased(drainTimeout: .seconds(1)), to: a1.id, now: t0)
            #expect(try await store.liveLeases(service: "A", frontend: "fe-a").map(\.id) == [old.id, a2.id], "a released lease is not live")
            try store.close()
        }
    }

    @Test("a refused transition throws the state machine's error and changes nothing")
    func refusedTransitionChangesNothing() async throws {
        try await withStateDirectory { dir in
            let store = try dir.open()
            let lease = try await store.create(service: "A", frontend: "fe-a", now: t0, ttl: ttl)
            let before = try Self.dump(dir)

            await #expect(throws: Lease.TransitionError(lease: lease.id, event: "finish draining", state: .requested)) {
                try await store.apply(.drained, to: lease.id, now: t0 + .seconds(1))
            }
            await #expect(throws: Lease.TransitionError.self) {
                try await store.apply(.becameReady(endpoint: "10.0.0.1:9000"), to: lease.id, now: t0 + .seconds(1))
            }
            await #expect(throws: LeaseStoreError.self) {
                try await store.apply(.drained, to: LeaseID("L-999999"), now: t0)
            }
            #expect(try Self.dump(dir) == before)

            try await store.grant(lease.id, host: "c1", slotIndex: 0, now: t0)
            let granted = try Self.dump(dir)
            await #expect(throws: Lease.TransitionError.self) {
                try await store.grant(lease.id, host: "c2", slotIndex: 0, now: t0)
            }
            #expect(try Self.dump(dir) == granted)
            try store.close()
        }
    }

    @Test("ids never repeat, across restarts too")
    func idsNeverRepeat() async throws {
        try await withStateDirectory { dir in
            var store = try dir.open()
            var ids: [LeaseID] = []
            for _ in 0..<3 { ids.append(try await store.create(service: "B", frontend: "fe-b", now: t0, ttl: ttl).id) }
            try store.close()
            store = try dir.open()
            for _ in 0..<2 { ids.append(try await store.create(service: "B", frontend: "fe-b", now: t0, ttl: ttl).id) }
            #expect(ids.map(\.rawValue) == ["L-000001", "L-000002", "L-000003", "L-000004", "L-000005"])
            try store.close()

            // Not even a raw write can move the sequence back or reuse an id.
            let raw = try DatabaseQueue(path: dir.databasePath)
            #expect(throws: DatabaseError.self) {
                try raw.write { db in try db.execute(sql: "UPDATE sequence SET value = 1 WHERE name = 'lease'") }
            }
            #expect(throws: DatabaseError.self) {
                try raw.write { db in
                    try db.execute(sql: """
                        INSERT INTO lease (id, service, frontend, state, requested_at, expires_at)
                        VALUES ('L-000002', 'B', 'fe-b', 'requested', 0, 0)
                        """)
                }
            }
            try raw.close()
        }
    }

    @Test("events list in order, page by id, and filter by lease")
    func eventsInOrder() async throws {
        try await withStateDirectory { dir in
            let store = try dir.open()
            let a = try await store.create(service: "A", frontend: "fe-a", now: t0, ttl: ttl)
            let b = try await store.create(service: "B", frontend: "fe-b", now: t0 + .seconds(1), ttl: ttl)
            struct Share: Encodable { var weight: Int; var share: Double; var held: Int }
            try await store.record(.queue, lease: b.id, service: "B", now: t0 + .seconds(2),
                                   reason: try EventReason("no free slot", details: Share(weight: 2, share: 1.5, held: 1)))
            try await store.record(.deny, service: "C", now: t0 + .seconds(3), reason: "C is at max_backends (2)")
            try await store.grant(a.id, host: "c1", slotIndex: 0, now: t0 + .seconds(4))

            let all = try await store.events()
            #expect(all.map(\.kind) == [.request, .request, .queue, .deny, .grant])
            #expect(all.map(\.id) == all.map(\.id).sorted())
            #expect(all[2].details == #"{"held":1,"share":1.5,"weight":2}"#)
            #expect(all[3].lease == nil && all[3].service == "C")

            let page1 = try await store.events(after: 0, limit: 2)
            let page2 = try await store.events(after: page1.last!.id, limit: 2)
            let page3 = try await store.events(after: page2.last!.id, limit: 2)
            #expect(page1 + page2 + page3 == all)

            #expect(try await store.events(forLease: a.id).map(\.kind) == [.request, .grant])
            #expect(try await store.events(forLease: b.id).map(\.kind) == [.request, .queue])
            try store.close()
        }
    }

    @Test("old events and finished leases are pruned a chunk at a time; live leases and recent history stay")
    func pruning() async throws {
        try await withStateDirectory { dir in
            let store = try dir.open()
            let week = Duration.seconds(7 * 24 * 3600)
            let live = try await store.create(service: "A", frontend: "fe-a", now: t0, ttl: ttl)
            try await store.grant(live.id, host: "c1", slotIndex: 0, now: t0)
            var old: [LeaseID] = []
            for _ in 0..<59 {
                let lease = try await store.create(service: "A", frontend: "fe-a", now: t0, ttl: ttl)
                try await store.apply(.revoke(.ttlExpired), to: lease.id, now: t0 + .seconds(1))
                old.append(lease.id)
            }
            let recent = try await store.create(service: "A", frontend: "fe-a", now: t0 + week + .seconds(60), ttl: ttl)
            try await store.apply(.revoke(.ttlExpired), to: recent.id, now: t0 + week + .seconds(61))
            #expect(try await store.events(limit: 1000).count == 122)

            // 120 old events: three chunks of at most 50; the old leases go once their events have.
            var chunks: [(events: Int, leases: Int)] = []
            repeat {
                chunks.append(try await store.pruneChunk(olderThan: t0 + .seconds(120), maxEvents: 1_000_000))
            } while chunks.last!.events > 0 || chunks.last!.leases > 0
            #expect(chunks.map(\.events) == [50, 50, 20, 0])
            #expect(chunks.reduce(0) { $0 + $1.leases } == 59)
            #expect(chunks.allSatisfy { $0.leases <= 50 })
            let left = try await store.leases(includingFinal: true).map(\.id)
            #expect(left == [live.id, recent.id], "the live lease stays, even with its history gone")
            #expect(try await store.events().map(\.lease) == [recent.id, recent.id])

            // At most `maxEvents`, the newest.
            #expect(try await store.pruneChunk(olderThan: t0, maxEvents: 1).events == 1)
            #expect(try await store.events().map(\.kind) == [.revoke])
            #expect(store.sizeInBytes() > 0)
            try store.close()
        }
    }

    /// Every row of every table, as text: equal dumps mean nothing changed in the file.
    static func dump(_ dir: TemporaryStateDirectory) throws -> [String] {
        let raw = try DatabaseQueue(path: dir.databasePath)
        defer { try? raw.close() }
        return try raw.read { db in
            try ["lease", "event", "sequence"].flatMap { table in
                try Row.fetchAll(db, sql: "SELECT * FROM \(table) ORDER BY rowid").map { "\(table) \($0)" }
            }
        }
    }
}
