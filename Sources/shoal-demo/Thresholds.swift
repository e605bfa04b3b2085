import ArgumentParser
import Foundation
import ShoalAPI
import ShoalClient
import ShoalCore
import ShoalTesting

/// `shoal-demo thresholds`: the study the paper left open. One recorded load trace, replayed
/// against one front-end for each pair of Low/High thresholds and each dispatch policy; for
/// each, the response times, the back-end-seconds leased, and how often leases changed.
struct Thresholds: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "thresholds",
        abstract: "Sweep the Low/High thresholds and the dispatch policies over a recorded load trace.",
        discussion: "Writes the trace (if missing) and a CSV of the results; prints a table."
    )

    @Option(help: "The load trace: CSV of `second,connections`; made (and kept) if missing.")
    var trace = "docs/thresholds-trace.csv"
    @Option(help: "Where to write the results (CSV).") var output = "docs/thresholds-results.csv"
    @Option(help: "Threshold pairs to try, LOW:HIGH.") var pairs = ["1:3", "2:6", "4:10", "8:16"]
    @Option(help: "Per-request service time in milliseconds.") var delayMs = 20
    @Flag(help: "Use slots of this host even where namespaces would work.") var local = false
    @Flag(help: "Replay only the first 20 s of the trace (a smoke run).") var quick = false

    func run() async throws {
        let steps = try Self.loadOrMakeTrace(trace)
        let replay = quick ? Array(steps.prefix(40)) : steps
        let thresholds = try pairs.map { pair -> (Int, Int) in
            let parts = pair.split(separator: ":").compactMap { Int($0) }
            guard parts.count == 2, parts[0] >= 1, parts[0] < parts[1] else { throw ValidationError("bad pair \(pair): LOW:HIGH with LOW < HIGH") }
            return (parts[0], parts[1])
        }
        var rows: [Result] = []
        for (low, high) in thresholds {
            for policy in ["paper", "least-loaded"] {
                say("— low \(low), high \(high), policy \(policy): replaying \(replay.count / 2) s of load")
                let result = try await measure(low: low, high: high, policy: policy, steps: replay)
                say("  " + result.line)
                rows.append(result)
            }
        }
        say("")
        say(Result.header)
        for row in rows { say(row.line) }
        let csv = ([Result.csvHeader] + rows.map(\.csv)).joined(separator: "\n") + "\n"
        try csv.write(toFile: output, atomically: true, encoding: .utf8)
        say("written: \(output)")
    }

    struct Result {
        var low, high: Int
        var policy: String
        var requests, failed: Int
        var mean, p99: Double
        var backendSeconds: Double
        var leaseChanges: Int

        static let header = "low high policy        requests failed  mean ms   p99 ms  back-end-s  lease changes"
        static let csvHeader = "low,high,policy,requests,failed,mean_ms,p99_ms,backend_seconds,lease_changes"
        var line: String {
            [String(low).padding(toLength: 4, withPad: " ", startingAt: 0), String(high).padding(toLength: 5, withPad: " ", startingAt: 0),
             policy.padding(toLength: 14, withPad: " ", startingAt: 0), String(requests).padding(toLength: 9, withPad: " ", startingAt: 0),
             String(failed).padding(toLength: 7, withPad: " ", startingAt: 0), String(format: "%7.1f  %7.1f  %10.1f  %13d", mean, p99, backendSeconds, leaseChanges)]
                .joined()
        }
        var csv: String { "\(low),\(high),\(policy),\(requests),\(failed),\(String(format: "%.2f", mean)),\(String(format: "%.2f", p99)),\(String(format: "%.1f", backendSeconds)),\(leaseChanges)" }
    }

    private func measure(low: Int, high: Int, policy: String, steps: [Int]) async throws -> Result {
        let cluster = try await startCluster(local: local, name: "thresholds", log: { _ in })
        let manifest = cluster.directory + "/study.yaml"
        try """
            name: study
            frontend: fe-study
            command: shoal-webserver
            args: ["--port", "{port}", "--size", "1024", "--delay-ms", "\(delayMs)", "--concurrency", "8"]
            port: 8095
            concurrency: 8
            thresholds: {low: \(low), high: \(high)}
            backends: {min: 0, max: 3}
            drain_timeout: 10s
            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        var result = Result(low: low, high: high, policy: policy, requests: 0, failed: 0, mean: 0, p99: 0, backendSeconds: 0, leaseChanges: 0)
        do {
            try cluster.startFrontend(manifest, holdTime: 2, arguments: ["--port", "0", "--policy", policy])
            let replayed = await TraceReplay.run(steps, against: cluster)
            result.requests = replayed.counts.succeeded
            result.failed = replayed.counts.failed
            result.mean = replayed.latencies?.mean ?? 0
            result.p99 = replayed.latencies?.p99 ?? 0
            result.backendSeconds = replayed.backendSeconds
            result.leaseChanges = replayed.leaseChanges
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
        return result
    }

    /// The trace: one number of connections per half second. Made once from a fixed seed —
    /// quiet, a slow rise, a plateau, bursts, a fall, noise — and kept, so every run replays the same.
    static func loadOrMakeTrace(_ path: String) throws -> [Int] {
        try TraceReplay.loadOrMake(path, make: makeTrace)
    }

    static func makeTrace() -> [Int] {
        var random = SplitMix64(seed: 2004)
        var steps: [Int] = []
        for tick in 0..<240 {  // 120 s
            let t = Double(tick) / 2
            var level: Double
            switch t {
            case ..<10: level = 2
            case ..<40: level = 2 + (t - 10) * 0.8        // slow rise to 26
            case ..<60: level = 26
            case ..<75: level = (Int(t) % 6 < 3) ? 40 : 8 // bursts
            case ..<100: level = 26 - (t - 75) * 0.9      // fall
            default: level = 3
            }
            level += Double(random.next() % 5) - 2         // noise ±2
            steps.append(max(1, Int(level.rounded())))
        }
        return steps
    }
}
