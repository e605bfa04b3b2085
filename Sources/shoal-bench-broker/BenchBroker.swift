import ArgumentParser
import Foundation
import Logging
import ShoalTesting

#if canImport(Glibc)
import Glibc
#endif

/// `shoal-bench-broker`: the broker's figures in one run (docs/benchmarks-broker.md).
@main
struct BenchBroker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal-bench-broker",
        abstract: "Measure lease grant latency, lease operations per second, the reaction to a load step, and the scale curve.",
        discussion: """
            grants: an in-process broker (real SQLite store, real HTTP server and client, a launcher that
            starts nothing) — latency of acquire, release, heartbeat and GET /v1/leases, operations per
            second with concurrent clients, and the same loop without HTTP.
            reaction: real `shoal broker` (its own pvmd) and `shoal frontend` processes — from a load step to
            the first response served by a leased back-end, split by the broker's event log.
            scale (only when named): pool start with real namespace hosts, one pvmd each, and per size of pool ×
            services the grant latency, arbitration time per decision, CPU, memory and the reads' times.
            """
    )

    enum Part: String, CaseIterable, Sendable, ExpressibleByArgument {
        case grants, reaction, scale
    }

    @Argument(help: "Parts to run: grants, reaction, scale (default: grants and reaction).") var parts: [Part] = []
    @Option(help: "Sequential calls per latency figure.") var iterations = 2000
    @Option(help: "Concurrent clients (each its own front-end) for operations per second.") var clients = 4
    @Option(help: "Seconds of each operations-per-second run.") var duration = 5
    @Option(help: "Load steps in the reaction part.") var repetitions = 5
    @Option(help: "Seconds the whole run may take before it gives up (and stops everything).") var timeout = 600
    @Option(help: "scale: host counts, comma-separated.") var hosts = "3,16,32,64"
    @Option(help: "scale: service counts, comma-separated.") var services = "4,16,32"
    @Option(help: "scale: slots per host.") var slotsPerHost = 4
    @Option(help: "scale: acquire + release + heartbeat cycles per size.") var cycles = 500
    @Option(help: "scale: write the curve as a PNG here (an SVG beside it), rendered by headless Chromium.") var plot: String?
    @Flag(help: "Print the figures as JSON instead of tables.") var json = false

    func validate() throws {
        guard (1...1_000_000).contains(iterations) else { throw ValidationError("--iterations must be 1...1000000") }
        guard (1...64).contains(clients) else { throw ValidationError("--clients must be 1...64") }
        guard (1...600).contains(duration) else { throw ValidationError("--duration must be 1...600 seconds") }
        guard (1...100).contains(repetitions) else { throw ValidationError("--repetitions must be 1...100") }
        guard timeout >= 10 else { throw ValidationError("--timeout must be at least 10 seconds") }
        for (name, list) in [("--hosts", hosts), ("--services", services)] {
            guard let counts = Self.counts(list), !counts.isEmpty, counts.allSatisfy({ (1...98).contains($0) }) else {
                throw ValidationError("\(name) must be comma-separated counts of 1...98 (got \"\(list)\")")
            }
        }
        guard (1...64).contains(slotsPerHost) else { throw ValidationError("--slots-per-host must be 1...64") }
        guard (1...100_000).contains(cycles) else { throw ValidationError("--cycles must be 1...100000") }
        if let plot, !plot.hasSuffix(".png") { throw ValidationError("--plot must name a .png file (got \(plot))") }
    }

    /// "3,16,32" as numbers; nil if any is not one.
    static func counts(_ list: String) -> [Int]? {
        let numbers = list.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return numbers.contains(nil) ? nil : numbers.compactMap { $0 }
    }

    func run() async throws {
        // Ctrl-C or SIGTERM cancels the run, so whatever it started is still stopped.
        let plan = Plan(parts: parts.isEmpty ? [.grants, .reaction] : parts, iterations: iterations, clients: clients,
                        duration: .seconds(duration), repetitions: repetitions,
                        scale: ScaleOptions(hosts: Self.counts(hosts) ?? [], services: Self.counts(services) ?? [],
                                            slotsPerHost: slotsPerHost, cycles: cycles, plot: plot),
                        timeout: .seconds(timeout))
        let work = Task { try await plan.run() }
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { work.cancel() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }

        let report = try await work.value
        print(json ? try report.json() : report.text)
        if (report.reaction?.failed ?? 0) > 0 {
            FileHandle.standardError.write(Data("shoal-bench-broker: some requests failed during the load steps\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// The scale part's sizes and where its plot goes.
struct ScaleOptions: Sendable {
    var hosts: [Int]
    var services: [Int]
    var slotsPerHost: Int
    var cycles: Int
    var plot: String?
}

/// What to run, taken from the command line.
struct Plan: Sendable {
    var parts: [BenchBroker.Part]
    var iterations: Int
    var clients: Int
    var duration: Duration
    var repetitions: Int
    var scale: ScaleOptions
    var timeout: Duration

    func run() async throws -> Report {
        var logger = Logger(label: "shoal.bench-broker") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        let deadline = Deadline(after: timeout)
        var report = Report(started: Date())

        if parts.contains(.grants) {
            log("grants: \(iterations) sequential calls per figure, then \(clients) clients × \(duration), twice")
            report.grants = try await GrantBenchmark(iterations: iterations, clients: clients, duration: duration, logger: logger).run()
        }
        if parts.contains(.reaction) {
            try deadline.check("starting the reaction part")
            log("reaction: \(repetitions) load steps with real broker and front-end processes")
            report.reaction = try await ReactionBenchmark(repetitions: repetitions, deadline: deadline, logger: logger).run()
        }
        if parts.contains(.scale) {
            try deadline.check("starting the scale part")
            log("scale: hosts \(scale.hosts), services \(scale.services), \(scale.slotsPerHost) slots per host")
            let result = try await ScaleBenchmark(
                hostCounts: scale.hosts, serviceCounts: scale.services, slotsPerHost: scale.slotsPerHost, cycles: scale.cycles,
                namespaces: LocalCluster.namespacesWork(), deadline: deadline, logger: logger).run()
            report.scale = result
            if let plot = scale.plot {
                try await ScalePlot(result: result).write(png: plot)
                log("scale: wrote \(plot)")
            }
        }
        return report
    }

    private func log(_ line: String) {
        FileHandle.standardError.write(Data("shoal-bench-broker: \(line)\n".utf8))
    }
}
