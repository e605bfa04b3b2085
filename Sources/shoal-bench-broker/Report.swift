import Foundation

/// Everything one run measured, with the machine it ran on and the issue's targets.
struct Report: Codable, Sendable {
    var date: String
    var cores: Int
    var build: String
    /// The 1-minute load average when the run started: other work skews every figure.
    var loadAverage: Double
    var grants: GrantBenchmark.Result?
    var reaction: ReactionBenchmark.Result?

    struct Target: Codable, Sendable {
        var name: String
        var met: Bool
        var detail: String
    }

    init(started: Date) {
        let formatter = ISO8601DateFormatter()
        date = formatter.string(from: started)
        cores = ProcessInfo.processInfo.activeProcessorCount
        #if DEBUG
        build = "debug"
        #else
        build = "release"
        #endif
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        loadAverage = text.split(separator: " ").first.flatMap { Double($0) } ?? 0
    }

    var targets: [Target] {
        var targets: [Target] = []
        if let grants {
            let p99 = grants.acquireHTTP.p99
            targets.append(Target(name: "grant p99 under 5 ms, excluding the spawn", met: p99 < 5,
                                  detail: "acquire over HTTP: p99 \(String(format: "%.2f", p99)) ms"))
        }
        if let reaction {
            let spread = reaction.reaction
            targets.append(Target(name: "reaction under 1 s", met: spread.max < 1000,
                                  detail: String(format: "every step: median %.0f ms, max %.0f ms", spread.median, spread.max)))
            targets.append(Target(name: "no failed request", met: reaction.failed == 0,
                                  detail: "\(reaction.failed) failed during the load steps"))
        }
        return targets
    }

    func json() throws -> String {
        struct Document: Encodable {
            var report: Report
            var targets: [Target]
            func encode(to encoder: any Encoder) throws {
                try report.encode(to: encoder)
                var container = encoder.container(keyedBy: Key.self)
                try container.encode(targets, forKey: .targets)
            }
            enum Key: CodingKey { case targets }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(Document(report: self, targets: targets)), as: UTF8.self)
    }

    var text: String {
        var lines = ["Broker benchmark, \(date), \(cores) cores, \(build) build, load average \(loadAverage) at the start."]
        if let grants { lines += ["", grantsText(grants)] }
        if let reaction { lines += ["", reactionText(reaction)] }
        lines += ["", "Targets (this run's figures):"]
        lines += targets.map { "  [\($0.met ? "met    " : "NOT MET")] \($0.name): \($0.detail)" }
        return lines.joined(separator: "\n")
    }

    private func grantsText(_ grants: GrantBenchmark.Result) -> String {
        var lines = [
            "Lease operations: in-process broker, SQLite lease store, a launcher that starts nothing;",
            "\(grants.iterations) sequential calls each (ms).",
            pad("operation", 36, left: true) + pad("path", 7, left: true) + ["mean", "p50", "p99", "max"].map { pad($0, 8) }.joined(),
        ]
        func row(_ name: String, _ path: String, _ summary: LatencySummary) {
            lines.append(pad(name, 36, left: true) + pad(path, 7, left: true)
                + [summary.mean, summary.p50, summary.p99, summary.max].map { column($0) }.joined())
        }
        row("acquire (POST /v1/leases, granted)", "HTTP", grants.acquireHTTP)
        row("release (withdraws the grant)", "HTTP", grants.releaseHTTP)
        row("heartbeat (1 lease held)", "HTTP", grants.heartbeatHTTP)
        row("GET /v1/leases (1 live lease)", "HTTP", grants.listHTTP)
        row("acquire", "direct", grants.acquireDirect)
        row("release", "direct", grants.releaseDirect)
        let share = grants.acquireHTTP.p50 > 0 ? (1 - grants.acquireDirect.p50 / grants.acquireHTTP.p50) * 100 : 0
        lines.append(String(format: "HTTP's share of an acquire (p50): %.2f of %.2f ms (%.0f %%).",
                            grants.acquireHTTP.p50 - grants.acquireDirect.p50, grants.acquireHTTP.p50, share))
        lines.append("")
        lines.append(String(format: "Lease operations per second (one acquire or one release each), %d clients × %.0f s:",
                            grants.clients, grants.seconds))
        lines.append(String(format: "  HTTP   %8.0f", grants.operationsPerSecondHTTP))
        lines.append(String(format: "  direct %8.0f", grants.operationsPerSecondDirect))
        return lines.joined(separator: "\n")
    }

    private func reactionText(_ reaction: ReactionBenchmark.Result) -> String {
        var lines = [
            "Reaction: load step (12 connections, 50 ms requests) at the front-end → first response from a leased",
            "back-end (ms). ask: step → request; grant: request → grant; spawn: grant → pvm_spawn done;",
            "start: → worker and instance ready (health check); route: ready → first response there.",
            pad("step", 7, left: true) + pad("lease", 12, left: true)
                + ["reaction", "ask", "grant", "spawn", "start", "route"].map { pad($0, 9) }.joined()
                + pad("requests", 10) + pad("failed", 8),
        ]
        func figures(_ values: [Double]) -> String { values.map { column($0, width: 9, decimals: 0) }.joined() }
        for (index, step) in reaction.repetitions.enumerated() {
            lines.append(pad("\(index + 1)", 7, left: true) + pad(step.lease, 12, left: true)
                + figures([step.reaction, step.ask, step.grant, step.spawn, step.start, step.route])
                + pad("\(step.requests)", 10) + pad("\(step.failed)", 8))
        }
        for (name, pick) in [("min", \Spread.min), ("median", \Spread.median), ("max", \Spread.max)] {
            let spreads = [reaction.reaction, reaction.ask, reaction.grant, reaction.spawn, reaction.start, reaction.route]
            lines.append(pad(name, 19, left: true) + figures(spreads.map { $0[keyPath: pick] }))
        }
        return lines.joined(separator: "\n")
    }
}
