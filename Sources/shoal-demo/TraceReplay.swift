import Foundation
import ShoalAPI
import ShoalClient
import ShoalCore
import ShoalTesting

/// A load trace (closed-loop connections, one number per half second) replayed against a
/// cluster's first front-end, and what it measured.
struct TraceReplay {
    var counts: LoadGenerator.Counts
    var latencies: LoadGenerator.Latencies?
    /// Active or draining leases, sampled every half second.
    var backendSeconds: Double
    /// Grants plus releases in the broker's event log.
    var leaseChanges: Int

    static func run(_ steps: [Int], against cluster: LocalCluster) async -> TraceReplay {
        let client = cluster.client
        let load = LoadGenerator.start(host: "127.0.0.1", port: cluster.frontends[0].port, path: "/doc", connections: max(steps.first ?? 1, 1))
        var backendSeconds = 0.0
        for connections in steps {
            load.setConnections(connections)
            try? await Task.sleep(for: .milliseconds(500))
            let active = (try? await client.leases())?.filter { $0.state == .active || $0.state == .draining }.count ?? 0
            backendSeconds += Double(active) * 0.5
        }
        let counts = load.stop()
        let events = (try? await client.events(after: 0, limit: 1000).events) ?? []
        return TraceReplay(
            counts: counts, latencies: load.latencies(), backendSeconds: backendSeconds,
            leaseChanges: events.filter { $0.kind == "grant" || $0.kind == "release" }.count)
    }

    /// The trace at `path`, or, if missing, `make()`'s, written there and kept so every run
    /// replays the same load.
    static func loadOrMake(_ path: String, make: () -> [Int]) throws -> [Int] {
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            return text.split(separator: "\n").dropFirst().compactMap { line in
                line.split(separator: ",").last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            }
        }
        let steps = make()
        let csv = "second,connections\n" + steps.enumerated().map { "\(Double($0.offset) / 2),\($0.element)" }.joined(separator: "\n") + "\n"
        try csv.write(toFile: path, atomically: true, encoding: .utf8)
        return steps
    }
}
