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
/// `services.d/`, a pool of three back-ends — under a bounded load ramp at two services, with a
/// live view; then a summary, and nothing left running.
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
        abstract: "Run a local Shoal cluster under a load ramp, show the leases move, and clean up.",
        discussion: """
            The pool is three hosts c1, c2, c3 in network namespaces when run as root with `ip netns`, \
            otherwise three slots of this host. Front-ends listen on the manifests' ports (8081, 8082, \
            8083, 8090). Watch from another terminal with `shoal leases --watch --broker URL` (the URL \
            is printed). Ctrl-C ends it early; it still cleans up.
            """
    )

    @Option(parsing: .upToNextOption, help: "Seconds of each phase: ramp up, hold, ramp down.") var phases: [Double] = [20, 20, 15]
    @Option(help: "Connections per loaded service at the peak.") var connections = 24
    @Option(help: "Directory of the service manifests.") var services = "services.d"
    @Flag(help: "Use slots of this host even where namespaces would work.") var local = false
    @Flag(help: "A short run (5 s per phase), e.g. for the tests.") var quick = false

    func validate() throws {
        guard phases.count == 3, phases.allSatisfy({ $0 > 0 && $0 <= 600 }) else {
            throw ValidationError("--phases takes three durations (up, hold, down), each 0...600 seconds")
        }
        guard (1...256).contains(connections) else { throw ValidationError("--connections must be 1...256") }
    }

    func run() async throws {
        let stop = StopFlag()
        let manifests = try serviceManifests(in: services)
        let cluster = try await startCluster(local: local, name: "demo", log: say)
        var outcome: Result<Summary, any Error>
        do {
            outcome = .success(try await drive(cluster, manifests: manifests, stop: stop))
        } catch {
            outcome = .failure(error)
        }
        say("stopping the cluster…")
        await cluster.stop()
        let leftovers = await cluster.leftovers()
        switch outcome {
        case .success(let summary):
            summary.print(leftovers: leftovers)
            if summary.failed > 0 || !leftovers.isEmpty { throw ExitCode.failure }
        case .failure(let error):
            say("demo failed: \(error)")
            throw ExitCode.failure
        }
    }

    private func drive(_ cluster: LocalCluster, manifests: [String], stop: StopFlag) async throws -> Summary {
        let client = cluster.client
        for manifest in manifests {
            try cluster.startFrontend(manifest)
        }
        say("broker: \(cluster.brokerURL)   watch with: shoal leases --watch --broker \(cluster.brokerURL)")
        say("front-ends: " + cluster.frontends.map { "\($0.name) on :\($0.port)" }.joined(separator: ", "))

        let loaded = cluster.frontends.filter { ["a", "b"].contains($0.name) }
        let loads = loaded.map { frontend in
            (frontend.name, LoadGenerator.start(host: "127.0.0.1", port: frontend.port, path: "/doc?delay_ms=20", connections: 1))
        }
        let durations = (quick ? [5, 5, 5] : phases).map { Duration.milliseconds(Int64($0 * 1000)) }
        var summary = Summary()
        let started = ContinuousClock.now
        let total = durations.reduce(.zero, +)
        while !stop.isSet {
            let elapsed = ContinuousClock.now - started
            guard elapsed < total else { break }
            let (phase, target) = Self.ramp(elapsed: elapsed, durations: durations, peak: connections)
            for (_, load) in loads { load.setConnections(target) }
            let leases = (try? await client.leases()) ?? []
            summary.observe(leases)
            say(Self.statusLine(phase: phase, elapsed: elapsed, total: total, loads: loads, leases: leases, hosts: cluster.poolHosts))
            try await Task.sleep(for: .seconds(1))
        }
        for (name, load) in loads { summary.requests[name] = load.stop() }

        say("load stopped; waiting for the back-ends to be drained and given back…")
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, !stop.isSet {
            let leases = (try? await client.leases()) ?? []
            // master2 keeps its min_backends lease; everything else goes back.
            if leases.allSatisfy({ $0.service == "master2" }) { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        let events = (try? await client.events(after: 0, limit: 1000).events) ?? []
        summary.count(events)
        // The front-ends' heartbeats have brought their counts in meanwhile (every few seconds).
        summary.services = (try? await client.services()) ?? []
        return summary
    }

    /// The phase and the connections per service at `elapsed`: up linearly, hold, down linearly.
    static func ramp(elapsed: Duration, durations: [Duration], peak: Int) -> (String, Int) {
        let (up, hold) = (durations[0], durations[1])
        func fraction(_ part: Duration, of whole: Duration) -> Double { part / whole }
        if elapsed < up { return ("ramp up", max(1, Int((Double(peak) * fraction(elapsed, of: up)).rounded()))) }
        if elapsed < up + hold { return ("hold", peak) }
        let down = elapsed - up - hold
        return ("ramp down", max(0, Int((Double(peak) * (1 - fraction(down, of: durations[2]))).rounded())))
    }

    static func statusLine(
        phase: String, elapsed: Duration, total: Duration, loads: [(String, LoadGenerator)], leases: [LeaseView], hosts: [String]
    ) -> String {
        let seconds = Int(elapsed.components.seconds)
        let services = loads.map { name, load in
            let counts = load.counts
            return "\(name): \(counts.succeeded) ok \(counts.failed) failed"
        }.joined(separator: " | ")
        let pool = hosts.map { host in
            let here = leases.filter { $0.host == host }.map { "\($0.service)\($0.state == .active ? "" : "(\($0.state.rawValue))")" }
            return "\(host)[\(here.joined(separator: ","))]"
        }.joined(separator: " ")
        let clock = "\(seconds)s/\(Int(total.components.seconds))s"
        return clock.padding(toLength: 9, withPad: " ", startingAt: 0) + phase.padding(toLength: 10, withPad: " ", startingAt: 0)
            + services + " | pool " + pool
    }
}

/// Starts the demo's cluster (see ``LocalCluster/demoPool(local:)``) and says which pool it has.
func startCluster(local: Bool, name: String, stateDirectory: String? = nil, brokerPort: Int = 0,
                  log: (String) -> Void) async throws -> LocalCluster {
    let pool = LocalCluster.demoPool(local: local)
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
