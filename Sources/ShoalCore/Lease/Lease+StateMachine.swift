/// The lease lifecycle. Each event is a `mutating func` named after what happened; it changes
/// the lease and returns the one ``Lease/Action`` the broker must carry out, or throws when the
/// event makes no sense in the lease's state (and then changes nothing).
///
/// ```
/// requested ─grant─► granted ─ready─► active ─drainRequested─► draining ─drained─► released
///                                        ▲                          │  ▲
///                                        └──────drainCancelled──────┘  └ frontendReleased
///                                                                        (worker told to drain;
///                                                                         its exit = drained)
/// any live state ─revoke / expired / drain deadline / not ready in time─► revoked
/// ```
extension Lease {
    public enum Action: Sendable, Hashable {
        /// Nothing to do outside the record.
        case none
        /// Start the worker and the service instance on `host`.
        case spawn(host: String)
        /// Tell the front-end it may route to this back-end.
        case addMember
        /// Tell the front-end to stop routing here and the worker to drain by `deadline`.
        case orderDrain(deadline: Timestamp)
        /// Tell the front-end to route here again (a drain was cancelled).
        case resumeRouting
        /// Tell the worker to finish what it serves, report `drained` and exit.
        case drainWorker
        /// Kill the lease's tasks; its slot is free.
        case stopTasks
        /// Its slot is free, and its tasks get no message: their host is taken for failed, and a
        /// kill sent there would wait at the head of the master pvmd's one output queue, holding
        /// up every other host's spawns and reports (a lease elsewhere: 4.6 s to ready instead of
        /// 0.4 s). A worker there that still runs (its link was cut) stops itself once it hears
        /// from the broker that its lease is over.
        case abandonTasks
    }

    public struct TransitionError: Error, Sendable, Hashable, CustomStringConvertible {
        public var lease: LeaseID
        public var event: String
        public var state: LeaseState

        public init(lease: LeaseID, event: String, state: LeaseState) {
            self.lease = lease
            self.event = event
            self.state = state
        }

        public var description: String { "lease \(lease) is \(state.rawValue): cannot \(event)" }
    }

    /// A slot on `host` was given to this lease at `now` (its worker's start-up time counts from here).
    public mutating func grant(host: String, now: Timestamp) throws(TransitionError) -> Action {
        guard state == .requested else { throw refusal("grant") }
        self.host = host
        state = .granted
        grantedAt = now
        return .spawn(host: host)
    }

    /// The worker and service instance were started with these task ids. The worker may have
    /// reported ready before the spawn was recorded, so an active lease takes them too.
    public mutating func spawned(tasks: [Int32]) throws(TransitionError) -> Action {
        guard state == .granted || state == .active else { throw refusal("record spawned tasks") }
        self.tasks = tasks
        return .none
    }

    /// The service instance passed its health check; its worker takes requests at `endpoint`.
    public mutating func becameReady(endpoint: String) throws(TransitionError) -> Action {
        guard state == .granted else { throw refusal("become ready") }
        self.endpoint = endpoint
        state = .active
        return .addMember
    }

    /// The front-end's heartbeat: the lease lives for another `ttl`.
    public mutating func renew(now: Timestamp, ttl: Duration) throws(TransitionError) -> Action {
        guard !state.isFinal else { throw refusal("renew") }
        expiresAt = now + ttl
        return .none
    }

    /// Give the back-end back gracefully. A lease that serves nothing yet ends at once; an active
    /// one drains; a drain already under way keeps the earlier deadline.
    public mutating func drainRequested(_ requested: Drain) throws(TransitionError) -> Action {
        switch state {
        case .requested:
            state = .released
            return .none
        case .granted:
            state = .released
            return .stopTasks
        case .active:
            state = .draining
            drain = requested
            return .orderDrain(deadline: requested.deadline)
        case .draining:
            if let current = drain, current.deadline <= requested.deadline { return .none }
            drain = requested
            return .orderDrain(deadline: requested.deadline)
        case .released, .revoked:
            throw refusal("drain")
        }
    }

    /// Load rose again before the drain finished: keep the back-end. Only the front-end's own
    /// scale-down can be taken back; a preemption or maintenance drain cannot.
    public mutating func drainCancelled() throws(TransitionError) -> Action {
        guard state == .draining, drain?.reason == .scaleDown else { throw refusal("cancel its drain") }
        state = .active
        drain = nil
        return .resumeRouting
    }

    /// The front-end gives the back-end back: it has nothing in flight there any more. A lease
    /// that serves nothing yet ends at once; a serving or draining one drains, and its worker is
    /// told to finish what it still serves (requests the front-end stopped counting: given up on,
    /// or from before a front-end restart). Releasing a lease that is over is harmless.
    public mutating func frontendReleased(now: Timestamp, drainTimeout: Duration) throws(TransitionError) -> Action {
        switch state {
        case .requested, .granted:
            return try drainRequested(Drain(reason: .scaleDown, deadline: now))
        case .active:
            _ = try drainRequested(Drain(reason: .scaleDown, deadline: now + drainTimeout))
            workerDraining = true
            return .drainWorker
        case .draining:
            workerDraining = true
            return .drainWorker
        case .released, .revoked:
            return .none
        }
    }

    /// The worker reports that its last in-flight request finished.
    public mutating func drained() throws(TransitionError) -> Action {
        guard state == .draining else { throw refusal("finish draining") }
        state = .released
        return .stopTasks
    }

    /// A worker task of the lease exited. After its drain order that is the drain's end (the
    /// exit notice and the `drained` message travel separately, in either order); otherwise the
    /// worker died under a live lease. Nothing to do for a lease that is over.
    public mutating func workerExited() -> Action {
        guard !state.isFinal else { return .none }
        if state == .draining, workerDraining { return (try? drained()) ?? .none }
        return (try? revoke(.taskDied)) ?? .none
    }

    /// Taken away at once: the host or a task died, or the spawn failed.
    public mutating func revoke(_ reason: RevocationReason) throws(TransitionError) -> Action {
        guard !state.isFinal else { throw refusal("be revoked") }
        let hadTasks = state != .requested
        state = .revoked
        revocation = reason
        workerDraining = false
        guard hadTasks else { return .none }
        return reason == .hostFailed ? .abandonTasks : .stopTasks
    }

    /// Time passed: a lease not renewed before it expired, a drain past its deadline, or a
    /// worker not ready `readinessTimeout` after its grant, is revoked.
    public mutating func tick(now: Timestamp, readinessTimeout: Duration? = nil) -> Action {
        guard !state.isFinal else { return .none }
        if now >= expiresAt { return (try? revoke(.ttlExpired)) ?? .none }
        if state == .draining, let drain, now >= drain.deadline {
            return (try? revoke(.drainDeadlinePassed)) ?? .none
        }
        if state == .granted, let readinessTimeout, now - (grantedAt ?? requestedAt) > readinessTimeout {
            return (try? revoke(.spawnFailed)) ?? .none
        }
        return .none
    }

    /// What a restarted broker must do about this lease, found live in the table: revoke it
    /// (with why) if its worker was never started, is gone, or its host left the pool; `nil` to
    /// adopt it. `alive`: the lease's tasks that still run; `poolIsNew`: the broker started the
    /// pool's pvmd anew (the old one died, or a standby broker took over), so no worker of the
    /// table can be in it.
    public func recoveryVerdict(alive: Set<Int32>, hostInPool: Bool, poolIsNew: Bool = false) -> (reason: RevocationReason, why: String)? {
        if state == .granted, tasks.isEmpty {
            return (.spawnFailed, "the broker restarted before the worker was started")
        }
        if poolIsNew, !tasks.isEmpty {
            return (.poolRestarted, "the broker started a new pool; worker task \(tasks) was in the old one")
        }
        if !tasks.isEmpty, !tasks.allSatisfy(alive.contains) {
            return (.taskDied, "worker task \(tasks) was gone when the broker restarted")
        }
        if let host, !hostInPool {
            return (.hostFailed, "host \(host) is not in the pool")
        }
        return nil
    }

    private func refusal(_ event: String) -> TransitionError {
        TransitionError(lease: id, event: event, state: state)
    }
}
