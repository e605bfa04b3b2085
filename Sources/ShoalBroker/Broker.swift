import Foundation
import Logging
import ServiceLifecycle
import ShoalAPI
import ShoalCore
import ShoalManifest

/// The broker: owns the pool (hosts × slots), the lease table, the arbitration among services,
/// and the workers on the back-ends (through a ``BackendLauncher``).
///
/// A thin shell around the core: it reads the table into the core's types, lets the core decide
/// (the lease state machine, ``PoolSnapshot``'s fair share and plan, ``PoolHealth``'s rules) and
/// carries out what comes back — a store write (the transition and its event row in one
/// transaction, before anything is done about it), a spawn, a kill, a message. A restart finds
/// the truth in SQLite and the workers still running (``recover()``). Clock-driven work — TTL
/// expiry, drain deadlines, start-up timeouts, silent workers — happens in ``run()``'s tick.
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
        /// Silent workers, quarantine and rejoin (see ``PoolHealth``).
        public var health = PoolHealth.Configuration()
        /// The status page's chart: how often the live leases are sampled, and for how long.
        public var history = LeaseHistory.Configuration()
        /// How long the event log and finished leases are kept.
        public var retention = LeaseStore.Retention()

        public init(hosts: [PoolHost]) {
            self.hosts = hosts
        }
    }

    /// A registered service: its manifest (claim on the pool) and the front-ends serving it.
    struct ServiceState {
        var manifest: ServiceManifest
        var manifestPath: String
        var frontends: Set<String>
    }

    /// A worker task the broker started or adopted: the lease it serves and its host (a report
    /// or exit notice from it is a sign of life of the host, even once its lease is over).
    struct WorkerTask {
        var lease: LeaseID
        var host: String?
    }

    let configuration: Configuration
    let store: LeaseStore
    let launcher: any BackendLauncher
    let clock: @Sendable () -> Timestamp
    let logger: Logger
    /// Grant latency, PVM notifications, lease events, the API (``BrokerMetrics``).
    public nonisolated let metrics: BrokerMetrics? = BrokerMetrics()
    /// Spawns and host rejoins, which take long: run beside the broker, owned by ``run()``.
    public nonisolated let work = WorkQueue()

    /// The hosts' health and the rules about it.
    var health: PoolHealth
    var services: [String: ServiceState] = [:]
    /// Front-end name → service name.
    var frontends: [String: String] = [:]
    var workerTasks: [Int32: WorkerTask] = [:]
    /// Workers' last load reports, for the lease views.
    var loads: [LeaseID: (inFlight: Int, queued: Int)] = [:]
    /// Back-end-seconds and requests served per service (memory only, like the metrics).
    var efficiency = Efficiency()
    /// When the slots held were last added to ``efficiency``.
    var heldCountedAt: Timestamp?
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
        leaseHistory = LeaseHistory(configuration: configuration.history)
        health = PoolHealth(hosts: configuration.hosts, configuration: configuration.health)
    }

    /// Brings the broker's memory in line with the store and the virtual machine: adds missing
    /// hosts, reloads registered front-ends, adopts the workers of live leases, revokes those
    /// whose workers are gone, and stops workers no lease owns.
    /// `poolIsNew`: the pool's pvmd was started for this broker (none ran before it).
    public func recover(poolIsNew: Bool = false) async throws {
        let present = Set(try await launcher.hostNames())
        let failures = await launcher.add(hosts: health.order.filter { !present.contains($0) })
        for (host, reason) in failures.sorted(by: { $0.key < $1.key }) {
            logger.error("host could not join the pool; trying again", metadata: ["host": "\(host)", "reason": "\(reason)"])
            try await carryOut(health.couldNotJoin(host, failure: reason, now: clock()))
        }

        for host in try await store.cordonedHosts() {
            _ = health.cordon(host, true)
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
                workerTasks[task] = WorkerTask(lease: stored.id, host: stored.lease.host)
            }
            health.adopted(stored.id, at: now)
            let hostInPool = stored.lease.host.map { health.hosts[$0]?.down != true } ?? true
            if let verdict = stored.lease.recoveryVerdict(alive: alive, hostInPool: hostInPool, poolIsNew: poolIsNew) {
                try await apply(.revoke(verdict.reason), to: stored.id, reason: verdict.why)
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

    /// Runs until shutdown: follows the launcher's events (a lost pool included: the launcher
    /// starts a new one), ticks the clock and runs the handed-off work.
    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.followLauncher() }
            group.addTask { await self.tickUntilShutdown() }
            group.addTask { await self.sampleHistoryUntilCancelled() }
            group.addTask { await self.pruneUntilShutdown() }
            group.addTask { await self.work.run() }
            group.addTask {
                // Long polls answer at once from now on, so the API server can stop.
                try? await gracefulShutdown()
                await self.stopWaiting()
            }
        }
    }

    private func tickUntilShutdown() async {
        while !Task.isShuttingDownGracefully, (try? await Task.sleep(for: configuration.tickInterval)) != nil {
            do {
                try await tick()
            } catch {
                logger.error("tick failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Old events and finished leases go, every `retention.interval`.
    private func pruneUntilShutdown() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.prune()
                try? await Task.sleep(for: self.configuration.retention.interval)
            }
        }
    }

    /// Prunes a chunk at a time (see ``LeaseStore/pruneChunk(olderThan:maxEvents:)``) until
    /// nothing more is due.
    public func prune() async {
        let retention = configuration.retention
        do {
            var pruned = (events: 0, leases: 0)
            while !Task.isCancelled {
                let chunk = try await store.pruneChunk(olderThan: clock() + (.zero - retention.maxAge), maxEvents: retention.maxEvents)
                pruned = (pruned.events + chunk.events, pruned.leases + chunk.leases)
                guard chunk.events == LeaseStore.pruneChunk || chunk.leases == LeaseStore.pruneChunk else { break }
            }
            if pruned != (0, 0) {
                logger.info("pruned the history", metadata: ["events": "\(pruned.events)", "leases": "\(pruned.leases)"])
            }
            metrics?.pruned(events: pruned.events, leases: pruned.leases, databaseBytes: store.sizeInBytes())
        } catch {
            logger.error("could not prune the history", metadata: ["error": "\(error)"])
        }
    }

    private func followLauncher() async {
        for await event in launcher.events.cancelOnGracefulShutdown() {
            metrics?.notified(event)
            do {
                try await handle(event)
            } catch {
                logger.error("could not handle a pool event", metadata: ["event": "\(event)", "error": "\(error)"])
            }
        }
    }

    static func loadManifest(_ path: String) throws -> ServiceManifest {
        // The `tls` files are the front-end's alone.
        switch ManifestLoader(checkTLSFiles: false).load(paths: [path]) {
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
