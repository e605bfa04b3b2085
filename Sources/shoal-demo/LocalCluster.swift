import ArgumentParser
import Foundation
import Logging
import PVM
import ShoalAPI
import ShoalTesting

#if canImport(Glibc)
import Glibc
#endif

/// The demo's cluster: a pool (three namespace hosts c1–c3 behind a master, or three slots of
/// this host), a broker, and front-ends — every process started here, and stopped here by PID.
final class LocalCluster: @unchecked Sendable {
    struct Frontend {
        var name: String
        var port: Int
        var process: ManagedProcess
        var instancePID: Int32?
    }

    /// Scratch space (the cluster file), removed at the end.
    let directory: String
    /// The broker's state directory: inside `directory` for the demo; the user's for `shoal up`.
    let stateDirectory: String
    let hosts: TestHosts?
    let broker: ManagedProcess
    let brokerURL: String
    let token: String
    private(set) var frontends: [Frontend] = []

    var poolHosts: [String] { hosts?.others ?? ["local"] }

    private init(directory: String, stateDirectory: String, hosts: TestHosts?, broker: ManagedProcess, brokerURL: String, token: String) {
        self.directory = directory
        self.stateDirectory = stateDirectory
        self.hosts = hosts
        self.broker = broker
        self.brokerURL = brokerURL
        self.token = token
    }

    /// Whether this machine can make namespace hosts: root, `ip netns`, and a pvmd.
    static func namespacesWork() -> Bool {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/pvmd") else { return false }
        let probe = (try? ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/env"), ["ip", "netns", "list"]))
        return probe?.status == 0
    }

    /// - Parameters:
    ///   - stateDirectory: the broker's; by default a fresh one, removed at the end.
    ///   - brokerPort: 0 for any free port.
    static func start(
        useNamespaces: Bool, stateDirectory: String? = nil, brokerPort: Int = 0, log: (String) -> Void
    ) async throws -> LocalCluster {
        let directory = NSTemporaryDirectory() + "shoal-demo-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let state = stateDirectory ?? directory + "/state"
        let shoal = try ProcessRunner.builtProduct("shoal")
        // Only warnings from the daemons: the demo's own lines are the live view.
        var arguments = ["broker", "--state-dir", state, "--port", "\(brokerPort)", "--lease-ttl", "5", "--log-level", "warning"]
        var hosts: TestHosts?
        if useNamespaces {
            log("pool: three hosts c1, c2, c3, each a network namespace with its own pvmd (running as root)")
            let made = try await TestHosts.up(count: 4, reachable: true, names: ["master", "c1", "c2", "c3"],
                                              prefix: "demo\(getpid() % 100_000)")
            hosts = made
            let cluster = directory + "/cluster.yaml"
            try ("hosts:\n" + made.others.map { "  - name: \($0)\n    slots: 1\n" }.joined())
                .write(toFile: cluster, atomically: true, encoding: .utf8)
            arguments += ["--pvm-socket", made.masterSocket, "--cluster", cluster]
        } else {
            log("pool: three slots of this host (namespace hosts need root and `ip netns`)")
            arguments += ["--slots", "3"]
        }
        do {
            let broker = try ManagedProcess.start(shoal, arguments, readyPrefix: "shoal broker listening on", timeout: 60)
            let url = ReadyLine.brokerURL(broker.firstLine) ?? ""
            let token = try BrokerToken.read(stateDirectory: state)
            return LocalCluster(directory: directory, stateDirectory: state, hosts: hosts, broker: broker, brokerURL: url, token: token)
        } catch {
            try? await hosts?.down()
            await PersistentPVMDaemon.stop(directory: state + "/pvm", logger: Logger(label: "shoal-demo"))
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Starts a front-end on its manifest's port, leasing from the broker.
    func startFrontend(_ manifest: String, holdTime: Double = 3, extraArguments: [String] = []) throws {
        let process = try ManagedProcess.start(try ProcessRunner.builtProduct("shoal"), [
            "frontend", manifest, "--broker", brokerURL, "--state-dir", stateDirectory, "--hold-time", "\(holdTime)",
            "--log-level", "warning",
        ] + extraArguments, readyPrefix: "shoal frontend", timeout: 30)
        guard let ready = ReadyLine.frontend(process.firstLine) else {
            throw ValidationError("unexpected ready line from the front-end: \(process.firstLine)")
        }
        frontends.append(Frontend(name: ready.name, port: ready.port, process: process, instancePID: ready.instancePID))
    }

    /// Front-ends first (they finish their requests and give their leases back), then the broker,
    /// then the pool.
    func stop() async {
        for frontend in frontends { frontend.process.stop(timeout: 10) }
        broker.stop()
        if let hosts {
            try? await hosts.down()
        } else {
            await PersistentPVMDaemon.stop(directory: stateDirectory + "/pvm", logger: Logger(label: "shoal-demo"))
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// What is still on the machine after `stop()`: processes, namespaces, links, directories.
    func leftovers() async -> [String] {
        var found = ([broker.pid] + frontends.flatMap { [$0.process.pid] + [$0.instancePID].compactMap { $0 } })
            .filter { kill($0, 0) == 0 && !Self.isZombie($0) }.map { "process \($0)" }
        if let hosts { found += (try? await hosts.leftovers()) ?? [] }
        if FileManager.default.fileExists(atPath: directory) { found.append("directory \(directory)") }
        return found
    }

    private static func isZombie(_ pid: Int32) -> Bool {
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true
    }
}
