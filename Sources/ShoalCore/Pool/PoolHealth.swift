/// What the broker knows of its pool hosts' health, and the rules it acts on:
///
/// - **Silence.** A serving worker (its lease active or draining) reports its load every half
///   second, until it has drained. Silent for `workerSilenceLimit`, it is taken for lost and its
///   lease revoked (`task-died`). When *every* serving worker of a host is silent, the host is
///   taken for failed instead (its pvmd or its link is gone): its leases are revoked
///   (`host-failed`) and it is **quarantined** — no grants there for `quarantine`.
/// - **Quarantine's end.** If anything was heard from the host meanwhile (a stranded worker asking
///   about its lease, or its exit), its link had been cut and it simply takes leases again. If not,
///   its pvmd is taken for dead: it is **restarted** (deleted from the virtual machine and added
///   again) — PVM itself would notice only after minutes.
/// - **Rejoin.** A host not in the virtual machine (PVM reported it gone, it could not join, or
///   it was restarted) is added again by its ``RejoinSchedule``, one attempt at a time.
/// - **Cordon.** A host drained for maintenance takes no new leases until it is undrained.
/// - **The pool itself.** PVM has one master: when the pool's pvmd dies, every host's pvmd and
///   worker goes with it. Every lease holding a slot is revoked (`pool-restarted`) and no host takes
///   leases until the broker has a new pvmd; then the hosts it lacks are added again, at once.
///
/// Pure: each event is a `mutating func` taking the time and returning the ``Action``s the
/// broker carries out; nothing here reads a clock or talks to PVM.
public struct PoolHealth: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// A serving worker silent this long is taken for lost.
        public var workerSilenceLimit: Duration = .seconds(3)
        /// How long a host whose workers all fell silent gets no grants.
        public var quarantine: Duration = .seconds(30)
        /// A lost host is added again this long after the loss, then after twice as long at each
        /// failure …
        public var rejoinFirstDelay: Duration = .seconds(5)
        /// … but never more than this apart.
        public var rejoinDelayLimit: Duration = .seconds(60)

        public init() {}
    }

    /// One host, as the rules see it.
    public struct Host: Sendable, Hashable {
        public var slots: Int
        /// Not in the virtual machine; added again by `rejoin`.
        public var down = false
        /// While down: when to try adding it again.
        public var rejoin: RejoinSchedule?
        /// An attempt to add it (or the delete before a restart) is under way.
        public var busy = false
        /// The last attempt's failure, reported once until it changes.
        public var rejoinFailure: String?
        /// Its workers all fell silent: no grants until then.
        public var quarantinedUntil: Timestamp?
        /// When its workers all fell silent (the quarantine's start).
        public var silentSince: Timestamp?
        /// When anything there (a worker, or its pvmd's exit notices) was last heard from.
        public var heardAt: Timestamp?
        /// Drained for maintenance: no new grants.
        public var cordoned = false

        public init(slots: Int) { self.slots = slots }

        /// Whether new leases may go there.
        public var isOpen: Bool { !down && !cordoned && quarantinedUntil == nil }
        /// Whether `shoal pool` shows it down: out of the virtual machine or quarantined.
        public var looksDown: Bool { down || quarantinedUntil != nil }
    }

    /// A lease whose worker should be reporting: active or draining, on `host`.
    public struct ServingLease: Sendable, Hashable {
        public var id: LeaseID
        public var host: String

        public init(id: LeaseID, host: String) {
            self.id = id
            self.host = host
        }
    }

    public enum Action: Sendable, Hashable {
        /// Revoke a lease, with this sentence as its reason.
        case revoke(LeaseID, RevocationReason, reason: String)
        /// Record a host's event (no lease changes by it), with this sentence as its reason.
        case record(HostEvent, host: String, reason: String)
        /// Delete the host from the virtual machine (its pvmd is taken for dead); then report
        /// ``PoolHealth/removed(_:)``.
        case remove(host: String)
        /// Try to add the host to the virtual machine; then report ``PoolHealth/rejoinFinished(_:failure:now:)``.
        case rejoin(host: String, attempt: Int)
        /// Capacity came back: waiting leases may be granted.
        case arbitrate
        /// Tell the operator (a log line, not an event: it repeats until the host is back).
        case warn(host: String, message: String)
    }

    public enum HostEvent: String, Sendable, Hashable {
        /// The host was taken out: lost, silent, or restarted.
        case lost
        /// The host is back in the virtual machine.
        case up
    }

    public let configuration: Configuration
    /// Host names in the cluster file's order.
    public let order: [String]
    public private(set) var hosts: [String: Host]
    /// The pool's pvmd is gone and no new one is attached yet.
    public private(set) var poolDown = false
    /// When each serving worker was last heard from.
    private var lastHeard: [LeaseID: Timestamp] = [:]

    public init(hosts: [PoolHost], configuration: Configuration = Configuration()) {
        self.configuration = configuration
        order = hosts.map(\.name)
        self.hosts = Dictionary(uniqueKeysWithValues: hosts.map { ($0.name, Host(slots: $0.slots)) })
    }

    /// Hosts that take new leases, in the cluster file's order.
    public var openHosts: [String] { order.filter { hosts[$0]?.isOpen ?? false } }
}

// MARK: Events

extension PoolHealth {
    /// A worker of `lease` on `host` reported (ready, load, drained): it and its host are alive.
    public mutating func workerHeard(_ lease: LeaseID?, on host: String?, at now: Timestamp) {
        if let lease { lastHeard[lease] = now }
        if let host { hosts[host]?.heardAt = now }
    }

    /// The lease's worker is gone or no longer expected to report.
    public mutating func forget(_ lease: LeaseID) {
        lastHeard[lease] = nil
    }

    /// A lease found live at the broker's start: its silence counts from now.
    public mutating func adopted(_ lease: LeaseID, at now: Timestamp) {
        lastHeard[lease] = now
    }

    /// The host is drained for maintenance (or back from it).
    public mutating func cordon(_ host: String, _ cordoned: Bool) -> [Action] {
        guard hosts[host] != nil else { return [] }
        hosts[host]?.cordoned = cordoned
        return cordoned ? [] : [.arbitrate]
    }

    /// The host could not join the virtual machine at the broker's start.
    public mutating func couldNotJoin(_ host: String, failure: String, now: Timestamp) -> [Action] {
        markDown(host, nextAttempt: now + configuration.rejoinFirstDelay)
        hosts[host]?.rejoinFailure = failure
        return [.record(.lost, host: host, reason: "host \(host) could not join the pool: \(failure)")]
    }

    /// PVM reports the host deleted (`pvm_notify`), with its live leases: they are revoked.
    public mutating func hostDeleted(_ host: String, leases: [LeaseID], now: Timestamp) -> [Action] {
        guard let state = hosts[host] else { return [] }
        var actions: [Action] = []
        if state.down {
            // The broker deleted it itself (a pvmd taken for dead) and PVM has let go: add it
            // again at once, its attempts so far still counted.
            hosts[host]?.rejoin?.attemptNow(at: now)
        } else {
            markDown(host, nextAttempt: now + configuration.rejoinFirstDelay)
            actions.append(.record(.lost, host: host, reason:
                "host \(host) left the virtual machine (pvm_notify); adding it again in \(configuration.rejoinFirstDelay)"))
        }
        for lease in leases {
            actions.append(.revoke(lease, .hostFailed, reason: "host \(host) failed (pvm_notify host delete)"))
        }
        return actions
    }

    /// The pool's pvmd is gone (`reason`): `leases`, those holding a slot, lost their workers.
    public mutating func poolLost(reason: String, leases: [LeaseID], now: Timestamp) -> [Action] {
        guard !poolDown else { return [] }
        poolDown = true
        lastHeard = [:]
        for name in order {
            markDown(name, nextAttempt: now)
            hosts[name]?.busy = true  // Nothing to add it to until a new pvmd runs.
        }
        return order.map { .record(.lost, host: $0, reason: "the pool's pvmd died (\(reason)): host \($0) left with it") }
            + leases.map { .revoke($0, .poolRestarted, reason: "the pool's pvmd died (\(reason)); its worker went with it") }
    }

    /// A new pvmd runs, whose virtual machine has the hosts `present` (its own host at least): they
    /// take leases again now, the others are added again at once.
    public mutating func poolRestarted(present: Set<String>, now: Timestamp) -> [Action] {
        poolDown = false
        var actions: [Action] = []
        for name in order {
            hosts[name]?.busy = false
            guard present.contains(name) else { continue }
            hosts[name]?.down = false
            hosts[name]?.rejoin = nil
            hosts[name]?.heardAt = nil
            actions.append(.record(.up, host: name, reason: "host \(name) is in the new pool: it takes leases again"))
        }
        return actions + [.arbitrate]
    }

    /// Time passed. `serving` are the leases whose workers should be reporting.
    public mutating func tick(now: Timestamp, serving: [ServingLease]) -> [Action] {
        guard !poolDown else { return [] }
        var actions = silence(now: now, serving: serving)
        actions += endQuarantines(now: now)
        for name in order {
            guard let state = hosts[name], state.down, !state.busy, state.rejoin?.isDue(at: now) ?? false else { continue }
            hosts[name]?.busy = true
            actions.append(.rejoin(host: name, attempt: (state.rejoin?.failures ?? 0) + 1))
        }
        return actions
    }

    /// The delete of a host taken for dead finished (or failed: it is most likely gone already,
    /// and adding it again says more).
    public mutating func removed(_ host: String) {
        hosts[host]?.busy = false
    }

    /// An attempt to add the host again ended: `failure` says why it did not join. A failure is
    /// recorded once until its reason changes.
    public mutating func rejoinFinished(_ host: String, failure: String?, now: Timestamp) -> [Action] {
        guard let state = hosts[host] else { return [] }
        let attempt = (state.rejoin?.failures ?? 0) + 1
        hosts[host]?.busy = false
        guard state.down else { return [] }
        if let failure {
            hosts[host]?.rejoin?.failed(at: now)
            guard failure != state.rejoinFailure else { return [] }
            hosts[host]?.rejoinFailure = failure
            let wait = hosts[host]?.rejoin.map { $0.delay(afterFailures: $0.failures) } ?? configuration.rejoinFirstDelay
            return [.warn(host: host, message:
                "host \(host) could not rejoin the pool (attempt \(attempt)): \(failure); trying again in \(wait), said once until the reason changes")]
        }
        hosts[host]?.down = false
        hosts[host]?.rejoin = nil
        hosts[host]?.rejoinFailure = nil
        hosts[host]?.heardAt = nil
        return [
            .record(.up, host: host, reason: "host \(host) is back in the virtual machine (pvm_addhosts, attempt \(attempt)): it takes leases again"),
            .arbitrate,
        ]
    }

    // MARK: Rules

    /// Workers that stopped reporting: alone they are lost; all of a host's at once, the host is.
    private mutating func silence(now: Timestamp, serving: [ServingLease]) -> [Action] {
        let limit = configuration.workerSilenceLimit
        var silentByHost: [String: [LeaseID]] = [:]
        var servingByHost: [String: Int] = [:]
        for lease in serving {
            servingByHost[lease.host, default: 0] += 1
            let heard = lastHeard[lease.id] ?? now
            lastHeard[lease.id] = heard
            if now - heard > limit { silentByHost[lease.host, default: []].append(lease.id) }
        }
        var actions: [Action] = []
        for (host, silent) in silentByHost.sorted(by: { $0.key < $1.key }) {
            guard silent.count == servingByHost[host] else {
                actions += silent.map { .revoke($0, .taskDied, reason: "worker silent for \(limit): no load report") }
                continue
            }
            hosts[host]?.quarantinedUntil = now + configuration.quarantine
            hosts[host]?.silentSince = now
            actions.append(.record(.lost, host: host, reason:
                "host \(host) taken for failed: none of its \(silent.count) workers reported for \(limit); no grants there for \(configuration.quarantine)"))
            actions += silent.map { .revoke($0, .hostFailed, reason: "host \(host) silent for \(limit): every worker there stopped reporting") }
        }
        return actions
    }

    /// Quarantines that ended: a host heard from meanwhile is back; one not heard from is restarted.
    private mutating func endQuarantines(now: Timestamp) -> [Action] {
        var actions: [Action] = []
        for name in order {
            guard let state = hosts[name], let until = state.quarantinedUntil, now >= until else { continue }
            hosts[name]?.quarantinedUntil = nil
            hosts[name]?.silentSince = nil
            let since = state.silentSince ?? now
            if let heard = state.heardAt, heard >= since {
                // Its link was cut, not its pvmd killed: what was held up got through.
                actions.append(.arbitrate)
                continue
            }
            markDown(name, nextAttempt: now)
            hosts[name]?.busy = true  // Until the delete is done.
            actions.append(.record(.lost, host: name, reason:
                "host \(name) taken for dead: nothing heard from it for \(now - since); deleting it from the virtual machine to start its pvmd anew"))
            actions.append(.remove(host: name))
        }
        return actions
    }

    private mutating func markDown(_ host: String, nextAttempt: Timestamp) {
        guard hosts[host] != nil else { return }
        hosts[host]?.down = true
        hosts[host]?.quarantinedUntil = nil
        hosts[host]?.silentSince = nil
        hosts[host]?.rejoin = RejoinSchedule(
            firstAttempt: nextAttempt, firstDelay: configuration.rejoinFirstDelay, delayLimit: configuration.rejoinDelayLimit)
    }
}
