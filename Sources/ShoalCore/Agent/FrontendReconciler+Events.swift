/// The events: each says what happened and returns what to do about it.
extension FrontendReconciler {
    // MARK: The broker's view

    /// The broker answered a registration or a heartbeat with this front-end's live leases, and
    /// the members follow them:
    /// - a lease no longer listed ended without our drain (revoked: host failed, task died, TTL):
    ///   the back-end is gone, so its member goes at once, abandoning what is in flight there
    ///   (a lease we were draining just ends: its member is already out, nothing to release);
    /// - an active lease not yet routed to becomes a member (and, if we asked for it, one
    ///   readiness sample);
    /// - a draining lease we did not drain is the broker reclaiming it (preemption, maintenance):
    ///   out of rotation, wait for our in-flight requests there, then release.
    public mutating func brokerStatusArrived(_ status: BrokerStatus, now: Timestamp) -> [Action] {
        guard !stopped else { return [] }
        isRegistered = true
        brokerAnswered = true
        leaseTTL = status.leaseTTL
        var actions: [Action] = []
        let listed = Set(status.leases.map(\.id))
        for id in leases.keys.sorted() where !listed.contains(id) {
            if leases[id]?.routing.routesRequests == true {
                actions.append(.removeMember(lease: id, abandoningInFlight: true, reason: "its lease ended"))
            }
            leases[id] = nil
        }
        for lease in status.leases {
            actions += follow(lease, now: now)
        }
        return actions
    }

    /// The broker could not be reached. Nothing changes: requests keep going to the members
    /// there are, and whatever was not answered is sent again later.
    public mutating func brokerUnreachable() -> [Action] {
        brokerAnswered = false
        return []
    }

    /// The broker answered a heartbeat with 404: it lost its state and no longer knows this
    /// front-end. No lease is asked for until it has registered again (its answer then lists
    /// the leases the broker still knows; members of the others go).
    public mutating func brokerForgotUs() -> [Action] {
        isRegistered = false
        return []
    }

    // MARK: The control loop's tick

    /// The control loop measured the members' load. Failed releases that are due go out again;
    /// then, once the broker knows us, the ``ScalePolicy`` decides: ask for one more back-end,
    /// cancel our newest scale-down drain, or drain the last back-end added.
    public mutating func loadMeasured(_ load: MeasuredLoad, now: Timestamp) -> [Action] {
        guard !stopped else { return [] }
        var actions = leases.keys.sorted().flatMap { sendReleaseIfDue($0, now: now) }
        guard isRegistered else { return actions }
        let snapshot = ScalePolicy.Snapshot(
            localInFlight: load.localInFlight,
            serving: load.backends.map(\.inFlight),
            // Granted, not serving yet: capacity on its way, for as long as a start usually takes.
            pendingSince: leases.values.filter { $0.status.state == .granted }.map { $0.askedAt ?? $0.status.requestedAt },
            draining: leases.values.filter { $0.routing.isScaleDownDrain }.count,
            queued: leases.values.filter { $0.status.state == .requested }.count,
            leaving: leases.values.filter { $0.routing.isScaleDownRequested }.count)
        let decision: ScalePolicy.Decision
        if var reference {
            decision = reference.evaluate(snapshot, now: now)
            self.reference = reference
        } else {
            decision = policy.evaluate(snapshot, now: now)
        }
        switch decision {
        case .hold:
            break
        case .acquire(let reason):
            guard !acquireInFlight else { break }
            acquireInFlight = true
            actions.append(.acquire(reason: reason.description))
        case .cancelDrain(let reason):
            actions += cancelNewestScaleDown(reason: reason.description)
        case .release(let index, let reason):
            guard load.backends.indices.contains(index) else { break }
            actions += scaleDown(LeaseID(load.backends[index].name), reason: reason.description)
        }
        return actions
    }

    // MARK: Answers to an acquire

    /// The broker took our request: granted at once, or queued for a free slot. The time from
    /// now until it serves is one readiness sample. (Asked while stopping: given back at once.)
    public mutating func leaseAcquired(_ status: LeaseStatus, now: Timestamp) -> [Action] {
        acquireInFlight = false
        guard !stopped else { return [.release(lease: status.id, reason: "front-end \(configuration.frontend) stopped")] }
        if leases[status.id] == nil {
            leases[status.id] = TrackedLease(status: status, askedAt: now, routing: .waiting)
        }
        return follow(status, now: now)
    }

    /// The broker refused (409: the service is at its max or share). The policy asks again on a
    /// later tick if the load still says so.
    public mutating func leaseDenied() -> [Action] {
        acquireInFlight = false
        return []
    }

    /// The acquire did not reach the broker or failed there; a later tick asks again.
    public mutating func acquireFailed() -> [Action] {
        acquireInFlight = false
        return []
    }

    // MARK: Answers to a scale-down drain, and to its cancel

    /// The broker agreed to our scale-down drain: out of rotation, wait for our in-flight
    /// requests there, then release. It stays cancellable until the release is accepted.
    public mutating func drainAccepted(_ status: LeaseStatus) -> [Action] {
        guard case .scaleDownRequested(let reason)? = leases[status.id]?.routing else { return [] }
        leases[status.id]?.status = status
        return startDrain(status.id, orderedBy: .frontend, reason: reason)
    }

    /// The scale-down drain was refused or did not arrive: the back-end keeps serving, and the
    /// policy may choose it again after another hold period.
    public mutating func drainFailed(lease id: LeaseID) -> [Action] {
        guard case .scaleDownRequested? = leases[id]?.routing else { return [] }
        leases[id]?.routing = .inRotation
        return []
    }

    /// The broker cancelled our drain: the back-end serves again, under a new member (its old
    /// one, removed, still finishes what it had and its "drained" is then ignored).
    public mutating func drainCancelAccepted(_ status: LeaseStatus) -> [Action] {
        guard let drain = drain(of: status.id), drain.request == .cancel,
              let endpoint = status.endpoint ?? leases[status.id]?.status.endpoint else { return [] }
        leases[status.id]?.status = status
        leases[status.id]?.routing = .inRotation
        return [.addMember(lease: status.id, endpoint: endpoint)]
    }

    /// The cancel was refused or did not arrive: the drain goes on, and if our in-flight
    /// requests there finished meanwhile, the release goes out now.
    public mutating func drainCancelFailed(lease id: LeaseID) -> [Action] {
        guard var drain = drain(of: id), drain.request == .cancel else { return [] }
        drain.request = nil
        leases[id]?.routing = .draining(drain)
        return sendReleaseIfDue(id, now: nil)
    }

    // MARK: Members

    /// The member removed for drain number `drain` has nothing in flight any more: release the
    /// lease (unless a cancel is on its way; a drain cancelled meanwhile has a new number).
    public mutating func memberDrained(lease id: LeaseID, drain number: Int) -> [Action] {
        guard var drain = drain(of: id), drain.number == number else { return [] }
        drain.memberDrained = true
        leases[id]?.routing = .draining(drain)
        return sendReleaseIfDue(id, now: nil)
    }

    /// The endpoint could not be made a member (unresolvable, or the name is taken): the lease
    /// waits, and the next broker status tries again.
    public mutating func memberCouldNotBeAdded(lease id: LeaseID) -> [Action] {
        guard leases[id]?.routing == .inRotation else { return [] }
        leases[id]?.routing = .waiting
        return []
    }

    // MARK: Answers to a release

    /// The broker took the lease back (the worker finishes there): no longer cancellable, and
    /// forgotten once the broker stops listing it.
    public mutating func releaseAccepted(_ status: LeaseStatus) -> [Action] {
        guard drain(of: status.id)?.request == .release else { return [] }
        leases[status.id]?.status = status
        leases[status.id]?.routing = .released
        return []
    }

    /// 404: the broker no longer knows the lease, so there is nothing to give back.
    public mutating func releaseFoundNoLease(lease id: LeaseID) -> [Action] {
        guard drain(of: id)?.request == .release else { return [] }
        leases[id] = nil
        return []
    }

    /// The release did not arrive (the broker is unreachable or failed). The lease stays
    /// draining, nothing else changes, and the release is sent again by the first
    /// `loadMeasured` tick after `releaseRetryDelay` (a tick, not a timer: the actor owns no
    /// extra task for it). A cancel may still win meanwhile.
    public mutating func releaseFailed(lease id: LeaseID, now: Timestamp) -> [Action] {
        guard var drain = drain(of: id), drain.request == .release else { return [] }
        drain.request = nil
        drain.retryReleaseAt = now + configuration.releaseRetryDelay
        leases[id]?.routing = .draining(drain)
        return []
    }

    // MARK: Stopping

    /// The front-end is stopping and has finished its in-flight requests: every live lease goes
    /// back now (active ones drained first, as the broker expects), rather than waiting out its
    /// TTL. Best effort: answers are ignored, and a broker that cannot be reached reclaims them
    /// after the TTL anyway. Nothing is decided afterwards.
    public mutating func frontendStopping() -> [Action] {
        stopped = true
        var actions: [Action] = []
        for id in leases.keys.sorted() {
            guard let lease = leases[id], !lease.status.state.isFinal else { continue }
            if lease.routing.routesRequests {
                actions.append(.removeMember(lease: id, abandoningInFlight: false, reason: "front-end stopping"))
            }
            if lease.status.state == .active {
                actions.append(.drain(lease: id, reason: "front-end \(configuration.frontend) stopping"))
            }
            actions.append(.release(lease: id, reason: "front-end \(configuration.frontend) stopped"))
        }
        leases = [:]
        return actions
    }
}

// MARK: Steps shared by the events

extension FrontendReconciler {
    /// Takes the broker's word on one lease and routes accordingly.
    mutating func follow(_ status: LeaseStatus, now: Timestamp) -> [Action] {
        let id = status.id
        var lease = leases[id] ?? TrackedLease(status: status, routing: .waiting)
        lease.status = status
        leases[id] = lease
        switch (status.state, lease.routing) {
        case (.active, .waiting):
            guard let endpoint = status.endpoint else { return [] }
            leases[id]?.routing = .inRotation
            if let askedAt = lease.askedAt {
                recordReadiness(now - askedAt)
                leases[id]?.askedAt = nil
            }
            return [.addMember(lease: id, endpoint: endpoint)]
        case (.draining, .waiting), (.draining, .inRotation):
            return startDrain(id, orderedBy: .broker, reason: "\(status.drainReason?.rawValue ?? "drain") ordered by the broker")
        case (.draining, .scaleDownRequested(let reason)):
            // Our own drain, seen in the broker's list before its answer came.
            return startDrain(id, orderedBy: .frontend, reason: reason)
        default:
            return []
        }
    }

    /// Out of rotation now; released once the front-end has nothing in flight there (at once if
    /// it was never routed to).
    mutating func startDrain(_ id: LeaseID, orderedBy origin: DrainProgress.Origin, reason: String) -> [Action] {
        guard let routing = leases[id]?.routing else { return [] }
        lastDrainNumber += 1
        let drain = DrainProgress(orderedBy: origin, number: lastDrainNumber, memberDrained: !routing.routesRequests)
        leases[id]?.routing = .draining(drain)
        guard routing.routesRequests else { return sendReleaseIfDue(id, now: nil) }
        return [.removeMember(lease: id, abandoningInFlight: false, reason: reason), .waitForDrain(lease: id, drain: drain.number)]
    }

    /// Asks the broker to drain a back-end in rotation for a scale-down; it keeps serving until
    /// the broker agrees. A member that is not a lease of ours (a static back-end) is kept.
    mutating func scaleDown(_ id: LeaseID, reason: String) -> [Action] {
        guard leases[id]?.routing == .inRotation else { return [] }
        leases[id]?.routing = .scaleDownRequested(reason: reason)
        return [.drain(lease: id, reason: reason)]
    }

    /// Cancels the newest of our scale-down drains that has no request on its way.
    mutating func cancelNewestScaleDown(reason: String) -> [Action] {
        let cancellable = leases.compactMap { id, lease -> LeaseID? in
            guard case .draining(let drain) = lease.routing, drain.orderedBy == .frontend, drain.request == nil,
                  lease.status.endpoint != nil else { return nil }
            return id
        }
        guard let id = cancellable.max(), var drain = drain(of: id) else { return [] }
        drain.request = .cancel
        leases[id]?.routing = .draining(drain)
        return [.cancelDrain(lease: id, reason: reason)]
    }

    /// The release of a drained lease, if none is on its way and, after a failure, the retry
    /// delay has passed (`now` nil: only a first attempt).
    mutating func sendReleaseIfDue(_ id: LeaseID, now: Timestamp?) -> [Action] {
        guard var drain = drain(of: id), drain.memberDrained, drain.request == nil else { return [] }
        if let retryAt = drain.retryReleaseAt {
            guard let now, now >= retryAt else { return [] }
        }
        drain.request = .release
        drain.retryReleaseAt = nil
        leases[id]?.routing = .draining(drain)
        return [.release(lease: id, reason: "nothing in flight from \(configuration.frontend)")]
    }

    func drain(of id: LeaseID) -> DrainProgress? {
        guard case .draining(let drain)? = leases[id]?.routing else { return nil }
        return drain
    }
}

extension FrontendReconciler.Routing {
    /// A member routes requests to the lease's back-end.
    var routesRequests: Bool {
        switch self {
        case .inRotation, .scaleDownRequested: true
        case .waiting, .draining, .released: false
        }
    }

    /// Our scale-down drain was asked for and the broker has not answered yet.
    var isScaleDownRequested: Bool {
        guard case .scaleDownRequested = self else { return false }
        return true
    }

    /// Our scale-down drain, cancellable while its release is not accepted.
    var isScaleDownDrain: Bool {
        guard case .draining(let drain) = self else { return false }
        return drain.orderedBy == .frontend
    }
}
