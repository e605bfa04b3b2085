import Logging
import ShoalAPI
import ShoalCore

extension Broker {
    /// What the pool reported: a worker ready, loaded, drained or failed; a task or host gone.
    func handle(_ event: LauncherEvent) async throws {
        switch event {
        case .ready(let task, _), .load(let task, _, _), .drained(let task), .failed(let task, _), .exited(let task):
            heard(from: task)
        case .hostDown, .disconnected:
            break
        }
        switch event {
        case .ready(let task, let endpoint):
            guard let id = taskOwners[task], let stored = try await store.lease(id) else { return }
            lastHeard[id] = clock()
            if stored.lease.state == .granted {
                try await apply(.becameReady(endpoint: endpoint), to: id,
                                reason: "worker \(task) on \(stored.lease.host ?? "?") serves at \(endpoint)")
            }
        case .load(let task, let inFlight, let queued):
            if let id = taskOwners[task] {
                loads[id] = (inFlight, queued)
                lastHeard[id] = clock()
            }
        case .drained(let task):
            guard let id = taskOwners[task], let stored = try await store.lease(id), stored.lease.state == .draining else { return }
            try await apply(.drained, to: id, reason: "worker \(task) finished its last in-flight request")
        case .failed(let task, let reason):
            guard let id = taskOwners[task] else { return }
            try await revokeIfLive(id, .spawnFailed, reason: "worker \(task) could not start its service: \(reason)")
        case .exited(let task):
            taskHosts[task] = nil
            guard let id = taskOwners.removeValue(forKey: task) else { return }
            if drainOrdered.contains(id), let stored = try await store.lease(id), stored.lease.state == .draining {
                try await apply(.drained, to: id, reason: "worker \(task) exited after its drain order: nothing left in flight")
            } else {
                try await revokeIfLive(id, .taskDied, reason: "worker task \(task) exited (pvm_notify)")
            }
        case .hostDown(let host):
            if hosts[host]?.down == true {
                // The broker deleted it itself (a pvmd taken for dead), and PVM has now let go
                // of it: add it again at once.
                lost(host, nextAttempt: clock())
            } else {
                lost(host, nextAttempt: clock() + configuration.rejoinFirstDelay)
                try await store.record(.revoke, host: host, now: clock(), reason: EventReason(
                    "host \(host) left the virtual machine (pvm_notify); adding it again in \(configuration.rejoinFirstDelay)"))
                notifyEvents()
            }
            for stored in try await store.liveLeasesByHost()[host] ?? [] {
                try await revokeIfLive(stored.id, .hostFailed, reason: "host \(host) failed (pvm_notify host delete)")
            }
        case .disconnected:
            break  // `run()` ends the broker.
        }
    }

    private func revokeIfLive(_ id: LeaseID, _ reason: RevocationReason, reason text: String) async throws {
        guard let stored = try await store.lease(id), !stored.lease.state.isFinal else { return }
        try await apply(.revoke(reason), to: id, reason: text)
    }

    /// Clock-driven work: silent front-ends' leases expire, overdue drains and start-ups end.
    func tick() async throws {
        let now = clock()
        for change in try await store.expire(now: now) {
            metrics?.leaseEvent(BrokerEvent.Kind.revoke.rawValue)
            try await carryOut(change.action, for: change.lease.id)
        }
        var silentByHost: [String: [StoredLease]] = [:]
        let live = try await store.leases()
        for stored in live {
            switch stored.lease.state {
            case .granted:
                try await giveUpIfNotReady(stored, now: now)
            case .active, .draining:
                let heard = lastHeard[stored.id] ?? now
                lastHeard[stored.id] = heard
                if now - heard > configuration.workerSilenceLimit, let host = stored.lease.host {
                    silentByHost[host, default: []].append(stored)
                }
            case .requested, .released, .revoked:
                break
            }
        }
        for (host, silent) in silentByHost.sorted(by: { $0.key < $1.key }) {
            let serving = live.filter { $0.lease.host == host && ($0.lease.state == .active || $0.lease.state == .draining) }
            try await revokeSilent(silent, on: host, allServing: silent.count == serving.count)
        }
        for (name, state) in hosts.sorted(by: { $0.key < $1.key }) where state.quarantinedUntil.map({ now >= $0 }) ?? false {
            hosts[name]?.quarantinedUntil = nil
            hosts[name]?.silentSince = nil
            let since = state.silentSince ?? now
            if let heard = state.heardAt, heard >= since {
                // Its link was cut, not its pvmd killed: what was held up got through.
                logger.notice("host back in the pool after its quarantine", metadata: ["host": "\(name)"])
            } else {
                try await restart(name, silentFor: now - since)
            }
        }
        startDueRejoins(now: now)
    }

    private func giveUpIfNotReady(_ stored: StoredLease, now: Timestamp) async throws {
        // Cheap test first: granted no earlier than requested, so younger requests are not overdue.
        guard now - stored.lease.requestedAt > configuration.readinessTimeout else { return }
        // The time to become ready counts from the grant, not from the request: a lease may
        // have waited in the queue for longer than the timeout.
        let grantedAt = try await store.events(forLease: stored.id).last { $0.kind == .grant }?.time
            ?? stored.lease.requestedAt
        if now - grantedAt > configuration.readinessTimeout {
            try await apply(.revoke(.spawnFailed), to: stored.id,
                            reason: "not ready \(configuration.readinessTimeout) after it was granted")
        }
    }

    /// Workers that stopped reporting. When every serving worker of a host is silent, the host
    /// is taken for failed (its pvmd or its network is gone) and quarantined — no grants there
    /// for a while; otherwise only those workers are.
    private func revokeSilent(_ silent: [StoredLease], on host: String, allServing: Bool) async throws {
        let limit = configuration.workerSilenceLimit
        guard allServing else {
            for stored in silent {
                try await revokeIfLive(stored.id, .taskDied, reason: "worker silent for \(limit): no load report")
            }
            return
        }
        hosts[host]?.quarantinedUntil = clock() + configuration.quarantine
        hosts[host]?.silentSince = clock()
        try await store.record(.revoke, host: host, now: clock(), reason: EventReason(
            "host \(host) taken for failed: none of its \(silent.count) workers reported for \(limit); no grants there for \(configuration.quarantine)"))
        for stored in silent {
            try await revokeIfLive(stored.id, .hostFailed, reason: "host \(host) silent for \(limit): every worker there stopped reporting")
        }
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
        let timer = Task {
            try? await Task.sleep(for: wait)
            self.wake(id)
        }
        await withCheckedContinuation { eventWaiters[id] = $0 }
        timer.cancel()
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
