import Foundation
import Logging
import NIOHTTP1
import ShoalAPI
import ShoalBroker
import ShoalClient
import ShoalCore
import ShoalTesting

#if canImport(Glibc)
import Glibc
#endif

/// The scale curve: what a decision costs as the pool and the services grow.
///
/// - Pool start, per host count: a real `shoal broker` process over that many namespace hosts,
///   each with its own pvmd (``LocalCluster``), timed until `GET /v1/pool` shows every host up.
/// - Decisions, per host count × service count: an in-process ``Broker`` (real SQLite store, real
///   HTTP server and client) whose launcher starts no worker — the machine cannot hold a worker
///   per slot at 64 hosts — with every service its own registered front-end and the pool full but
///   for one slot; then acquire + release + heartbeat cycles, round robin over the services.
///   Arbitration is also timed on its own: ``PoolSnapshot/assign(now:)`` on a snapshot of the
///   same size, which is what the broker calls per decision.
struct ScaleBenchmark {
    var hostCounts: [Int]
    var serviceCounts: [Int]
    var slotsPerHost: Int
    var cycles: Int
    /// Whether to start real namespace pools (needs root and `ip netns`).
    var namespaces: Bool
    var deadline: Deadline
    var logger: Logger

    struct PoolStart: Codable, Sendable {
        var hosts: Int
        /// Making the namespaces and the master pvmd (`scripts/testhosts up`).
        var namespacesSeconds: Double
        /// From starting `shoal broker` until `GET /v1/pool` shows every host up.
        var poolSeconds: Double
        /// The broker process once the pool is up.
        var brokerCPUSeconds: Double
        var brokerRSSMiB: Double
        /// Every pvmd of the pool (the master's and one per host).
        var pvmdCount: Int
        var pvmdRSSMiB: Double
    }

    struct Size: Codable, Sendable {
        var hosts: Int
        var services: Int
        var slots: Int
        /// Live leases while the cycles ran (the pool full but one slot).
        var leasesHeld: Int
        /// POST /v1/leases, granted at once.
        var grant: LatencySummary
        var release: LatencySummary
        var heartbeat: LatencySummary
        /// The pure core's arbitration per decision (`PoolSnapshot.assign`), in microseconds.
        var arbitrationMicroseconds: LatencySummary
        /// Process CPU (broker and its HTTP client, one process) per cycle of acquire + release + heartbeat.
        var cpuMillisecondsPerCycle: Double
        /// The process's RSS after the size ran (the in-process broker and everything before it).
        var rssMiB: Double
        /// `GET /v1/leases` with every slot leased.
        var listLeases: LatencySummary
        /// One refresh of the status page: `GET /`, then the four reads its script makes.
        var statusPage: LatencySummary
    }

    struct Result: Codable, Sendable {
        var slotsPerHost: Int
        var cycles: Int
        var poolStarts: [PoolStart]
        /// Why pool starts were not measured, if they were not.
        var poolStartSkipped: String?
        var sizes: [Size]

        var smallest: Size? { sizes.min { ($0.hosts, $0.services) < ($1.hosts, $1.services) } }
        var largest: Size? { sizes.max { ($0.hosts, $0.services) < ($1.hosts, $1.services) } }

        /// Largest size's figure over the smallest's.
        func ratio(_ figure: (Size) -> Double) -> Double {
            guard let smallest, let largest, figure(smallest) > 0 else { return 0 }
            return figure(largest) / figure(smallest)
        }
    }

    func run() async throws -> Result {
        var starts: [PoolStart] = []
        var sizes: [Size] = []
        let skipped: String? = namespaces ? nil
            : "namespace hosts need root, `ip netns` and /usr/bin/pvmd (LocalCluster.namespacesWork())"
        for hosts in hostCounts {
            if namespaces {
                try deadline.check("starting a pool of \(hosts) namespace hosts")
                log("pool start: \(hosts) namespace hosts, a real broker")
                starts.append(try await poolStart(hosts: hosts))
            }
            for services in serviceCounts {
                try deadline.check("measuring \(hosts) hosts × \(services) services")
                log("decisions: \(hosts) hosts × \(slotsPerHost) slots, \(services) services, \(cycles) cycles")
                sizes.append(try await decisions(hosts: hosts, services: services))
            }
        }
        return Result(slotsPerHost: slotsPerHost, cycles: cycles, poolStarts: starts, poolStartSkipped: skipped, sizes: sizes)
    }

    private func log(_ line: String) {
        FileHandle.standardError.write(Data("shoal-bench-broker: scale: \(line)\n".utf8))
    }

    // MARK: Pool start

    private func poolStart(hosts count: Int) async throws -> PoolStart {
        let names = (1...count).map { "c\($0)" }
        let begun = ContinuousClock.now
        let cluster = try await LocalCluster.start(.namespaces(names), name: "scale", timeout: 180)
        func stop() async {
            await Task { await cluster.stop() }.value
            let leftovers = await cluster.leftovers()
            if !leftovers.isEmpty { logger.warning("left running", metadata: ["what": "\(leftovers)"]) }
        }
        do {
            let up = try await eventually(within: .seconds(120), deadline: deadline, every: .milliseconds(20)) {
                let pool = try await cluster.client.pool()
                return pool.hosts.count == count && pool.hosts.allSatisfy { !$0.down }
            }
            let ready = ContinuousClock.now
            guard up else { throw BenchError("\(count) hosts were not all up in the pool within 120 s") }
            let broker = ProcessFigures(pid: cluster.broker.pid)
            var pvmds: [ProcessFigures] = []
            for name in cluster.hosts?.names ?? [] {
                if let pid = try await cluster.hosts?.pvmdPID(of: name) { pvmds.append(ProcessFigures(pid: pid)) }
            }
            let result = PoolStart(
                hosts: count, namespacesSeconds: milliseconds(cluster.brokerStarted - begun) / 1000,
                poolSeconds: milliseconds(ready - cluster.brokerStarted) / 1000,
                brokerCPUSeconds: broker.cpuSeconds, brokerRSSMiB: broker.rssMiB,
                pvmdCount: pvmds.count, pvmdRSSMiB: pvmds.reduce(0) { $0 + $1.rssMiB })
            await stop()
            return result
        } catch {
            await stop()
            throw error
        }
    }

    // MARK: Decisions

    private func decisions(hosts hostCount: Int, services serviceCount: Int) async throws -> Size {
        let directory = try TemporaryDirectory(prefix: "shoal-bench-scale")
        defer { directory.remove() }
        let hostNames = (1...hostCount).map { "h\($0)" }
        let capacity = hostCount * slotsPerHost
        let services = (1...serviceCount).map { "svc\($0)" }
        var manifests: [String] = []
        for service in services {
            let path = directory.path + "/\(service).yaml"
            try """
                name: \(service)
                frontend: fe-\(service)
                command: shoal-webserver
                args: ["--port", "{port}"]
                port: 8080
                backends: {min: 0, max: \(capacity)}

                """.write(toFile: path, atomically: true, encoding: .utf8)
            manifests.append(path)
        }

        var configuration = Broker.Configuration(hosts: hostNames.map { PoolHost(name: $0, slots: slotsPerHost) })
        // Nothing ever starts: the leases must neither time out waiting for a worker nor expire
        // between two heartbeats of a front-end while others are measured.
        configuration.readinessTimeout = .seconds(3600)
        configuration.leaseTTL = .seconds(3600)
        configuration.maxLeasesPerFrontend = capacity
        let store = try LeaseStore(directory: directory.path, logger: logger)
        defer { try? store.close() }
        let broker = Broker(configuration: configuration, store: store, launcher: NoopLauncher(hostNames: hostNames), logger: logger)
        try await broker.recover()
        let token = try BrokerToken.loadOrCreate(stateDirectory: directory.path)
        let (ports, announce) = AsyncStream<Int>.makeStream()
        var serverLogger = logger
        serverLogger.logLevel = .critical
        let server = try BrokerHTTPServer(operations: broker, token: token, host: "127.0.0.1", port: 0, logger: serverLogger) { port in
            announce.yield(port)
        }
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await broker.run() }
            group.addTask {
                defer { announce.finish() }
                try await server.run()
            }
            defer { group.cancelAll() }
            var listening = ports.makeAsyncIterator()
            guard let port = await listening.next() else { throw BenchError("the broker's HTTP server did not start") }
            let client = try BrokerClient(baseURL: "http://127.0.0.1:\(port)", token: token, timeout: .seconds(30))
            let page = HTTPClientConnection(host: "127.0.0.1", port: port)
            do {
                let size = try await measure(client: client, page: page, hosts: hostNames, services: services, manifests: manifests)
                await client.close()
                await page.close()
                return size
            } catch {
                await client.close()
                await page.close()
                throw error
            }
        }
    }

    private func measure(
        client: BrokerClient, page: HTTPClientConnection, hosts: [String], services: [String], manifests: [String]
    ) async throws -> Size {
        let capacity = hosts.count * slotsPerHost
        let frontends = services.map { "fe-\($0)" }
        for (frontend, manifest) in zip(frontends, manifests) {
            _ = try await client.register(FrontendRegistration(name: frontend, manifestPath: manifest))
        }
        // The pool full but one slot, round robin over the services.
        var held: [LeaseView] = []
        for index in 0..<(capacity - 1) {
            held.append(try await grant(client, frontends[index % frontends.count]))
        }

        // Warm-up: connections, SQLite's page cache, the code paths.
        for index in 0..<min(50, cycles) {
            let frontend = frontends[index % frontends.count]
            _ = try await client.release(lease: try await grant(client, frontend).id)
        }

        var acquire: [Double] = [], release: [Double] = [], heartbeat: [Double] = []
        let cpuBefore = ProcessFigures.ownCPUSeconds()
        for index in 0..<cycles {
            let frontend = frontends[index % frontends.count]
            let start = ContinuousClock.now
            let lease = try await grant(client, frontend)
            let granted = ContinuousClock.now
            _ = try await client.release(lease: lease.id)
            let released = ContinuousClock.now
            _ = try await client.heartbeat(frontend: frontend, Heartbeat())
            acquire.append(milliseconds(granted - start))
            release.append(milliseconds(released - granted))
            heartbeat.append(milliseconds(ContinuousClock.now - released))
        }
        let cpuPerCycle = (ProcessFigures.ownCPUSeconds() - cpuBefore) * 1000 / Double(cycles)

        // Every slot leased for the reads.
        held.append(try await grant(client, frontends[(capacity - 1) % frontends.count]))
        let reads = max(20, cycles / 10)
        let list = try await timed(reads) {
            let leases = try await client.leases()
            guard leases.count == capacity else { throw BenchError("GET /v1/leases listed \(leases.count) leases, not \(capacity)") }
        }
        let status = try await timed(reads) {
            for target in ["/", "/v1/pool", "/v1/services", "/v1/leases", "/v1/history"] {
                let answer = try await page.send(.GET, target, timeout: .seconds(30))
                guard answer.status == .ok else { throw BenchError("GET \(target) answered \(answer.status)") }
            }
        }

        let arbitration = arbitrationTime(hosts: hosts, services: services, held: capacity - 1, repetitions: max(200, cycles))
        return Size(
            hosts: hosts.count, services: services.count, slots: capacity, leasesHeld: capacity - 1,
            grant: LatencySummary(milliseconds: acquire), release: LatencySummary(milliseconds: release),
            heartbeat: LatencySummary(milliseconds: heartbeat), arbitrationMicroseconds: arbitration,
            cpuMillisecondsPerCycle: cpuPerCycle, rssMiB: ProcessFigures(pid: getpid()).rssMiB,
            listLeases: list, statusPage: status)
    }

    /// ``PoolSnapshot/assign(now:)`` — the core's whole arbitration step, fair share included — on
    /// a snapshot like the broker's during the cycles: `held` active leases spread over the hosts
    /// and the services, and one waiting request. Microseconds per call; each call must grant.
    private func arbitrationTime(hosts: [String], services: [String], held: Int, repetitions: Int) -> LatencySummary {
        let slotsPerHost = self.slotsPerHost
        var leases: [PoolSnapshot.LeaseSlot] = (0..<held).map { index in
            PoolSnapshot.LeaseSlot(id: LeaseID(String(format: "L-%06d", index)), service: services[index % services.count],
                                   state: .active, host: hosts[index % hosts.count], slot: index / hosts.count,
                                   inFlight: index % 3)
        }
        leases.append(PoolSnapshot.LeaseSlot(id: LeaseID("L-999999"), service: services[held % services.count], state: .requested))
        let terms = PoolSnapshot.Terms(backends: BackendRange(min: 0, max: hosts.count * slotsPerHost))
        let snapshot = PoolSnapshot(hosts: hosts.map { PoolSnapshot.Host(name: $0, slots: slotsPerHost) },
                                    services: Dictionary(uniqueKeysWithValues: services.map { ($0, terms) }), leases: leases)
        let now = Timestamp(milliseconds: 1_000_000)
        var samples: [Double] = []
        for _ in 0..<repetitions {
            let start = ContinuousClock.now
            let assignment = snapshot.assign(now: now)
            samples.append(milliseconds(ContinuousClock.now - start) * 1000)
            precondition(assignment.steps.count == 1, "the arbitration benchmark's snapshot must grant exactly once")
        }
        return LatencySummary(milliseconds: samples)
    }

    private func grant(_ client: BrokerClient, _ frontend: String) async throws -> LeaseView {
        let lease = try await client.acquire(AcquireRequest(frontend: frontend))
        guard lease.state == .granted else { throw BenchError("lease \(lease.id) was \(lease.state.rawValue), not granted") }
        return lease
    }

    private func timed(_ count: Int, _ call: () async throws -> Void) async throws -> LatencySummary {
        var samples: [Double] = []
        for _ in 0..<count {
            let start = ContinuousClock.now
            try await call()
            samples.append(milliseconds(ContinuousClock.now - start))
        }
        return LatencySummary(milliseconds: samples)
    }
}

/// CPU time and resident memory of a process, from /proc.
struct ProcessFigures {
    var cpuSeconds: Double = 0
    var rssMiB: Double = 0

    init(pid: Int32) {
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let end = stat.lastIndex(of: ")") {
            // After the command: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
            let fields = stat[stat.index(after: end)...].split(separator: " ")
            if fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) {
                cpuSeconds = (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
           let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Double($0) }) {
            rssMiB = kilobytes / 1024
        }
    }

    /// This process's CPU time, finer than /proc's clock ticks.
    static func ownCPUSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
