import Foundation
import Logging
import PVM
import ShoalAPI
import ShoalCore
import ShoalTesting

#if canImport(Glibc)
import Glibc
#endif

/// The benchmark's cluster, as `shoal-demo`'s: a pool of three back-ends (namespace hosts c1–c3
/// behind a master when run as root, else three slots of this host) and a broker; front-ends come
/// and go one at a time. Every process is started here and stopped here by PID.
final class PaperCluster: @unchecked Sendable {  // Used from one task at a time; the processes are Sendable.
    struct Frontend {
        var name: String
        var port: Int
        var process: ManagedProcess
        var instancePID: Int32?
    }

    let directory: String
    let hosts: TestHosts?
    let broker: ManagedProcess
    let brokerURL: String
    let client: BrokerClient
    private var stoppedPIDs: [Int32] = []

    var stateDirectory: String { directory + "/state" }
    var poolDescription: String {
        hosts.map { "three namespace hosts \($0.others.joined(separator: ", ")) (own pvmd each, one slot each)" }
            ?? "three slots of this host (one pvmd)"
    }

    private init(directory: String, hosts: TestHosts?, broker: ManagedProcess, brokerURL: String, client: BrokerClient) {
        self.directory = directory
        self.hosts = hosts
        self.broker = broker
        self.brokerURL = brokerURL
        self.client = client
    }

    /// Whether this machine can make namespace hosts: root, `ip netns`, and a pvmd.
    static func namespacesWork() -> Bool {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/pvmd") else { return false }
        let probe = (try? ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/env"), ["ip", "netns", "list"]))
        return probe?.status == 0
    }

    static func start(directory: String, useNamespaces: Bool) async throws -> PaperCluster {
        let shoal = try ProcessRunner.builtProduct("shoal")
        var arguments = ["broker", "--state-dir", directory + "/state", "--port", "0", "--lease-ttl", "10",
                         "--log-level", "warning"]
        var hosts: TestHosts?
        if useNamespaces {
            let made = try await TestHosts.up(count: 4, reachable: true, names: ["master", "c1", "c2", "c3"],
                                              prefix: "bp\(getpid() % 100_000)")
            hosts = made
            let cluster = directory + "/cluster.yaml"
            try ("hosts:\n" + made.others.map { "  - name: \($0)\n    slots: 1\n" }.joined())
                .write(toFile: cluster, atomically: true, encoding: .utf8)
            arguments += ["--pvm-socket", made.masterSocket, "--cluster", cluster]
        } else {
            arguments += ["--slots", "3"]
        }
        do {
            let broker = try ManagedProcess.start(shoal, arguments, readyPrefix: "shoal broker listening on", timeout: 60)
            let url = ReadyLine.brokerURL(broker.firstLine) ?? ""
            let token = try BrokerToken.read(stateDirectory: directory + "/state")
            let client = try BrokerClient(baseURL: url, token: token)
            return PaperCluster(directory: directory, hosts: hosts, broker: broker, brokerURL: url, client: client)
        } catch {
            try? await hosts?.down()
            await PersistentPVMDaemon.stop(directory: directory + "/state/pvm", logger: Logger(label: "shoal-bench-paper"))
            throw error
        }
    }

    /// Starts a front-end for `manifest` on a free port, leasing from the broker.
    func startFrontend(_ manifest: String) throws -> Frontend {
        let process = try ManagedProcess.start(try ProcessRunner.builtProduct("shoal"), [
            "frontend", manifest, "--port", "0", "--broker", brokerURL, "--state-dir", stateDirectory,
            "--hold-time", "3600", "--member-header", memberHeader, "--log-level", "warning",
        ], readyPrefix: "shoal frontend", timeout: 30)
        guard let ready = ReadyLine.frontend(process.firstLine) else {
            throw BenchError("unexpected ready line from the front-end: \(process.firstLine)")
        }
        return Frontend(name: ready.name, port: ready.port, process: process, instancePID: ready.instancePID)
    }

    /// Waits until `service` holds exactly `count` active leases (bounded).
    func waitForActiveLeases(service: String, count: Int, timeout: Duration = .seconds(120)) async throws {
        let deadline = ContinuousClock.now + timeout
        var last: [LeaseView] = []
        while ContinuousClock.now < deadline {
            last = ((try? await client.leases()) ?? []).filter { $0.service == service }
            if last.filter({ $0.state == .active }).count == count, last.count == count { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw BenchError("\(service): wanted \(count) active leases, broker shows "
            + last.map { "\($0.id) \($0.state.rawValue) on \($0.host ?? "-")" }.joined(separator: ", "))
    }

    /// Stops a front-end (it drains and gives its leases back), then waits until the broker shows
    /// none of its leases left (bounded).
    func stopFrontend(_ frontend: Frontend, service: String) async {
        frontend.process.stop(timeout: 20)
        stoppedPIDs += [frontend.process.pid] + [frontend.instancePID].compactMap { $0 }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let left = ((try? await client.leases()) ?? []).filter { $0.service == service }
            if left.isEmpty { return }
            try? await Task.sleep(for: .milliseconds(250))
        }
        say("warning: \(service)'s leases were not all given back within 30 s")
    }

    /// The broker, then the pool.
    func stop() async {
        await client.close()
        broker.stop(timeout: 10)
        if let hosts {
            try? await hosts.down()
        } else {
            await PersistentPVMDaemon.stop(directory: stateDirectory + "/pvm", logger: Logger(label: "shoal-bench-paper"))
        }
    }

    /// What is still on the machine after `stop()`: processes and namespace-host traces.
    func leftovers() async -> [String] {
        var found = ([broker.pid] + stoppedPIDs).filter { kill($0, 0) == 0 && !isZombie($0) }.map { "process \($0)" }
        if let hosts { found += (try? await hosts.leftovers()) ?? [] }
        return found
    }
}

/// The response header the front-ends name the answering member in.
let memberHeader = "X-Shoal-Member"

func isZombie(_ pid: Int32) -> Bool {
    let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
    return stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func say(_ line: String) {
    print(line)
    fflush(nil)
}
