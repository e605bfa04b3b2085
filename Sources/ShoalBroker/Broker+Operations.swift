import Logging
import ShoalAPI
import ShoalCore

/// The API's operations (see ``BrokerOperations``).
extension Broker {
    public func pool() async throws -> PoolView {
        let byHost = try await store.liveLeasesByHost()
        return PoolView(hosts: health.order.map { name in
            let state = health.hosts[name] ?? PoolHealth.Host(slots: 0)
            let leases = byHost[name] ?? []
            return PoolView.Host(name: name, slots: state.slots, used: leases.count, cordoned: state.cordoned,
                                 down: state.looksDown, leases: leases.map(\.id.rawValue))
        })
    }

    public func services() async throws -> [ServiceView] {
        let pool = snapshot(try await store.leases())
        let allocation = pool.allocation
        return services.keys.sorted().compactMap { name in
            guard let service = services[name] else { return nil }
            let usage = pool.usage(of: name)
            let manifest = service.manifest
            let cost = efficiency.services[name] ?? Efficiency.Service()
            return ServiceView(
                name: name, frontends: service.frontends.sorted(), minBackends: manifest.backends.min,
                maxBackends: manifest.backends.max, priority: manifest.priority, weight: manifest.weight,
                held: usage.held, waiting: usage.waiting, fairShare: allocation.share(of: name),
                backendSeconds: cost.backendSeconds, requestsServed: cost.requestsServed,
                backendSecondsPerThousandRequests: cost.backendSecondsPerThousandRequests)
        }
    }

    public func leases(includingFinal: Bool) async throws -> [LeaseView] {
        try await store.leases(includingFinal: includingFinal).map(view)
    }

    public func explain(lease id: String) async throws -> LeaseExplanation {
        let stored = try await existing(id)
        return LeaseExplanation(lease: view(stored), events: try await store.events(forLease: stored.id).map(\.view))
    }

    public func workerAsked(lease id: String) async throws -> LeaseView {
        let stored = try await existing(id)
        // Over HTTP, not PVM: a pvmd whose queue waits on a dead host delays the worker's load
        // reports, not this, so a healthy host is not taken for silent. A stranded worker's
        // question (its lease revoked) proves at least that its host's link is back.
        health.workerHeard(stored.lease.state.hasServingWorker ? stored.id : nil, on: stored.lease.host, at: clock())
        return view(stored)
    }

    public func acquire(_ request: AcquireRequest) async throws -> LeaseView {
        let service = try serviceOf(frontend: request.frontend)
        let now = clock()
        // Admission needs only this service's leases and this front-end's.
        let live = try await store.liveLeases(service: service.name, frontend: request.frontend)
        let asking = request.reason.map { "\(request.frontend): \($0)" } ?? "front-end \(request.frontend) asked for a back-end"
        if let reason = snapshot(live).refusal(ofAnotherFor: service.name) {
            try await store.record(.deny, service: service.name, now: now, reason: EventReason("\(asking); \(reason)"))
            notifyEvents()
            throw BrokerError(.conflict, reason)
        }
        if live.filter({ $0.lease.frontend == request.frontend }).count >= configuration.maxLeasesPerFrontend {
            throw BrokerError(.conflict, "front-end \(request.frontend) already has \(configuration.maxLeasesPerFrontend) leases, the most one may hold")
        }
        let created = try await store.create(service: service.name, frontend: request.frontend, now: now,
                                             ttl: configuration.leaseTTL, reason: EventReason(asking))
        metrics?.leaseEvent(BrokerEvent.Kind.request.rawValue)
        notifyEvents()
        let granted = try await arbitrate()
        var stored = created
        if let grant = granted[created.id] {
            stored = grant
        } else {
            stored = try await existing(created.id.rawValue)
        }
        if stored.lease.state == .requested {
            let pool = snapshot(try await store.leases())
            try await store.record(
                .queue, lease: stored.id, service: service.name, now: now,
                reason: try EventReason(pool.queuedReason(for: service.name), details: pool.allocation.explanation))
            notifyEvents()
        }
        return holderView(stored)
    }

    public func renew(lease id: String) async throws -> LeaseView {
        let stored = try await existing(id)
        guard !stored.lease.state.isFinal else {
            throw BrokerError(.conflict, "lease \(id) is \(stored.lease.state.rawValue): ask for a new one")
        }
        let renewed = try await store.renew(frontend: stored.lease.frontend, lease: stored.id, now: clock(), ttl: configuration.leaseTTL)
        return holderView(renewed.first ?? stored)
    }

    public func drain(lease id: String, _ request: LeaseChangeRequest) async throws -> LeaseView {
        let stored = try await existing(id)
        let deadline = clock() + drainTimeout(of: stored.lease.service)
        try await apply(.drainRequested(Drain(reason: .scaleDown, deadline: deadline)), to: stored.id,
                        reason: request.reason.map { "scale-down: \($0)" })
        return holderView(try await existing(id))
    }

    public func cancelDrain(lease id: String, _ request: LeaseChangeRequest) async throws -> LeaseView {
        let stored = try await existing(id)
        try await apply(.drainCancelled, to: stored.id, reason: request.reason.map { "drain cancelled: \($0)" })
        return holderView(try await existing(id))
    }

    public func release(lease id: String, _ request: LeaseChangeRequest) async throws -> LeaseView {
        let stored = try await existing(id)
        if !stored.lease.state.isFinal {  // Releasing twice is harmless.
            // A slot it frees is re-arbitrated by the `stopTasks` it brings.
            try await apply(.frontendReleased(drainTimeout: drainTimeout(of: stored.lease.service)), to: stored.id, reason: request.reason)
        }
        return view(try await existing(id))
    }

    public func register(_ registration: FrontendRegistration) async throws -> FrontendStatus {
        guard !registration.name.isEmpty, registration.name.count <= 128,
              registration.name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.@:".contains($0) }) else {
            throw BrokerError(.invalid, "front-end name must be 1-128 letters, digits or -_.@: (got \"\(registration.name)\")")
        }
        guard registration.manifestPath.hasPrefix("/") else {
            throw BrokerError(.invalid, "manifestPath must be absolute (workers on other hosts read the same path)")
        }
        let manifest = try Self.loadManifest(registration.manifestPath)
        try register(name: registration.name, manifest: manifest, path: registration.manifestPath)
        try await store.saveFrontend(name: registration.name, manifestPath: registration.manifestPath, now: clock())
        logger.info("front-end registered", metadata: ["frontend": "\(registration.name)", "service": "\(manifest.name)"])
        try await arbitrate()
        return try await status(of: registration.name)
    }

    public func heartbeat(frontend name: String, _ heartbeat: Heartbeat) async throws -> FrontendStatus {
        let service = try serviceOf(frontend: name)
        if let count = heartbeat.requestsServed {
            metrics?.served(efficiency.served(count, by: name, of: service.name), service: service.name)
        }
        try await store.renew(frontend: name, now: clock(), ttl: configuration.leaseTTL)
        return try await status(of: name)
    }

    public func drainHost(_ name: String) async throws -> HostDrainResult {
        guard health.hosts[name] != nil else {
            throw BrokerError(.notFound, "no host \(name) in the pool (hosts: \(health.order.joined(separator: ", ")))")
        }
        _ = health.cordon(name, true)
        let now = clock()
        try await store.setCordoned(name, true, now: now)
        try await store.record(.drain, host: name, now: now, reason: EventReason("host \(name) drained for maintenance: no new grants"))
        var draining: [String] = []
        for stored in try await store.liveLeasesByHost()[name] ?? [] {
            let deadline = now + drainTimeout(of: stored.lease.service)
            if stored.lease.state == .draining {
                draining.append(stored.id.rawValue)
                continue
            }
            try await apply(.drainRequested(Drain(reason: .maintenance, deadline: deadline)), to: stored.id,
                            reason: "maintenance: host \(name) is being drained")
            draining.append(stored.id.rawValue)
        }
        notifyEvents()
        return HostDrainResult(host: name, draining: draining)
    }

    public func undrainHost(_ name: String) async throws -> HostDrainResult {
        guard health.hosts[name] != nil else {
            throw BrokerError(.notFound, "no host \(name) in the pool (hosts: \(health.order.joined(separator: ", ")))")
        }
        let actions = health.cordon(name, false)
        try await store.setCordoned(name, false, now: clock())
        try await store.record(.resume, host: name, now: clock(), reason: EventReason("host \(name) back in the pool after maintenance"))
        notifyEvents()
        try await carryOut(actions)
        return HostDrainResult(host: name, draining: [])
    }

    // MARK: Helpers

    /// How long a lease of `service` may take to drain (its manifest's `drain_timeout`).
    func drainTimeout(of service: String) -> Duration {
        services[service]?.manifest.drainTimeout ?? .seconds(30)
    }

    func status(of frontend: String) async throws -> FrontendStatus {
        let service = try serviceOf(frontend: frontend)
        let mine = try await store.liveLeases(service: service.name, frontend: frontend).filter { $0.lease.frontend == frontend }
        return FrontendStatus(name: frontend, service: service.name,
                              leaseTTLMilliseconds: configuration.leaseTTL.wholeMilliseconds, leases: mine.map(holderView))
    }

    func serviceOf(frontend: String) throws -> ServiceManifest {
        guard let name = frontends[frontend], let service = services[name] else {
            throw BrokerError(.notFound, "front-end \(frontend) is not registered: register it (POST /v1/frontends) first")
        }
        return service.manifest
    }

    func existing(_ id: String) async throws -> StoredLease {
        guard let stored = try await store.lease(LeaseID(id)) else {
            throw BrokerError(.notFound, "no lease \(id): `shoal leases --all` lists them")
        }
        return stored
    }

    /// The lease as its holding front-end's own calls are answered: with its secret. Every
    /// other answer is ``view(_:)``.
    func holderView(_ stored: StoredLease) -> LeaseView {
        var view = view(stored)
        view.secret = stored.lease.holdsSlot ? stored.secret?.text : nil
        return view
    }

    /// The lease as anyone may see it: never its secret.
    func view(_ stored: StoredLease) -> LeaseView {
        let lease = stored.lease
        let load = loads[lease.id]
        return LeaseView(
            id: lease.id.rawValue, service: lease.service, frontend: lease.frontend, host: lease.host, state: lease.state,
            endpoint: lease.state.hasServingWorker ? lease.endpoint : nil,
            inFlight: lease.holdsSlot ? load?.inFlight : nil, queued: lease.holdsSlot ? load?.queued : nil,
            requestedAt: lease.requestedAt.milliseconds, expiresAt: lease.expiresAt.milliseconds,
            drainReason: lease.drain?.reason, drainDeadline: lease.drain?.deadline.milliseconds, revocation: lease.revocation)
    }
}

extension BrokerEvent {
    var view: EventView {
        EventView(id: id, time: time.milliseconds, kind: kind.rawValue, lease: lease?.rawValue, service: service, host: host,
                  fromState: fromState, toState: toState, reason: reason, details: details)
    }
}
