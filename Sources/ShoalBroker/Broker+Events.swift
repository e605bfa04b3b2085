import Logging
import ShoalAPI
import ShoalCore

extension Broker {
    /// What the pool reported: a worker ready, loaded, drained or failed; a task or host gone.
    func handle(_ event: LauncherEvent) async throws {
        let now = clock()
        switch event {
        case .ready(let task, _), .load(let task, _, _), .drained(let task), .failed(let task, _):
            health.workerHeard(workerTasks[task]?.lease, on: workerTasks[task]?.host, at: now)
        case .exited(let task):
            health.workerHeard(nil, on: workerTasks[task]?.host, at: now)  // Its pvmd is alive: it said so.
        case .hostDown, .poolLost, .poolRestarted:
            break
        }
        switch event {
        case .ready(let task, let endpoint):
            guard let id = workerTasks[task]?.lease else { return }
            try await applyReport(.becameReady(endpoint: endpoint), to: id,
                                  reason: "worker \(task) on \(workerTasks[task]?.host ?? "?") serves at \(endpoint)")
        case .load(let task, let inFlight, let queued):
            if let id = workerTasks[task]?.lease { loads[id] = (inFlight, queued) }
        case .drained(let task):
            guard let id = workerTasks[task]?.lease else { return }
            try await applyReport(.drained, to: id, reason: "worker \(task) finished its last in-flight request")
        case .failed(let task, let reason):
            guard let id = workerTasks[task]?.lease else { return }
            try await revokeIfLive(id, .spawnFailed, reason: "worker \(task) could not start its service: \(reason)")
        case .exited(let task):
            guard let id = workerTasks.removeValue(forKey: task)?.lease,
                  let stored = try await store.lease(id), !stored.lease.state.isFinal else { return }
            try await apply(.workerExited(task: task), to: id)
        case .hostDown(let host):
            let leases = try await store.liveLeasesByHost()[host]?.map(\.id) ?? []
            try await carryOut(health.hostDeleted(host, leases: leases, now: now))
        case .poolLost(let reason):
            logger.critical("lost the pool's pvmd: every worker is gone; starting a new pool", metadata: ["reason": "\(reason)"])
            workerTasks = [:]
            let holding = try await store.leases().filter { $0.lease.state.holdsSlot }.map(\.id)
            try await carryOut(health.poolLost(reason: reason, leases: holding, now: now))
        case .poolRestarted(let hosts):
            try await carryOut(health.poolRestarted(present: Set(hosts), now: now))
        }
    }

    /// A worker's report, which the lease's state may have overtaken (a restarted broker hears
    /// `ready` again from the workers it adopts; a drain may end by the worker's exit first): the
    /// state machine's refusal means the report is stale, not that anything is wrong.
    private func applyReport(_ event: LeaseEvent, to id: LeaseID, reason: String) async throws {
        do {
            try await apply(event, to: id, reason: reason)
        } catch let error as BrokerError where error.code == .conflict {
            logger.debug("stale worker report ignored", metadata: ["lease": "\(id)", "why": "\(error)"])
        }
    }

    /// Clock-driven work: silent front-ends' leases expire, overdue drains and start-ups end,
    /// silent workers and hosts are acted on, lost hosts are added again.
    func tick() async throws {
        let now = clock()
        for change in try await store.expire(now: now, readinessTimeout: configuration.readinessTimeout) {
            metrics?.leaseEvent(BrokerEvent.Kind.revoke.rawValue)
            try await carryOut(change.action, for: change.lease)
        }
        let live = try await store.leases()
        countHeld(live)
        let serving = live.compactMap { stored -> PoolHealth.ServingLease? in
            guard stored.lease.state.hasServingWorker, let host = stored.lease.host else { return nil }
            return PoolHealth.ServingLease(id: stored.id, host: host)
        }
        try await carryOut(health.tick(now: now, serving: serving))
    }

    /// Adds the slots each service held since the last tick to its back-end-seconds.
    private func countHeld(_ live: [StoredLease]) {
        // The clock is read here, with no suspension before the update: ticks may interleave.
        let now = clock()
        guard let since = heldCountedAt else {
            heldCountedAt = now
            return
        }
        guard now > since else { return }
        heldCountedAt = now
        var held: [String: Int] = [:]
        for stored in live where stored.lease.state.holdsSlot { held[stored.lease.service, default: 0] += 1 }
        efficiency.held(held, for: now - since)
        metrics?.held(held, for: now - since)
    }

    // MARK: Long polls of the event log

    /// `after` below 0 means "from now": only events still to come.
    public func events(after: Int64, limit: Int, wait: Duration) async throws -> EventPage {
        let after = after < 0 ? try await store.latestEventID() : after
        let deadline = ContinuousClock.now + wait
        var generation = eventGeneration
        var events = try await store.events(after: after, limit: limit)
        while events.isEmpty, !stoppedWaiting, !Task.isCancelled {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { break }
            // Each read suspends this actor: an event recorded meanwhile has already notified,
            // so wait only if nothing was notified since the last read.
            if eventGeneration == generation { await waitForEvents(upTo: remaining) }
            generation = eventGeneration
            events = try await store.events(after: after, limit: limit)
        }
        return EventPage(events: events.map(\.view), next: events.last?.id ?? after)
    }

    private func waitForEvents(upTo wait: Duration) async {
        let id = nextWaiterID
        nextWaiterID += 1
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: wait)
                await self.wake(id)
            }
            await withCheckedContinuation { eventWaiters[id] = $0 }
            group.cancelAll()
        }
    }

    private func wake(_ id: Int) {
        eventWaiters.removeValue(forKey: id)?.resume()
    }

    /// Something was recorded: every long poll answers.
    func notifyEvents() {
        eventGeneration &+= 1
        let waiters = eventWaiters
        eventWaiters = [:]
        for waiter in waiters.values { waiter.resume() }
    }

    func stopWaiting() {
        stoppedWaiting = true
        notifyEvents()
    }
}
