import ShoalClient
import Foundation
import Logging
import ShoalAPI
import ShoalCore
import ShoalTesting

/// From a load step at a front-end to the first response a leased back-end serves, with real
/// processes: `shoal broker` (its own pvmd), `shoal frontend`, workers spawned through PVM.
struct ReactionBenchmark {
    var repetitions: Int
    var connections = 12
    var deadline: Deadline
    var logger: Logger

    /// One load step; times in milliseconds, split by the broker's event log (whose clock has
    /// millisecond resolution).
    struct Repetition: Codable, Sendable {
        var lease: String
        /// Load step → first response from the leased back-end.
        var reaction: Double
        /// Load step → the lease's `request` event: the load manager saw High and asked.
        var ask: Double
        /// `request` → `grant`.
        var grant: Double
        /// `grant` → `spawn`: `pvm_spawn` of the worker.
        var spawn: Double
        /// `spawn` → `ready`: the worker and its service instance start; health check passes.
        var start: Double
        /// `ready` → first response: the front-end hears of it and routes there.
        var route: Double
        var requests: Int
        var failed: Int
    }

    struct Result: Codable, Sendable {
        var repetitions: [Repetition]
        var reaction: Spread
        var ask: Spread
        var grant: Spread
        var spawn: Spread
        var start: Spread
        var route: Spread
        var failed: Int
    }

    func run() async throws -> Result {
        // A broker over two slots of this host, and one front-end leasing from it.
        let cluster = try await LocalCluster.start(.localSlots(2), name: "bench-reaction")
        // Everything started is stopped whatever happens (an async `defer`), in a task of its
        // own so that an interrupted run still gets its full time to stop.
        func stop() async {
            await Task { await cluster.stop() }.value
            let leftovers = await cluster.leftovers()
            if !leftovers.isEmpty { logger.warning("left running", metadata: ["what": "\(leftovers)"]) }
        }
        do {
            let port = try await startFrontend(in: cluster)
            let result = try await measure(cluster, port: port)
            await stop()
            return result
        } catch {
            await stop()
            throw error
        }
    }

    /// The front-end under test; returns its port once it registered with the broker.
    private func startFrontend(in cluster: LocalCluster) async throws -> Int {
        let manifest = cluster.directory + "/bench.yaml"
        // A load of 12 connections on 50 ms requests keeps the local instance High (≥ 3 in flight).
        try """
            name: bench
            frontend: fe-bench
            command: shoal-webserver
            args: ["--port", "{port}", "--size", "1024", "--delay-ms", "50", "--concurrency", "32"]
            port: 8080
            concurrency: 32
            thresholds: {low: 1, high: 3}
            backends: {min: 0, max: 2}

            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        let frontend = try cluster.startFrontend(manifest, holdTime: 1, arguments: ["--port", "0", "--member-header", "X-Shoal-Member"])
        let registered = try await eventually(within: .seconds(20), deadline: deadline) {
            try await cluster.client.services().contains { $0.name == "bench" && !$0.frontends.isEmpty }
        }
        guard registered else { throw BenchError("the front-end did not register with the broker within 20 s") }
        return frontend.port
    }

    private func measure(_ cluster: LocalCluster, port: Int) async throws -> Result {
        var done: [Repetition] = []
        for _ in 0..<repetitions {
            try deadline.check("measuring the reaction")
            done.append(try await step(cluster, port: port))
        }
        func spread(_ figure: KeyPath<Repetition, Double>) -> Spread { Spread(done.map { $0[keyPath: figure] }) }
        return Result(repetitions: done, reaction: spread(\.reaction), ask: spread(\.ask), grant: spread(\.grant),
                      spawn: spread(\.spawn), start: spread(\.start), route: spread(\.route),
                      failed: done.reduce(0) { $0 + $1.failed })
    }

    /// One load step from idle, then back to idle (no live lease).
    private func step(_ cluster: LocalCluster, port: Int) async throws -> Repetition {
        let client = cluster.client
        let cursor = try await client.events(after: -1, limit: 1).next

        let wallStep = Timestamp.now().milliseconds
        let start = ContinuousClock.now
        let load = LoadGenerator.start(host: "127.0.0.1", port: port, path: "/doc", connections: connections)
        var served: (lease: String, at: ContinuousClock.Instant)?
        let end = start + deadline.bounded(.seconds(60))
        while served == nil, ContinuousClock.now < end {
            // Members are named by lease id; the local instance is not.
            if let lease = load.counts.members.keys.first(where: { $0.hasPrefix("L-") }) {
                served = (lease, .now)
            } else {
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        let counts = load.stop()
        guard let served else {
            throw BenchError("no leased back-end served within 60 s of the load step (\(counts.succeeded) requests served locally)")
        }
        let reaction = milliseconds(served.at - start)

        var events: [EventView] = []
        var after = cursor
        while true {
            let page = try await client.events(after: after, limit: 500)
            if page.events.isEmpty { break }
            events += page.events
            after = page.next
        }
        func time(_ kind: String) throws -> Double {
            guard let event = events.first(where: { $0.lease == served.lease && $0.kind == kind }) else {
                throw BenchError("no \(kind) event for lease \(served.lease) in the broker's log")
            }
            return Double(event.time)
        }
        let request = try time("request"), grant = try time("grant"), spawn = try time("spawn"), ready = try time("ready")

        // Back to idle: the load manager gives every back-end back after its hold time.
        let idle = try await eventually(within: .seconds(60), deadline: deadline) { try await client.leases().isEmpty }
        guard idle else { throw BenchError("leases were still live 60 s after the load stopped") }
        try await Task.sleep(for: .milliseconds(500))

        return Repetition(
            lease: served.lease, reaction: reaction, ask: request - Double(wallStep), grant: grant - request,
            spawn: spawn - grant, start: ready - spawn, route: Double(wallStep) + reaction - ready,
            requests: counts.succeeded + counts.failed, failed: counts.failed)
    }
}
