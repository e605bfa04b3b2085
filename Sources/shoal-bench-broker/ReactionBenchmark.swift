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
        let directory = try TemporaryDirectory(prefix: "shoal-bench-reaction")
        let cluster = LocalCluster(directory: directory.path, logger: logger)
        // Everything started is stopped whatever happens (an async `defer`), in a task of its
        // own so that an interrupted run still gets its full time to stop.
        func stop() async {
            await Task { await cluster.stop() }.value
            directory.remove()
        }
        do {
            try await cluster.start(deadline: deadline)
            let result = try await measure(cluster)
            await stop()
            return result
        } catch {
            await stop()
            throw error
        }
    }

    private func measure(_ cluster: LocalCluster) async throws -> Result {
        var done: [Repetition] = []
        for _ in 0..<repetitions {
            try deadline.check("measuring the reaction")
            done.append(try await step(cluster))
        }
        func spread(_ figure: KeyPath<Repetition, Double>) -> Spread { Spread(done.map { $0[keyPath: figure] }) }
        return Result(repetitions: done, reaction: spread(\.reaction), ask: spread(\.ask), grant: spread(\.grant),
                      spawn: spread(\.spawn), start: spread(\.start), route: spread(\.route),
                      failed: done.reduce(0) { $0 + $1.failed })
    }

    /// One load step from idle, then back to idle (no live lease).
    private func step(_ cluster: LocalCluster) async throws -> Repetition {
        let client = try await cluster.brokerClient()
        let port = await cluster.frontendPort
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
