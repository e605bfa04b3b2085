import ArgumentParser
import Foundation
import ShoalCore
import ShoalTesting

/// `shoal-demo policies`: Shoal's scaling policy beside the reference policies it is compared
/// with (Knative's KPA, Kubernetes' HPA), each driving the same real cluster, leases and data
/// path over the same recorded traces; only the decision differs (`shoal frontend --scaling`).
/// Shoal runs with `local: standby` and `local: serve`, which is how the manifest default is chosen.
struct Policies: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policies",
        abstract: "Compare Shoal's scaling policy with Knative's KPA and Kubernetes' HPA over recorded load traces.",
        discussion: "Writes missing traces and a CSV of the results; prints a table."
    )

    @Option(help: "A load trace, CSV of `second,connections` (repeatable); the two default ones are made (and kept) if missing.")
    var trace = [steadyTrace, burstyTrace]
    @Option(help: "A run, SCALING/LOCAL: shoal|kpa|hpa and standby|serve (repeatable).")
    var run = ["shoal/standby", "shoal/serve", "kpa/serve", "hpa/serve"]
    @Option(help: "Where to write the results (CSV).") var output = "docs/policies-results.csv"
    @Option(help: "The service's Low/High thresholds, LOW:HIGH; KPA and HPA aim for HIGH in flight per member.")
    var thresholds = "2:6"
    @Option(help: "Per-request service time in milliseconds.") var delayMs = 20
    @Option(help: "Seconds the back-ends must stay Low on average before Shoal gives one back (the front-end's default).")
    var holdTime: Double = 5
    @Flag(help: "Use slots of this host even where namespaces would work.") var local = false
    @Flag(help: "Replay only the first 20 s of each trace (a smoke run).") var quick = false

    static let steadyTrace = "docs/thresholds-trace.csv"
    static let burstyTrace = "docs/thresholds-trace-bursty.csv"

    struct Run: Hashable {
        var scaling: ScalingRule
        var local: LocalRole
    }

    func validate() throws {
        _ = try runs()
        _ = try lowHigh()
    }

    func runs() throws -> [Run] {
        try run.map { text in
            let parts = text.split(separator: "/").map(String.init)
            guard parts.count == 2, let scaling = ScalingRule(rawValue: parts[0]), let local = LocalRole(rawValue: parts[1]) else {
                throw ValidationError("bad --run \(text): SCALING/LOCAL with SCALING shoal|kpa|hpa and LOCAL standby|serve")
            }
            return Run(scaling: scaling, local: local)
        }
    }

    func lowHigh() throws -> (low: Int, high: Int) {
        let parts = thresholds.split(separator: ":").compactMap { Int($0) }
        guard parts.count == 2, parts[0] >= 1, parts[0] < parts[1] else { throw ValidationError("bad --thresholds \(thresholds): LOW:HIGH with 1 <= LOW < HIGH") }
        return (parts[0], parts[1])
    }

    func run() async throws {
        let runs = try runs()
        var rows: [Result] = []
        for path in trace {
            let steps = try TraceReplay.loadOrMake(path, make: path == Self.burstyTrace ? Self.makeBurstyTrace : Thresholds.makeTrace)
            let replay = quick ? Array(steps.prefix(40)) : steps
            let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            for run in runs {
                say("— \(name): \(run.scaling), local \(run.local): replaying \(replay.count / 2) s of load")
                let result = try await measure(run, trace: name, steps: replay)
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
        var trace: String
        var run: Run
        var requests, failed: Int
        var mean, p99: Double
        var backendSeconds: Double
        var leaseChangesPerMinute: Double

        static let header = "trace                      scaling local    requests failed  mean ms   p99 ms  back-end-s  lease changes/min"
        static let csvHeader = "trace,scaling,local,requests,failed,mean_ms,p99_ms,backend_seconds,lease_changes_per_minute"
        var line: String {
            trace.padding(toLength: 27, withPad: " ", startingAt: 0) + "\(run.scaling)".padding(toLength: 8, withPad: " ", startingAt: 0)
                + "\(run.local)".padding(toLength: 9, withPad: " ", startingAt: 0) + String(requests).padding(toLength: 9, withPad: " ", startingAt: 0)
                + String(failed).padding(toLength: 7, withPad: " ", startingAt: 0)
                + String(format: "%7.1f  %7.1f  %10.1f  %17.1f", mean, p99, backendSeconds, leaseChangesPerMinute)
        }
        var csv: String {
            "\(trace),\(run.scaling),\(run.local),\(requests),\(failed),\(String(format: "%.2f", mean)),\(String(format: "%.2f", p99)),"
                + "\(String(format: "%.1f", backendSeconds)),\(String(format: "%.2f", leaseChangesPerMinute))"
        }
    }

    private func measure(_ run: Run, trace: String, steps: [Int]) async throws -> Result {
        let (low, high) = try lowHigh()
        let cluster = try await startCluster(local: local, name: "policies", log: { _ in })
        let manifest = cluster.directory + "/study.yaml"
        var arguments = ["--port", "0"]
        if run.scaling != .shoal { arguments += ["--scaling", "\(run.scaling)"] }
        do {
            try """
                name: study
                frontend: fe-study
                command: shoal-webserver
                args: ["--port", "{port}", "--size", "1024", "--delay-ms", "\(delayMs)", "--concurrency", "8"]
                port: 8095
                concurrency: 8
                thresholds: {low: \(low), high: \(high)}
                backends: {min: 0, max: 3}
                local: \(run.local)
                drain_timeout: 10s
                """.write(toFile: manifest, atomically: true, encoding: .utf8)
            try cluster.startFrontend(manifest, holdTime: holdTime, arguments: arguments)
            let replayed = await TraceReplay.run(steps, against: cluster)
            await cluster.stop()
            let minutes = Double(steps.count) / 2 / 60
            return Result(
                trace: trace, run: run, requests: replayed.counts.succeeded, failed: replayed.counts.failed,
                mean: replayed.latencies?.mean ?? 0, p99: replayed.latencies?.p99 ?? 0, backendSeconds: replayed.backendSeconds,
                leaseChangesPerMinute: Double(replayed.leaseChanges) / minutes)
        } catch {
            await cluster.stop()
            throw error
        }
    }

    /// The burstier trace: quiet (about 3 connections) broken by sudden bursts of 30–44 that
    /// last 2–6 s, 6–16 s apart, for 120 s. Made once from a fixed seed and kept.
    static func makeBurstyTrace() -> [Int] {
        var random = SplitMix64(seed: 2018)
        func uniform(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(random.next() % UInt64(range.count)) }
        var steps: [Int] = []
        while steps.count < 240 {
            for _ in 0..<(2 * uniform(6...16)) { steps.append(max(1, 3 + uniform(0...2) - 1)) }  // quiet
            let level = uniform(30...44)
            for _ in 0..<(2 * uniform(2...6)) { steps.append(level + uniform(0...4) - 2) }      // burst
        }
        return Array(steps.prefix(240))
    }
}
