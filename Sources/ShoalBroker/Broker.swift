import Foundation
import Logging
import ServiceLifecycle
import ShoalAPI
import ShoalCore
import ShoalManifest

/// The broker: owns the pool (hosts × slots), the lease table, the arbitration among services,
/// and the workers on the back-ends (through a ``BackendLauncher``).
///
/// Every decision goes through the core (lease state machine, ``Arbitration``) and is committed
/// to the ``LeaseStore`` with its reason before anything is done about it, so a restart finds the
/// truth in SQLite and the workers still running (``recover()``). Clock-driven work — TTL expiry,
/// drain deadlines, start-up timeouts — happens in ``run()``'s tick.
public actor Broker: BrokerOperations, Service {
    public struct Configuration: Sendable {
        public var hosts: [PoolHost]
        /// How long a lease lives without its front-end's heartbeat.
        public var leaseTTL: Duration = .seconds(10)
        /// How long a granted lease may take to become ready before it is given up.
        public var readinessTimeout: Duration = .seconds(60)
        /// How often clock-driven work runs.
        public var tickInterval: Duration = .milliseconds(250)
        /// Leases one front-end may hold or wait for at once.
        public var maxLeasesPerFrontend = 64
        /// A serving worker reports its load every 500 ms; silent this long, it is taken for
        /// lost. PVM itself notices a pvmd killed outright only after minutes.
        public var workerSilenceLimit: Duration = .seconds(3)
        /// How long a host whose workers all fell silent gets no grants. If nothing was heard
        /// from its pvmd by then, it is taken for dead and started anew (deleted from the
        /// virtual machine and added again).
        public var quarantine: Duration = .seconds(30)
        /// A pool host lost from the virtual machine is added again after this, then after
        /// twice as long at each failure …
        public var rejoinFirstDelay: Duration = .seconds(5)
        /// … but never more than this apart.
        public var rejoinDelayLimit: Duration = .seconds(60)
        /// The status page's chart: how often the live leases are sampled, and for how long.
        public var history = LeaseHistory.Configuration()

        public init(hosts: [PoolHost]) {
            self.hosts = hosts
        }
    }

    struct HostState {
        var slots: Int
        /// Not in the virtual machine: PVM reported it gone, it could not join, or the broker
        /// deleted its silent pvmd. The broker adds it again by `rejoin`'s schedule.
        var down = false
        /// While down: when to try adding it again.
        var rejoin: RejoinSchedule?
        /// An attempt to add it is under way.
        var rejoining = false
        /// The last attempt's failure, logged once until it changes.
        var rejoinFailure: String?
        /// Its workers all fell silent: no grants until then.
        var quarantinedUntil: Timestamp?
        /// When its workers all fell silent (the quarantine's start).
        var silentSince: Timestamp?
        /// When a worker there or its pvmd (a task-exit notice) was last heard from.
        var heardAt: Timestamp?
        /// Whether new leases may go there.
        var isOpen: Bool { !down && !cordoned && quarantinedUntil == nil }
        /// Drained for maintenance: no new grants.
        var cordoned = false
    }

    /// A registered service: its manifest (claim on the pool) and the front-ends serving it.
    struct ServiceState {
        var manifest: ServiceManifest
        var manifestPath: String
        var frontends: Set<String>
    }

    let configuration: Configuration
    let store: LeaseStore
    let launcher: any BackendLauncher
    let clock: @Sendable () -> Timestamp
    let logger: Logger
    /// Grant latency, PVM notifications, lease events, the API (``BrokerMetrics``).
    public nonisolated let metrics: BrokerMetrics? = BrokerMetrics()

    var hosts: [String: HostState]
    /// Host names in the cluster file's order.
    let hostOrder: [String]
    var services: [String: ServiceState] = [:]
    /// Front-end name → service name.
    var frontends: [String: String] = [:]
    /// Worker task → its lease.
    var taskOwners: [Int32: LeaseID] = [:]
    /// Worker task → its host: a report or exit notice from it is a sign of life of the host.
    var taskHosts: [Int32: String] = [:]
    /// Workers' last load reports, and when each serving worker was last heard from.
    var loads: [LeaseID: (inFlight: Int, queued: Int)] = [:]
    var lastHeard: [LeaseID: Timestamp] = [:]
    /// Leases whose worker was ordered to drain: its exit then means the drain finished (the
    /// exit notice and the `drained` message travel separately and may arrive in either order).
    var drainOrdered: Set<LeaseID> = []
    /// Long polls of the event log waiting for something new.
    var eventWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
    var nextWaiterID = 0
    /// Counts ``notifyEvents()`` calls, so a long poll can tell that something was recorded while
    /// it was reading the log (and must not wait for a wake-up that already happened).
    var eventGeneration = 0
    /// Shutting down: long polls answer with what there is.
    var stoppedWaiting = false
    /// Leases per service over the last minutes, for the status page (memory only).
    let leaseHistory: LeaseHistory

    public init(
        configuration: Configuration, store: LeaseStore, launcher: any BackendLauncher,
        clock: @escaping @Sendable () -> Timestamp = Timestamp.now, logger: Logger
    ) {
        self.configuration = configuration
        self.store = store
        self.launcher = launcher
        self.clock = clock
        self.logger = logger
        hostOrder = configuration.hosts.map(\.name)
        leaseHistory = LeaseHistory(configuration: configuration.history)
        hosts = Dictionary(uniqueKeysWithValues: configuration.hosts.map { ($0.name, HostState(slots: $0.slots)) })
    }

    /// Brings the broker's memory in line with the store and the virtual machine: adds missing
    /// hosts, reloads registered front-ends, adopts the workers of live leases, revokes those
    /// whose workers are gone, and stops workers no lease owns.
    public func recover() async throws {
        let present = Set(try await launcher.hostNames())
        let failures = await launcher.add(hosts: hostOrder.filter { !present.contains($0) })
        for (host, reason) in failures.sorted(by: { $0.key < $1.key }) {
            lost(host, nextAttempt: clock() + configuration.rejoinFirstDelay)
            hosts[host]?.rejoinFailure = reason
            logger.error("host could not join the pool; trying again", metadata: ["host": "\(host)", "reason": "\(reason)"])
            try await store.record(.revoke, host: host, now: clock(), reason: EventReason("host \(host) could not join the pool: \(reason)"))
        }

        for host in try await store.cordonedHosts() where hosts[host] != nil {
            hosts[host]?.cordoned = true
        }
        for record in try await store.frontends() {
            do {
                try register(name: record.name, manifest: try Self.loadManifest(record.manifestPath), path: record.manifestPath)
            } catch {
                logger.warning("a registered front-end's manifest no longer loads", metadata: [
                    "frontend": "\(record.name)", "error": "\(error)",
                ])
            }
        }

        // Front-ends could not renew while no broker ran: every live lease gets a fresh TTL.
        for frontend in Set(try await store.leases().map(\.lease.frontend)) {
            try await store.renew(frontend: frontend, now: clock(), ttl: configuration.leaseTTL)
        }
        let live = try await store.leases()
        let tasks = live.flatMap(\.lease.tasks)
        let alive = try await launcher.adopt(tasks: tasks)
        let now = clock()
        for stored in live {
            for task in stored.lease.tasks {
                taskOwners[task] = stored.id
                taskHosts[task] = stored.lease.host
            }
            lastHeard[stored.id] = now
            let lease = stored.lease
            if lease.state == .granted, lease.tasks.isEmpty {
                // The previous broker died between the grant and recording the spawn.
                try await apply(.revoke(.spawnFailed), to: lease.id, reason: "the broker restarted before the worker was started")
            } else if !lease.tasks.isEmpty, !lease.tasks.allSatisfy(alive.contains) {
                try await apply(.revoke(.taskDied), to: lease.id, reason: "worker task \(lease.tasks) was gone when the broker restarted")
            } else if let host = lease.host, hosts[host]?.down == true {
                try await apply(.revoke(.hostFailed), to: lease.id, reason: "host \(host) is not in the pool")
            }
        }
        let owned = Set(try await store.leases().flatMap(\.lease.tasks))
        let strays = try await launcher.stopStrays(owned: owned)
        if !strays.isEmpty {
            logger.warning("stopped workers no lease owns", metadata: ["tasks": "\(strays)"])
        }
        logger.info("broker recovered", metadata: [
            "live_leases": "\(live.count)", "adopted_tasks": "\(alive.count)", "frontends": "\(frontends.count)",
        ])
        try await arbitrate()
    }

    /// Runs until shutdown: follows the launcher's events and ticks the clock. Throws when the
    /// pvmd is gone: a broker without its pool must not go on granting (a supervisor restarts it,
    /// and the restart finds what is left).
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await self.followLauncher() }
                group.addTask { await self.tickUntilCancelled() }
                group.addTask { await self.sampleHistoryUntilCancelled() }
            }
        } onGracefulShutdown: {
            Task { await self.stopWaiting() }
        }
    }

    private func tickUntilCancelled() async {
        while !Task.isShuttingDownGracefully, (try? await Task.sleep(for: configuration.tickInterval)) != nil {
            do {
                try await tick()
            } catch {
                logger.error("tick failed", metadata: ["error": "\(error)"])
            }
        }
    }

    private func followLauncher() async throws {
        for await event in launcher.events.cancelOnGracefulShutdown() {
            metrics?.notified(event)
            if case .disconnected(let reason) = event {
                logger.critical("lost the pvmd: the pool is gone; stopping", metadata: ["reason": "\(reason)"])
                throw BrokerError(.conflict, "lost the pvmd: \(reason)")
            }
            do {
                try await handle(event)
            } catch {
                logger.error("could not handle a pool event", metadata: ["event": "\(event)", "error": "\(error)"])
            }
        }
    }

    static func loadManifest(_ path: String) throws -> ServiceManifest {
        switch ManifestLoader().load(paths: [path]) {
        case .success(let loaded) where loaded.count == 1:
            return loaded[0].manifest
        case .success(let loaded):
            throw BrokerError(.invalid, "\(path): expected one manifest, found \(loaded.count)")
        case .failure(let problems):
            throw BrokerError(.invalid, problems.diagnostics.map(\.description).joined(separator: "; "))
        }
    }

    /// Adds a front-end to its service's record (in memory).
    func register(name: String, manifest: ServiceManifest, path: String) throws {
        if let existing = services[manifest.name], existing.manifestPath != path {
            throw BrokerError(.conflict, "service \(manifest.name) is already registered from \(existing.manifestPath), not \(path)")
        }
        if let previous = frontends[name], previous != manifest.name {
            services[previous]?.frontends.remove(name)
        }
        frontends[name] = manifest.name
        services[manifest.name, default: ServiceState(manifest: manifest, manifestPath: path, frontends: [])].frontends.insert(name)
        services[manifest.name]?.manifest = manifest
    }
}
