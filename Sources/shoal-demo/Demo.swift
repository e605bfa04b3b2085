import ArgumentParser
import Foundation
import Logging
import PVM
import ShoalAPI
import ShoalClient
import ShoalCore
import ShoalTesting

#if canImport(Glibc)
import Glibc
#endif

/// `make demo`: a whole Shoal cluster on this machine — a broker, the four front-ends of
/// `services.d/`, a pool of six back-ends — under loads that peak at different times at each
/// service, with a live view; then a summary, a timeline, and nothing left running.
@main
struct ShoalDemo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal-demo",
        abstract: "A local Shoal cluster: the demo under load, or `up` to keep one running.",
        subcommands: [Demo.self, Up.self, Thresholds.self, Policies.self],
        defaultSubcommand: Demo.self
    )
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a local Shoal cluster under staggered loads, show the leases move, and clean up.",
        discussion: """
            The pool is six hosts c1 … c6 in network namespaces when run as root with `ip netns`, \
            otherwise six slots of this host. Front-ends listen on the manifests' ports (8081, 8082, \
            8083, 8090). The loads peak in turn at A, B, Master2 and C, so back-ends pass from one \
            service to another. Watch from another terminal with `shoal leases --watch --broker URL` \
            (the URL is printed). Ctrl-C ends it early; it still cleans up.
            """
    )

    @Option(help: "Seconds the load runs; the plan is scaled to it.") var duration: Double = 60
    @Option(help: "Connections at A's and Master2's peaks (B gets half, C a quarter).") var connections = 24
    @Option(help: "Directory of the service manifests.") var services = "services.d"
    @Option(help: "Where to write the timeline (CSV, SVG, and PNG where Chromium is installed).") var output = "demo-run"
    @Flag(help: "Use slots of this host even where namespaces would work.") var local = false
    @Flag(help: "A short run (36 s of load), e.g. for the tests.") var quick = false

    static let poolSize = 6

    func validate() throws {
        guard (20...600).contains(duration) else { throw ValidationError("--duration must be 20...600 seconds") }
        guard (4...256).contains(connections) else { throw ValidationError("--connections must be 4...256") }
    }

    func run() async throws {
        let stop = StopFlag()
        let manifests = try serviceManifests(in: services)
        let cluster = try await startCluster(local: local, hosts: Self.poolSize, name: "demo", log: say)
        var outcome: Result<(Summary, Timeline), any Error>
        do {
            outcome = .success(try await drive(cluster, manifests: manifests, stop: stop))
        } catch {
            outcome = .failure(error)
        }
        say("stopping the cluster…")
        await cluster.stop()
        let leftovers = await cluster.leftovers()
        switch outcome {
        case .success(let (summary, timeline)):
            var written: [String] = []
            do {
                written = try await timeline.write(to: output)
            } catch {
                say("could not write the timeline: \(error)")
            }
            summary.print(leftovers: leftovers, written: written)
            if summary.failed > 0 || !leftovers.isEmpty { throw ExitCode.failure }
        case .failure(let error):
            say("demo failed: \(error)")
            throw ExitCode.failure
        }
    }

    private func drive(_ cluster: LocalCluster, manifests: [String], stop: StopFlag) async throws -> (Summary, Timeline) {
        let client = cluster.client
        for manifest in manifests {
            // A short hold time: a back-end goes back 2 s after its service's load has fallen.
            try cluster.startFrontend(manifest, holdTime: 2)
        }
        say("broker: \(cluster.brokerURL)   watch with: shoal leases --watch --broker \(cluster.brokerURL)")
        say("front-ends: " + cluster.frontends.map { "\($0.name) on :\($0.port)" }.joined(separator: ", "))

        let plan = LoadShape.plan(peak: connections)
        let scale = (quick ? 36 : duration) / 60
        let loads = try plan.map { shape in
            guard let frontend = cluster.frontends.first(where: { $0.name == shape.service }) else {
                throw ValidationError("no front-end for \(shape.service) in \(services)")
            }
            return LoadGenerator.start(host: "127.0.0.1", port: frontend.port, path: shape.path, connections: 0)
        }
        var timeline = Timeline(services: plan.map(\.service), poolSize: Self.poolSize)
        var marks = Array(repeating: 0, count: loads.count)
        var previous = loads.map(\.counts)
        let total = Duration.milliseconds(Int64(60_000 * scale))
        say("each second, per service: requests served, p50/p99 ms, ▮ a back-end it holds; then where the leases are")
        let loadStarted = Int64(Date().timeIntervalSince1970 * 1000)
        let started = ContinuousClock.now
        var tick = 0
        while !stop.isSet, ContinuousClock.now - started < total {
            let t = (ContinuousClock.now - started).seconds
            for (shape, load) in zip(plan, loads) { load.setConnections(shape.connections(at: t, scale: scale)) }
            try await Task.sleep(until: started + .seconds(tick + 1))
            tick += 1
            let leases = (try? await client.leases()) ?? []
            var second = Timeline.Second(at: tick, services: [:])
            for (index, (shape, load)) in zip(plan, loads).enumerated() {
                let counts = load.counts
                let (latencies, mark) = load.latencies(after: marks[index])
                marks[index] = mark
                second.services[shape.service] = Timeline.Point(
                    connections: shape.connections(at: t, scale: scale),
                    served: counts.succeeded - previous[index].succeeded, failed: counts.failed - previous[index].failed,
                    p50: latencies?.p50, p99: latencies?.p99,
                    backends: leases.filter { $0.service == shape.service && $0.holdsSlot }.count)
                previous[index] = counts
            }
            timeline.seconds.append(second)
            say(Self.statusLine(second, services: timeline.services, leases: leases, hosts: cluster.poolHosts))
        }
        var summary = Summary()
        for (shape, load) in zip(plan, loads) { summary.requests[shape.service] = load.stop() }
        let loadEnded = Int64(Date().timeIntervalSince1970 * 1000)

        say("load stopped; waiting for the last back-ends to be drained and given back…")
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, !stop.isSet {
            let leases = (try? await client.leases()) ?? []
            // master2 keeps its min_backends lease; everything else goes back.
            if leases.allSatisfy({ $0.service == "master2" }) { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        let events = (try? await client.events(after: 0, limit: 5000).events) ?? []
        summary.count(events, loadFrom: loadStarted, to: loadEnded)
        // The front-ends' heartbeats have brought their counts in meanwhile (every few seconds).
        summary.services = (try? await client.services()) ?? []
        let minimums = Dictionary(uniqueKeysWithValues: summary.services.map { ($0.name, $0.minBackends) })
        summary.follow(timeline, plan: plan, scale: scale, minimums: minimums)
        return (summary, timeline)
    }

    static func statusLine(_ second: Timeline.Second, services: [String], leases: [LeaseView], hosts: [String]) -> String {
        let perService = services.map { service -> String in
            guard let point = second.services[service] else { return service }
            let latency = point.p50.map { p50 in String(format: "%3.0f/%-4.0f", p50, point.p99 ?? p50) } ?? "  -/-   "
            let failed = point.failed > 0 ? " \(point.failed) FAILED" : ""
            return "\(service) " + String(format: "%4d/s ", point.served) + latency
                + String(repeating: "▮", count: point.backends).padding(toLength: 4, withPad: " ", startingAt: 0) + failed
        }.joined(separator: " │ ")
        let pool = hosts.map { host in
            let here = leases.filter { $0.host == host && $0.holdsSlot }
                .map { "\($0.service)\($0.state == .active ? "" : "(\($0.state.rawValue))")" }
            return "\(host)[\(here.joined(separator: ","))]"
        }.joined(separator: " ")
        return String(format: "%3ds ", second.at) + perService + " │ " + pool
    }
}

extension LeaseView {
    /// Granted, active or draining: the lease occupies a slot of its host.
    var holdsSlot: Bool { host != nil && [.granted, .active, .draining].contains(state) }
}

/// Starts a demo cluster of `hosts` back-ends (see ``LocalCluster/demoPool(local:hosts:)``) and says which pool it has.
func startCluster(local: Bool, hosts: Int = 3, name: String, stateDirectory: String? = nil, brokerPort: Int = 0,
                  log: (String) -> Void) async throws -> LocalCluster {
    let pool = LocalCluster.demoPool(local: local, hosts: hosts)
    switch pool {
    case .namespaces: log("pool: \(pool), each a network namespace (running as root)")
    case .localSlots: log("pool: \(pool) (namespace hosts need root and `ip netns`)")
    }
    return try await LocalCluster.start(pool, name: name, stateDirectory: stateDirectory, brokerPort: brokerPort)
}

/// The four manifests of `services.d/`, by absolute path.
func serviceManifests(in services: String) throws -> [String] {
    let directory = URL(fileURLWithPath: services).standardizedFileURL.path
    let manifests = ["a", "b", "c", "master2"].map { "\(directory)/\($0).yaml" }
    for path in manifests where !FileManager.default.fileExists(atPath: path) {
        throw ValidationError("no manifest \(path): run from the project's root or pass --services DIR")
    }
    return manifests
}

func say(_ line: String) {
    print(line)
    fflush(nil)
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }

    static func / (lhs: Duration, rhs: Duration) -> Double { lhs.seconds / rhs.seconds }
}
