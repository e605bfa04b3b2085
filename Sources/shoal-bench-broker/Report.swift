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
    var scale: ScaleBenchmark.Result?

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
        if let scale, let smallest = scale.smallest, let largest = scale.largest {
            let sizes = "\(largest.hosts) hosts × \(largest.services) services over \(smallest.hosts) × \(smallest.services)"
            for (name, figure, unit) in [
                ("arbitration per decision (p50)", { (size: ScaleBenchmark.Size) in size.arbitrationMicroseconds.p50 }, "µs"),
                ("grant over HTTP (p50)", { (size: ScaleBenchmark.Size) in size.grant.p50 }, "ms"),
                ("CPU per acquire + release + heartbeat", { (size: ScaleBenchmark.Size) in size.cpuMillisecondsPerCycle }, "ms"),
            ] {
                let ratio = scale.ratio(figure)
                targets.append(Target(
                    name: "cost per decision flat within 2×: \(name)", met: ratio <= 2,
                    detail: String(format: "%.3f → %.3f %@, ×%.2f (%@)", figure(smallest), figure(largest), unit, ratio, sizes)))
            }
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
        if let scale { lines += ["", scaleText(scale)] }
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

    private func scaleText(_ scale: ScaleBenchmark.Result) -> String {
        var lines: [String] = []
        if scale.poolStarts.isEmpty {
            lines.append("Pool start: not measured: \(scale.poolStartSkipped ?? "no host count given").")
        } else {
            lines += [
                "Pool start: a real `shoal broker` over namespace hosts, one pvmd each (s: namespaces made; broker",
                "started → every host up in GET /v1/pool); the broker's CPU and RSS then; every pvmd's RSS summed.",
                pad("hosts", 6) + pad("namespaces s", 14) + pad("pool s", 9) + pad("broker CPU s", 14) + pad("broker MiB", 12)
                    + pad("pvmds", 7) + pad("pvmd MiB", 10),
            ]
            for start in scale.poolStarts {
                lines.append(pad("\(start.hosts)", 6) + column(start.namespacesSeconds, width: 14) + column(start.poolSeconds, width: 9)
                    + column(start.brokerCPUSeconds, width: 14) + column(start.brokerRSSMiB, width: 12, decimals: 1)
                    + pad("\(start.pvmdCount)", 7) + column(start.pvmdRSSMiB, width: 10, decimals: 1))
            }
        }
        lines += [
            "",
            "Decisions: in-process broker (SQLite store, HTTP), a launcher that starts no worker, \(scale.slotsPerHost) slots per host,",
            "the pool full but one slot; \(scale.cycles) cycles of acquire + release + heartbeat round robin over the services.",
            "grant/list/page in ms; arbitration (PoolSnapshot.assign, the core alone) in µs; CPU ms per cycle (broker and client);",
            "RSS of the whole bench process; list: GET /v1/leases, page: GET / and its four reads, every slot leased.",
            pad("hosts", 6) + pad("svcs", 5) + pad("slots", 6)
                + ["grant p50", "p99", "arb p50", "arb p99", "CPU/cycle", "RSS MiB", "list p50", "page p50"].map { pad($0, 10) }.joined(),
        ]
        for size in scale.sizes {
            lines.append(pad("\(size.hosts)", 6) + pad("\(size.services)", 5) + pad("\(size.slots)", 6)
                + [size.grant.p50, size.grant.p99].map { column($0, width: 10) }.joined()
                + [size.arbitrationMicroseconds.p50, size.arbitrationMicroseconds.p99].map { column($0, width: 10, decimals: 1) }.joined()
                + column(size.cpuMillisecondsPerCycle, width: 10) + column(size.rssMiB, width: 10, decimals: 1)
                + [size.listLeases.p50, size.statusPage.p50].map { column($0, width: 10) }.joined())
        }
        return lines.joined(separator: "\n")
    }
}
