import Foundation
import Logging
import ShoalAPI
import ShoalBroker
import ShoalCore
import ShoalClient

/// Lease operations on an in-process ``Broker``: a real SQLite lease store and the real HTTP
/// server and client, but a launcher that starts nothing, so a grant is the broker's own work.
struct GrantBenchmark {
    var iterations: Int
    var clients: Int
    var duration: Duration
    var logger: Logger

    struct Result: Codable, Sendable {
        var iterations: Int
        var acquireHTTP: LatencySummary
        var releaseHTTP: LatencySummary
        var heartbeatHTTP: LatencySummary
        var listHTTP: LatencySummary
        var acquireDirect: LatencySummary
        var releaseDirect: LatencySummary
        var clients: Int
        var seconds: Double
        var operationsPerSecondHTTP: Double
        var operationsPerSecondDirect: Double
    }

    static let host = "bench-host"

    func run() async throws -> Result {
        let directory = try TemporaryDirectory(prefix: "shoal-bench-grants")
        defer { directory.remove() }
        let manifest = try writeManifest(in: directory.path)

        let store = try LeaseStore(directory: directory.path, logger: logger)
        defer { try? store.close() }
        let broker = Broker(configuration: Broker.Configuration(hosts: [PoolHost(name: Self.host, slots: 64)]),
                            store: store, launcher: NoopLauncher(hostNames: [Self.host]), logger: logger)
        try await broker.recover()
        let token = try BrokerToken.loadOrCreate(stateDirectory: directory.path)
        let (ports, announce) = AsyncStream<Int>.makeStream()
        // Cancelled at the end rather than shut down gracefully, the server logs an error; a failed
        // call shows up in the client anyway.
        var serverLogger = logger
        serverLogger.logLevel = .critical
        let server = try BrokerHTTPServer(operations: broker, token: token, host: "127.0.0.1", port: 0, logger: serverLogger) { port in
            announce.yield(port)
        }

        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await broker.run() }
            group.addTask {
                defer { announce.finish() }  // A server that fails to start ends the wait below.
                try await server.run()
            }
            defer { group.cancelAll() }
            var listening = ports.makeAsyncIterator()
            guard let port = await listening.next() else { throw BenchError("the broker's HTTP server did not start") }
            return try await measure(broker: broker, url: "http://127.0.0.1:\(port)", token: token, manifest: manifest)
        }
    }

    private func writeManifest(in directory: String) throws -> String {
        let path = directory + "/bench.yaml"
        // Room for every lease the benchmark may hold at once (the pool has 64 slots).
        try """
            name: bench
            frontend: fe-bench
            command: shoal-webserver
            args: ["--port", "{port}"]
            port: 8080
            backends: {min: 0, max: 64}

            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func measure(broker: Broker, url: String, token: String, manifest: String) async throws -> Result {
        let frontends = (0..<clients).map { "fe-bench-\($0)" }
        let httpClients = try frontends.map { _ in try BrokerClient(baseURL: url, token: token) }
        do {
            let result = try await measure(broker: broker, httpClients: httpClients, frontends: frontends, manifest: manifest)
            for client in httpClients { await client.close() }
            return result
        } catch {
            for client in httpClients { await client.close() }
            throw error
        }
    }

    private func measure(
        broker: Broker, httpClients: [BrokerClient], frontends: [String], manifest: String
    ) async throws -> Result {
        for name in frontends {
            _ = try await httpClients[0].register(FrontendRegistration(name: name, manifestPath: manifest))
        }
        let client = httpClients[0]
        let frontend = frontends[0]

        // Warm-up: connections, SQLite's page cache, the code paths.
        for _ in 0..<min(200, iterations) {
            _ = try await client.release(lease: try await grant(client, frontend).id)
        }

        var acquire: [Double] = [], release: [Double] = []
        for _ in 0..<iterations {
            let start = ContinuousClock.now
            let lease = try await grant(client, frontend)
            let granted = ContinuousClock.now
            _ = try await client.release(lease: lease.id)
            acquire.append(milliseconds(granted - start))
            release.append(milliseconds(ContinuousClock.now - granted))
        }

        // Heartbeat and list with one lease held, as a front-end with a back-end sees them.
        let held = try await grant(client, frontend)
        let heartbeat = try await timed(iterations) { _ = try await client.heartbeat(frontend: frontend, Heartbeat()) }
        let list = try await timed(iterations) { _ = try await client.leases() }
        _ = try await client.release(lease: held.id)

        var directAcquire: [Double] = [], directRelease: [Double] = []
        for _ in 0..<iterations {
            let start = ContinuousClock.now
            let lease = try await broker.acquire(AcquireRequest(frontend: frontend))
            let granted = ContinuousClock.now
            guard lease.state == .granted else { throw BenchError("lease \(lease.id) was \(lease.state.rawValue), not granted") }
            _ = try await broker.release(lease: lease.id, LeaseChangeRequest())
            directAcquire.append(milliseconds(granted - start))
            directRelease.append(milliseconds(ContinuousClock.now - granted))
        }

        let viaHTTP = try await throughput(frontends) { index, frontend in
            let lease = try await grant(httpClients[index], frontend)
            _ = try await httpClients[index].release(lease: lease.id)
        }
        let direct = try await throughput(frontends) { _, frontend in
            let lease = try await broker.acquire(AcquireRequest(frontend: frontend))
            _ = try await broker.release(lease: lease.id, LeaseChangeRequest())
        }

        return Result(
            iterations: iterations,
            acquireHTTP: LatencySummary(milliseconds: acquire), releaseHTTP: LatencySummary(milliseconds: release),
            heartbeatHTTP: heartbeat, listHTTP: list,
            acquireDirect: LatencySummary(milliseconds: directAcquire), releaseDirect: LatencySummary(milliseconds: directRelease),
            clients: clients, seconds: milliseconds(duration) / 1000,
            operationsPerSecondHTTP: viaHTTP, operationsPerSecondDirect: direct)
    }

    /// Acquires a lease and insists it was granted at once (the pool is never full here).
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

    /// Lease operations per second (an acquire or a release each) with one concurrent loop of
    /// acquire + release per front-end, for `duration`.
    private func throughput(
        _ frontends: [String], _ cycle: @escaping @Sendable (Int, String) async throws -> Void
    ) async throws -> Double {
        let start = ContinuousClock.now
        let end = start + duration
        let cycles = try await withThrowingTaskGroup(of: Int.self) { group in
            for (index, frontend) in frontends.enumerated() {
                group.addTask {
                    var done = 0
                    while ContinuousClock.now < end {
                        try await cycle(index, frontend)
                        done += 1
                    }
                    return done
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(2 * cycles) / (milliseconds(ContinuousClock.now - start) / 1000)
    }
}
