import ArgumentParser
import Foundation
import ShoalTesting
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `make bench-paper`: the paper's three experiments with httperf, at its rates and sizes —
/// direct, nginx, the front-end alone, and 1–3 leased back-ends — into
/// `docs/benchmarks-paper.csv` and the result sections of `docs/benchmarks.md`.
@main
struct BenchPaper: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal-bench-paper",
        abstract: "Reproduce the paper's Tables 1–3 with httperf, side by side with direct access and nginx.",
        discussion: """
            Starts a broker over a pool of three back-ends (namespace hosts c1–c3 as root, else three
            slots of this host), then for each table the service alone, nginx in front of it, and a
            front-end holding exactly 0, 1, 2 or 3 back-ends (manifest backends {min: N, max: N}); runs
            httperf at each rate or size (a new connection per request, as the paper) and writes the
            figures. Everything it starts is stopped by PID at the end, also on error or Ctrl-C.
            """
    )

    @Argument(help: "Tables to run: table1, table2, table3 (default: all three).") var tables: [String] = []
    @Option(help: "Seconds of load per point (at least 20 requests are sent: 20 s at 1 request/s).") var seconds: Double = 5
    @Option(help: "Runs per point; the one with the median mean is kept (against stalls on a busy machine).")
    var rounds = 1
    @Option(name: .customLong("table2-rate"), help: "Requests/s of Table 2.") var table2Rate: Double = 50
    @Option(help: "Directory of benchmarks.md and the CSV.") var docs = "docs"
    @Flag(help: "Use slots of this host even where namespace hosts would work.") var local = false

    func validate() throws {
        let known = Set(Experiment.all(table2Rate: 1).map(\.id))
        for table in tables where !known.contains(table) {
            throw ValidationError("unknown table '\(table)': choose from \(known.sorted().joined(separator: ", "))")
        }
        guard seconds >= 1, seconds <= 60 else { throw ValidationError("--seconds must be 1...60") }
        guard (1...9).contains(rounds) else { throw ValidationError("--rounds must be 1...9") }
        guard table2Rate >= 1, table2Rate <= 1000 else { throw ValidationError("--table2-rate must be 1...1000") }
    }

    func run() async throws {
        for tool in ["/usr/bin/httperf", "/usr/bin/curl"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw ValidationError("\(tool) is missing: apt-get install httperf curl (make bench-paper does it)")
        }
        guard Nginx.executable() != nil else { throw ValidationError("nginx is missing: apt-get install nginx-light") }
        let experiments = Experiment.all(table2Rate: table2Rate).filter { tables.isEmpty || tables.contains($0.id) }
        let stop = StopFlag()

        let load = loadAverage()
        say("load average \(load) on \(ProcessInfo.processInfo.activeProcessorCount) cores at the start"
            + (load > 0.5 * Double(ProcessInfo.processInfo.activeProcessorCount) ? " — high: figures will be noisy" : ""))
        let cluster = try await LocalCluster.start(LocalCluster.demoPool(local: local), name: "bench-paper", leaseTTL: 10)
        say("pool: \(cluster.pool); broker \(cluster.brokerURL)")
        var rows: [Row] = []
        var failure: (any Error)?
        do {
            for experiment in experiments {
                rows += try await measure(experiment, cluster: cluster, directory: cluster.directory, stop: stop)
            }
        } catch {
            failure = error
        }
        say("stopping the cluster…")
        await cluster.stop()
        let leftovers = await cluster.leftovers()
        if !leftovers.isEmpty { say("left running: \(leftovers.joined(separator: ", "))") }
        if !rows.isEmpty {
            let report = Report(csvPath: docs + "/benchmarks-paper.csv", markdownPath: docs + "/benchmarks.md")
            try report.write(newRows: rows, experiments: Experiment.all(table2Rate: table2Rate), pool: "\(cluster.pool)")
        }
        if let failure {
            say("bench-paper failed: \(failure)")
            throw ExitCode.failure
        }
        if !leftovers.isEmpty { throw ExitCode.failure }
    }

    private func measure(_ experiment: Experiment, cluster: LocalCluster, directory: String, stop: StopFlag) async throws -> [Row] {
        let run = ISO8601DateFormatter().string(from: Date())
        let load = loadAverage()
        say("\n== \(experiment.title) (load average \(load))")
        let webserver = try ProcessRunner.builtProduct("shoal-webserver")
        let direct = try ManagedProcess.start(webserver, ["--port", "0", "--concurrency", "\(experiment.concurrency)"],
                                              readyPrefix: "shoal-webserver listening on", timeout: 20)
        defer { direct.stop() }
        let directPort = Int(direct.firstLine.split(separator: " ").first { $0.contains(":") }?
            .split(separator: ":").last?.prefix { $0.isNumber } ?? "") ?? 0
        let nginx = try Nginx.start(upstreamPort: directPort, directory: directory + "/nginx-\(experiment.id)")
        defer { nginx.process.stop() }

        var rows: [Row] = []
        for path in experiment.paths {
            var frontend: LocalCluster.Frontend?
            let service = "\(experiment.id.replacingOccurrences(of: "table", with: "t"))-\(path.rawValue)"
            var port: Int
            switch path {
            case .direct: port = directPort
            case .nginx: port = nginx.port
            default:
                let count = path.backends ?? 0
                let manifest = try writeManifest(service: service, experiment: experiment, backends: count,
                                                 webserver: webserver.path, directory: directory)
                let started = try cluster.startBenchFrontend(manifest)
                frontend = started
                port = started.port
            }
            do {
                if let frontend { try await ready(frontend, service: service, backends: path.backends ?? 0, cluster: cluster, experiment: experiment) }
                // Warm-up: a few requests (fills the keep-alive pools on every hop).
                for _ in 0..<5 { _ = probe(port: port, uri: experiment.points[0].uri) }
                for point in experiment.points {
                    if stop.isSet { throw BenchError("interrupted") }
                    let count = max(20, Int((point.rate * seconds).rounded()))
                    var results: [HttperfResult] = []
                    for _ in 0..<rounds {
                        results.append(try Httperf.run(port: port, uri: point.uri, rate: point.rate, count: count))
                        // Let a backlog (an overloaded point) clear before the next run: one more
                        // request waits behind it.
                        _ = probe(port: port, uri: point.uri, timeout: 60)
                    }
                    // The median by mean; a run with failures counts as the slowest.
                    let result = results.sorted { ($0.clean ? 0 : 1, $0.connectionAvg ?? .infinity) < ($1.clean ? 0 : 1, $1.connectionAvg ?? .infinity) }[results.count / 2]
                    var row = Row(table: experiment.id, x: point.x, path: path, point: point, result: result, run: run, load: load)
                    row.rounds = rounds
                    rows.append(row)
                    say("\(experiment.id)  \(path.label.padding(toLength: 12, withPad: " ", startingAt: 0)) "
                        + String(format: "%5d  mean %8.2f ms  (connect %.2f, first byte %.2f, transfer %.2f)  %d/%d 2xx, %d errors",
                                 point.x, result.connectionAvg ?? .nan, result.connect ?? .nan, result.response ?? .nan,
                                 result.transfer ?? .nan, result.status2xx, result.connections, result.errors)
                        + (rounds > 1 ? "  (median of \(rounds): " + results.map { String(format: "%.1f", $0.connectionAvg ?? .nan) }.joined(separator: " ") + ")" : ""))
                }
            } catch {
                if let frontend { await cluster.stopFrontend(frontend, service: service) }
                throw error
            }
            if let frontend { await cluster.stopFrontend(frontend, service: service) }
        }
        return rows
    }

    /// Waits until the front-end holds its back-ends and the data path goes where it should.
    private func ready(_ frontend: LocalCluster.Frontend, service: String, backends: Int, cluster: LocalCluster,
                       experiment: Experiment) async throws {
        try await cluster.waitForActiveLeases(service: service, count: backends)
        let deadline = ContinuousClock.now + .seconds(30)
        var member: String?
        while ContinuousClock.now < deadline {
            member = probe(port: frontend.port, uri: experiment.points[0].uri)
            if let member, (backends == 0) == (member == "local") { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw BenchError("\(service): requests still answered by '\(member ?? "nobody")' with \(backends) back-ends")
    }

    private func writeManifest(service: String, experiment: Experiment, backends: Int, webserver: String,
                               directory: String) throws -> String {
        let concurrency = experiment.concurrency
        // With one request per instance, the paper's levels: idle is Low, busy Medium, one waiting High.
        let thresholds = concurrency == 1 ? "{low: 1, high: 2}" : "{low: 2, high: 6}"
        let text = """
            # shoal-bench-paper: \(experiment.id), \(backends) back-end(s) held from the start.
            name: \(service)
            frontend: fe-\(service)
            command: \(webserver)
            args: ["--port", "{port}", "--size", "1024", "--concurrency", "\(concurrency)"]
            port: \(18000 + service.unicodeScalars.reduce(0) { ($0 * 31 + Int($1.value)) % 10000 })
            concurrency: \(concurrency)
            thresholds: \(thresholds)
            backends: {min: \(backends), max: \(backends)}
            drain_timeout: 10s

            """
        let path = "\(directory)/\(service).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}

func loadAverage() -> Double {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
    return Double(text.split(separator: " ").first ?? "") ?? 0
}
