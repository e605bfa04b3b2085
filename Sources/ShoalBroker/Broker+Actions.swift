import Logging
import ShoalAPI
import ShoalCore

/// Carrying out what the core decided.
extension Broker {
    /// Commits one lease event with its reason, then carries out what the state machine asks.
    /// An event the lease's state refuses is a conflict for the API (409), and changes nothing.
    func apply(_ event: LeaseEvent, to id: LeaseID, reason: String? = nil) async throws {
        let change: LeaseChange
        do {
            change = try await store.apply(event, to: id, now: clock(), reason: reason.map { EventReason($0) })
        } catch let refusal as Lease.TransitionError {
            throw BrokerError(.conflict, refusal.description)
        }
        metrics?.leaseEvent(change.event.kind.rawValue)
        try await carryOut(change.action, for: change.lease)
    }

    /// Every action of the lease state machine. The front-end learns of a change to its routing
    /// (`addMember`, `orderDrain`, `resumeRouting`) from the event log, whose row is already
    /// written: the long polls are woken for it.
    func carryOut(_ action: Lease.Action, for stored: StoredLease) async throws {
        notifyEvents()
        switch action {
        case .none, .addMember, .orderDrain, .resumeRouting:
            break
        case .spawn(let host):
            guard let path = services[stored.lease.service]?.manifestPath else {
                try await apply(.revoke(.spawnFailed), to: stored.id, reason: "service \(stored.lease.service) has no registered manifest")
                return
            }
            work.submit { await self.start(lease: stored.id, secret: stored.secret, manifestPath: path, on: host) }
        case .drainWorker:
            await launcher.drain(tasks: stored.lease.tasks)
        case .stopTasks, .abandonTasks:
            loads[stored.id] = nil
            health.forget(stored.id)
            if action == .stopTasks { await launcher.stop(tasks: stored.lease.tasks) }
            try await arbitrate()  // A slot is free.
        }
    }

    /// What the pool health rules decided.
    func carryOut(_ actions: [PoolHealth.Action]) async throws {
        for action in actions {
            switch action {
            case .revoke(let lease, let reason, let text):
                try await revokeIfLive(lease, reason, reason: text)
            case .record(let event, let host, let reason):
                try await store.record(event == .up ? .hostUp : .revoke, host: host, now: clock(), reason: EventReason(reason))
                notifyEvents()
                logger.notice("\(reason)", metadata: ["host": "\(host)"])
            case .remove(let host):
                work.submit { await self.remove(host) }
            case .rejoin(let host, let attempt):
                work.submit { await self.rejoin(host, attempt: attempt) }
            case .arbitrate:
                try await arbitrate()
            case .warn(let host, let message):
                logger.warning("\(message)", metadata: ["host": "\(host)"])
            }
        }
    }

    func revokeIfLive(_ id: LeaseID, _ reason: RevocationReason, reason text: String) async throws {
        guard let stored = try await store.lease(id), !stored.lease.state.isFinal else { return }
        try await apply(.revoke(reason), to: id, reason: text)
    }

    /// The pool as the core sees it now.
    func snapshot(_ live: [StoredLease]) -> PoolSnapshot {
        PoolSnapshot(
            hosts: health.order.map { name in
                let host = health.hosts[name]
                return PoolSnapshot.Host(name: name, slots: host?.slots ?? 0, isOpen: host?.isOpen ?? false)
            },
            services: services.mapValues { service in
                PoolSnapshot.Terms(backends: service.manifest.backends, priority: service.manifest.priority,
                                   weight: service.manifest.weight, drainTimeout: service.manifest.drainTimeout)
            },
            leases: live.map { PoolSnapshot.LeaseSlot(id: $0.id, service: $0.lease.service, state: $0.lease.state,
                                                      host: $0.lease.host, slot: $0.slotIndex, inFlight: loads[$0.id]?.inFlight) })
    }

    /// Plans on the current table and carries out the plan: waiting requests get free slots by
    /// fair share; services below their share reclaim slots from those above it by a graceful
    /// drain (preemption). Each step is recorded with the arithmetic behind it. Returns the
    /// leases it granted.
    @discardableResult
    func arbitrate() async throws -> [LeaseID: StoredLease] {
        // Most calls (every release) find no one waiting: that costs an index lookup, not a read
        // of every live lease.
        guard try await store.hasWaitingLease() else { return [:] }
        let live = try await store.leases()
        guard live.contains(where: { $0.lease.state == .requested }) else { return [:] }
        let now = clock()
        let assignment = snapshot(live).assign(now: now)
        for rejection in assignment.rejected {
            logger.debug("arbitration decision not carried out", metadata: ["decision": "\(rejection.decision)", "why": "\(rejection.why)"])
        }
        // The actor is re-entered at every await, so another call may have changed the table
        // since it was read: the store re-checks each step (state machine, one lease per slot). A
        // lease changed meanwhile is skipped; a slot taken meanwhile means planning again.
        var planAgain = false
        var granted: [LeaseID: StoredLease] = [:]
        for step in assignment.steps {
            switch step {
            case .grant(let id, let host, let slot, let text):
                let change: LeaseChange
                do {
                    change = try await store.grant(id, host: host, slotIndex: slot, now: now,
                                                   reason: try EventReason(text, details: assignment.explanation))
                } catch is Lease.TransitionError {
                    continue
                } catch let error as LeaseStoreError where error.code == .slotTaken {
                    planAgain = true
                    continue
                }
                granted[id] = change.lease
                metrics?.granted(after: now - change.lease.lease.requestedAt)
                metrics?.leaseEvent(BrokerEvent.Kind.grant.rawValue)
                try await carryOut(change.action, for: change.lease)
            case .preempt(let id, let deadline, let text):
                let change: LeaseChange
                do {
                    change = try await store.apply(.drainRequested(Drain(reason: .preemption, deadline: deadline)), to: id, now: now,
                                                   reason: try EventReason(text, details: assignment.explanation))
                } catch is Lease.TransitionError {
                    continue
                }
                metrics?.leaseEvent(change.event.kind.rawValue)
                try await carryOut(change.action, for: change.lease)
            }
        }
        if planAgain { granted.merge(try await arbitrate()) { _, new in new } }
        return granted
    }

    /// Starts the worker of a granted lease and records its task; a failure revokes the lease.
    func start(lease id: LeaseID, secret: LeaseSecret?, manifestPath: String, on host: String) async {
        do {
            let tasks = try await launcher.launch(lease: id, secret: secret, manifestPath: manifestPath, on: host)
            for task in tasks { workerTasks[task] = WorkerTask(lease: id, host: host) }
            do {
                try await apply(.spawned(tasks: tasks), to: id)
            } catch {
                // Released or revoked meanwhile: the worker has no lease to serve.
                await launcher.stop(tasks: tasks)
            }
        } catch {
            logger.error("worker did not start", metadata: ["lease": "\(id)", "host": "\(host)", "error": "\(error)"])
            try? await apply(.revoke(.spawnFailed), to: id, reason: "the worker could not be started on \(host): \(error)")
        }
    }
}
