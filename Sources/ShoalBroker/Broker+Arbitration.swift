import Logging
import ShoalAPI
import ShoalCore

extension Broker {
    /// Commits one lease event with its reason, then carries out what the state machine asks.
    /// An event the lease's state refuses is a conflict for the API (409), and changes nothing.
    func apply(_ event: LeaseEvent, to id: LeaseID, reason: String? = nil) async throws {
        let action: Lease.Action
        do {
            action = try await store.apply(event, to: id, now: clock(), reason: reason.map { EventReason($0) })
        } catch let refusal as Lease.TransitionError {
            throw BrokerError(.conflict, refusal.description)
        }
        metrics?.leaseEvent(event.kind.rawValue)
        try await carryOut(action, for: id)
    }

    func carryOut(_ action: Lease.Action, for id: LeaseID) async throws {
        notifyEvents()
        switch action {
        case .stopTasks:
            guard let stored = try await store.lease(id) else { return }
            loads[id] = nil
            lastHeard[id] = nil
            drainOrdered.remove(id)
            await launcher.stop(tasks: stored.lease.tasks)
            try await arbitrate()  // A slot is free.
        case .none, .spawn, .addMember, .orderDrain, .resumeRouting:
            // Spawns are started by `arbitrate`; the front-end learns the rest from the event log.
            break
        }
    }

    /// The claims of every registered service (and of any service that still holds leases).
    func claims(live: [StoredLease]) -> [FairShare.Claim] {
        let names = Set(services.keys).union(live.map(\.lease.service))
        return names.sorted().map { name in
            let mine = live.filter { $0.lease.service == name }
            let manifest = services[name]?.manifest
            return FairShare.Claim(
                service: name, demand: mine.filter { $0.lease.state != .draining }.count,
                backends: manifest?.backends ?? BackendRange(min: 0, max: mine.count),
                priority: manifest?.priority ?? 0, weight: manifest?.weight ?? 1)
        }
    }

    /// Runs the arbitration on the current table and carries out its plan: waiting requests get
    /// free slots by fair share; services below their share reclaim slots from those above it
    /// by a graceful drain (preemption). Each decision is recorded with the arithmetic behind it.
    /// Returns the leases it granted.
    @discardableResult
    func arbitrate() async throws -> [LeaseID: StoredLease] {
        let live = try await store.leases()
        let byService = Dictionary(grouping: live, by: \.lease.service)
        let claimsByName = Dictionary(uniqueKeysWithValues: claims(live: live).map { ($0.service, $0) })
        let arbitrationServices = claimsByName.keys.sorted().map { name -> Arbitration.Service in
            let mine = byService[name] ?? []
            return Arbitration.Service(
                claim: claimsByName[name]!,
                held: mine.filter(\.lease.holdsSlot).count,
                draining: mine.filter { $0.lease.state == .draining }.count,
                waiting: mine.filter { $0.lease.state == .requested }.count,
                preemptible: mine.filter { $0.lease.state == .active }.map(\.id).sorted(by: >))
        }
        guard arbitrationServices.contains(where: { $0.waiting > 0 }) else { return [:] }

        var used: [String: Set<Int>] = [:]
        for stored in live where stored.lease.holdsSlot {
            if let host = stored.lease.host, let slot = stored.slotIndex { used[host, default: []].insert(slot) }
        }
        let openHosts = hostOrder.filter { hosts[$0]?.isOpen ?? false }
        let plan = Arbitration.plan(
            services: arbitrationServices,
            hosts: openHosts.map { Arbitration.Host(name: $0, free: max(0, hosts[$0]!.slots - (used[$0]?.count ?? 0))) })
        guard !plan.decisions.isEmpty else { return [:] }

        var waiting = byService.mapValues { $0.filter { $0.lease.state == .requested }.map(\.id).sorted() }
        let now = clock()
        // Calls that reach here concurrently (the actor is re-entered at every await) plan from
        // the same table: a lease another one granted meanwhile is skipped, a slot it took means
        // planning again.
        var planAgain = false
        var granted: [LeaseID: StoredLease] = [:]
        for decision in plan.decisions {
            switch decision {
            case .grant(let service, let host):
                guard let id = waiting[service]?.first else { continue }
                waiting[service]?.removeFirst()
                let slots = hosts[host]?.slots ?? 0
                guard let slot = (0..<slots).first(where: { !(used[host]?.contains($0) ?? false) }) else { continue }
                used[host, default: []].insert(slot)
                let reason = try EventReason(
                    "granted slot \(slot) of \(host): \(service) is below its fair share \(plan.allocation.share(of: service))",
                    details: plan.allocation.explanation)
                do {
                    let grant = try await store.grant(id, host: host, slotIndex: slot, now: now, reason: reason).lease
                    granted[id] = grant
                    metrics?.granted(after: now - grant.lease.requestedAt)
                    metrics?.leaseEvent(BrokerEvent.Kind.grant.rawValue)
                } catch is Lease.TransitionError {
                    continue
                } catch let error as LeaseStoreError where error.code == .slotTaken {
                    planAgain = true
                    continue
                }
                notifyEvents()
                if let path = services[service]?.manifestPath {
                    Task { await self.start(lease: id, manifestPath: path, on: host) }
                } else {
                    try await apply(.revoke(.spawnFailed), to: id, reason: "service \(service) has no registered manifest")
                }
            case .preempt(let lease, let victim, let beneficiary):
                let deadline = now + (services[victim]?.manifest.drainTimeout ?? .seconds(30))
                let reason = try EventReason(
                    "preempted: \(victim) holds more than its fair share \(plan.allocation.share(of: victim)); "
                        + "\(beneficiary) is below its share \(plan.allocation.share(of: beneficiary)) and waits",
                    details: plan.allocation.explanation)
                let action: Lease.Action
                do {
                    action = try await store.apply(.drainRequested(Drain(reason: .preemption, deadline: deadline)),
                                                   to: lease, now: now, reason: reason)
                } catch is Lease.TransitionError {
                    continue
                }
                try await carryOut(action, for: lease)
            }
        }
        if planAgain { granted.merge(try await arbitrate()) { _, new in new } }
        return granted
    }

    /// Starts the worker of a granted lease and records its task; a failure revokes the lease.
    func start(lease id: LeaseID, manifestPath: String, on host: String) async {
        do {
            let tasks = try await launcher.launch(lease: id, manifestPath: manifestPath, on: host)
            for task in tasks {
                taskOwners[task] = id
                taskHosts[task] = host
            }
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
