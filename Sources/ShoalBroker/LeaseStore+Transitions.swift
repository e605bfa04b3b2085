import GRDB
import Logging
import ShoalCore

extension LeaseStore {
    /// A new lease in `requested`, with the next id of the never-repeating sequence
    /// (`L-000001`, `L-000002` …), and its `request` event.
    public func create(
        service: String, frontend: String, now: Timestamp, ttl: Duration, reason: EventReason? = nil
    ) async throws -> StoredLease {
        let stored = try await write { db in
            let next = try Int64.fetchOne(db, sql: "UPDATE sequence SET value = value + 1 WHERE name = 'lease' RETURNING value")
            guard let next else { throw LeaseStoreError.corrupt("the lease id sequence is missing") }
            let lease = Lease(id: Self.leaseID(next), service: service, frontend: frontend, requestedAt: now, ttl: ttl)
            let stored = StoredLease(lease: lease)
            try LeaseRow(stored).insert(db)
            _ = try EventRow.insert(Self.event(
                .request, now: now, lease: lease, from: nil,
                reason: reason ?? EventReason("front-end \(frontend) asked for a back-end for \(service)")), db)
            return stored
        }
        logger.info("lease requested", metadata: ["lease": "\(stored.id)", "service": "\(service)", "frontend": "\(frontend)"])
        return stored
    }

    /// Gives slot `slotIndex` of `host` to a requested lease, with its `secret` (a new random one
    /// by default). Throws ``LeaseStoreError/Code/slotTaken`` if a live lease holds that slot (the
    /// database's unique index backs the check), or the state machine's `TransitionError`; either
    /// way nothing changes.
    @discardableResult
    public func grant(
        _ id: LeaseID, host: String, slotIndex: Int, now: Timestamp, secret: LeaseSecret = .random(), reason: EventReason? = nil
    ) async throws -> LeaseChange {
        try await change(id, now: now, kind: { _ in .grant }, reason: { _ in reason ?? EventReason("slot \(slotIndex) of \(host) was free") }) { stored, db in
            let action = try stored.lease.grant(host: host, now: now)
            stored.slotIndex = slotIndex
            stored.secret = secret
            let holder = try String.fetchOne(db, sql: """
                SELECT id FROM lease WHERE host = ? AND slot_index = ? AND state IN \(LeaseRow.holdingSlot)
                """, arguments: [host, slotIndex])
            if let holder { throw LeaseStoreError.slotTaken(host: host, slot: slotIndex, holder: LeaseID(holder)) }
            return action
        }
    }

    /// Runs `event` through the state machine on the stored lease and records it with `reason`
    /// (or a default sentence). Returns the lease after it and what the broker must carry out.
    @discardableResult
    public func apply(
        _ event: LeaseEvent, to id: LeaseID, now: Timestamp, reason: EventReason? = nil
    ) async throws -> LeaseChange {
        try await change(id, now: now, kind: event.kind(after:), reason: { reason ?? EventReason(event.defaultReason(after: $0)) }) { stored, _ in
            try event.apply(to: &stored.lease, now: now)
        }
    }

    /// The front-end's heartbeat: every live lease it holds (or only `lease`) lives for another
    /// `ttl` from `now`. Returns the leases renewed. No event row: heartbeats are routine, and the
    /// log is for decisions.
    @discardableResult
    public func renew(frontend: String, lease: LeaseID? = nil, now: Timestamp, ttl: Duration) async throws -> [StoredLease] {
        try await write { db in
            var sql = "SELECT * FROM lease WHERE frontend = ? AND state IN \(LeaseRow.live)"
            var arguments: StatementArguments = [frontend]
            if let lease {
                sql += " AND id = ?"
                arguments += [lease.rawValue]
            }
            return try LeaseRow.fetchAll(db, sql: sql + " ORDER BY id", arguments: arguments).map { row in
                var stored = row.stored
                _ = try stored.lease.renew(now: now, ttl: ttl)
                try LeaseRow(stored).update(db)
                return stored
            }
        }
    }

    /// Ticks every live lease at `now`: those not renewed in time, drains past their deadline
    /// and workers not ready `readinessTimeout` after their grant are revoked, each with a
    /// `revoke` event giving the times. One transaction.
    public func expire(now: Timestamp, readinessTimeout: Duration? = nil) async throws -> [LeaseChange] {
        let changes = try await write { db in
            let live = try LeaseRow.fetchAll(db, sql: "SELECT * FROM lease WHERE state IN \(LeaseRow.live) ORDER BY id")
            var changes: [LeaseChange] = []
            for row in live {
                var stored = row.stored
                let before = stored.lease
                let action = stored.lease.tick(now: now, readinessTimeout: readinessTimeout)
                guard stored.lease != before else { continue }
                try LeaseRow(stored).update(db)
                let reason = try Self.expiryReason(before, now: now, readinessTimeout: readinessTimeout)
                let event = try EventRow.insert(Self.event(.revoke, now: now, lease: stored.lease, from: before.state, reason: reason), db)
                changes.append(LeaseChange(lease: stored, action: action, event: event))
            }
            return changes
        }
        for change in changes {
            var metadata: Logger.Metadata = [
                "lease": "\(change.lease.id)", "service": "\(change.lease.lease.service)", "reason": "\(change.event.reason)",
            ]
            if let host = change.lease.lease.host { metadata["host"] = "\(host)" }
            logger.info("lease revoked", metadata: metadata)
        }
        return changes
    }

    /// Records an event that changes no lease: a denial, a queueing, an arbitration decision.
    @discardableResult
    public func record(
        _ kind: BrokerEvent.Kind, lease: LeaseID? = nil, service: String? = nil, host: String? = nil,
        now: Timestamp, reason: EventReason
    ) async throws -> BrokerEvent {
        try await write { db in
            try EventRow.insert(BrokerEvent(
                id: 0, time: now, kind: kind, lease: lease, service: service, host: host,
                reason: reason.text, details: reason.details), db)
        }
    }

    // MARK: Plumbing

    /// One transition in one transaction: read the lease, let `body` change it, write it and its
    /// event. A throw anywhere rolls everything back.
    private func change(
        _ id: LeaseID, now: Timestamp, kind: @escaping @Sendable (Lease) -> BrokerEvent.Kind,
        reason: @escaping @Sendable (Lease) -> EventReason,
        _ body: @escaping @Sendable (inout StoredLease, Database) throws -> Lease.Action
    ) async throws -> LeaseChange {
        let change = try await write { db in
            guard var stored = try LeaseRow.fetchOne(db, key: id.rawValue)?.stored else { throw LeaseStoreError.notFound(id) }
            let from = stored.lease.state
            let action = try body(&stored, db)
            do {
                try LeaseRow(stored).update(db)
            } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
                // `lease_slot_held` caught what the code did not check (it should not happen).
                let host = stored.lease.host ?? "", slot = stored.slotIndex ?? -1
                let holder = try String.fetchOne(db, sql: """
                    SELECT id FROM lease WHERE host = ? AND slot_index = ? AND state IN \(LeaseRow.holdingSlot)
                    """, arguments: [host, slot])
                throw LeaseStoreError.slotTaken(host: host, slot: slot, holder: holder.map(LeaseID.init(rawValue:)))
            }
            let event = try EventRow.insert(
                Self.event(kind(stored.lease), now: now, lease: stored.lease, from: from, reason: reason(stored.lease)), db)
            return LeaseChange(lease: stored, action: action, event: event)
        }
        let lease = change.lease.lease
        let kind = change.event.kind
        var metadata: Logger.Metadata = [
            "lease": "\(id)", "service": "\(lease.service)", "frontend": "\(lease.frontend)",
            "state": "\(lease.state.rawValue)", "action": "\(change.action)",
        ]
        if let host = lease.host { metadata["host"] = "\(host)" }
        logger.info("lease \(kind)", metadata: metadata)
        return change
    }

    static func leaseID(_ number: Int64) -> LeaseID {
        let digits = String(number)
        return LeaseID("L-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits)
    }

    static func event(_ kind: BrokerEvent.Kind, now: Timestamp, lease: Lease, from: LeaseState?, reason: EventReason) -> BrokerEvent {
        BrokerEvent(
            id: 0, time: now, kind: kind, lease: lease.id, service: lease.service, host: lease.host,
            fromState: from, toState: lease.state, reason: reason.text, details: reason.details)
    }

    /// Why `tick` revoked `lease` (as it was before), with the times.
    static func expiryReason(_ lease: Lease, now: Timestamp, readinessTimeout: Duration?) throws -> EventReason {
        struct Figures: Encodable {
            var now: Int64
            var expiresAt: Int64
            var drainDeadline: Int64?
            var drainReason: String?
            var lateMs: Int64
        }
        if now >= lease.expiresAt {
            let late = (now - lease.expiresAt).wholeMilliseconds
            return try EventReason(
                "ttl-expired: not renewed since it expired at \(lease.expiresAt) (\(late) ms ago)",
                details: Figures(now: now.milliseconds, expiresAt: lease.expiresAt.milliseconds, lateMs: late))
        }
        if lease.state == .granted, let readinessTimeout {
            let grantedAt = lease.grantedAt ?? lease.requestedAt
            return try EventReason(
                "spawn-failed: not ready \(readinessTimeout) after it was granted",
                details: Figures(now: now.milliseconds, expiresAt: lease.expiresAt.milliseconds,
                                 lateMs: (now - (grantedAt + readinessTimeout)).wholeMilliseconds))
        }
        let deadline = lease.drain?.deadline ?? now
        let late = (now - deadline).wholeMilliseconds
        return try EventReason(
            "drain-deadline-passed: \(lease.drain?.reason.rawValue ?? "") drain not finished by \(deadline) (\(Duration.milliseconds(late)) ago)",
            details: Figures(now: now.milliseconds, expiresAt: lease.expiresAt.milliseconds,
                             drainDeadline: deadline.milliseconds, drainReason: lease.drain?.reason.rawValue, lateMs: late))
    }
}
