import ArgumentParser
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `shoal-bench-broker`: the broker's figures in one run (docs/benchmarks-broker.md).
@main
struct BenchBroker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal-bench-broker",
        abstract: "Measure lease grant latency, lease operations per second, and the reaction to a load step.",
        discussion: """
            grants: an in-process broker (real SQLite store, real HTTP server and client, a launcher that
            starts nothing) — latency of acquire, release, heartbeat and GET /v1/leases, operations per
            second with concurrent clients, and the same loop without HTTP.
            reaction: real `shoal broker` (its own pvmd) and `shoal frontend` processes — from a load step to
            the first response served by a leased back-end, split by the broker's event log.
            """
    )

    enum Part: String, CaseIterable, Sendable, ExpressibleByArgument {
        case grants, reaction
    }

    @Argument(help: "Parts to run: grants, reaction (default: both).") var parts: [Part] = []
    @Option(help: "Sequential calls per latency figure.") var iterations = 2000
    @Option(help: "Concurrent clients (each its own front-end) for operations per second.") var clients = 4
    @Option(help: "Seconds of each operations-per-second run.") var duration = 5
    @Option(help: "Load steps in the reaction part.") var repetitions = 5
    @Option(help: "Seconds the whole run may take before it gives up (and stops everything).") var timeout = 600
    @Flag(help: "Print the figures as JSON instead of tables.") var json = false

    func validate() throws {
        guard (1...1_000_000).contains(iterations) else { throw ValidationError("--iterations must be 1...1000000") }
        guard (1...64).contains(clients) else { throw ValidationError("--clients must be 1...64") }
        guard (1...600).contains(duration) else { throw ValidationError("--duration must be 1...600 seconds") }
        guard (1...100).contains(repetitions) else { throw ValidationError("--repetitions must be 1...100") }
        guard timeout >= 10 else { throw ValidationError("--timeout must be at least 10 seconds") }
    }

    func run() async throws {
        // Ctrl-C or SIGTERM cancels the run, so whatever it started is still stopped.
        let plan = Plan(parts: parts.isEmpty ? Part.allCases : parts, iterations: iterations, clients: clients,
                        duration: .seconds(duration), repetitions: repetitions, timeout: .seconds(timeout))
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

/// What to run, taken from the command line.
struct Plan: Sendable {
    var parts: [BenchBroker.Part]
    var iterations: Int
    var clients: Int
    var duration: Duration
    var repetitions: Int
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
        return report
    }

    private func log(_ line: String) {
        FileHandle.standardError.write(Data("shoal-bench-broker: \(line)\n".utf8))
    }
}
