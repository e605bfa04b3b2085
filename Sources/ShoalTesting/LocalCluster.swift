import Foundation
import Logging
import PVM
import ShoalAPI

#if canImport(Glibc)
import Glibc
import ShoalClient
#endif

/// A whole Shoal cluster on this machine, for the demo, `shoal up` and the benchmarks: a pool
/// (namespace hosts, or slots of this host), a broker, and front-ends. Every process is started
/// here and stopped here by PID; ``leftovers()`` says what, if anything, outlived ``stop()``.
public final class LocalCluster: @unchecked Sendable {  // Used from one task at a time; its parts are Sendable.
    public enum Pool: Sendable, CustomStringConvertible {
        /// Network-namespace hosts with these names, one slot each, behind a master namespace
        /// whose pvmd the broker attaches to (needs root and `ip netns`: see ``namespacesWork()``).
        case namespaces([String])
        /// Slots of this host, under the broker's own pvmd in its state directory.
        case localSlots(Int)

        public var description: String {
            switch self {
            case .namespaces(let names): "namespace hosts \(names.joined(separator: ", ")) (own pvmd each, one slot each)"
            case .localSlots(let slots): "\(slots) slots of this host (one pvmd)"
            }
        }
    }

    public struct Frontend: Sendable {
        public var name: String
        public var port: Int
        public var process: ManagedProcess
        /// The front-end's local service instance (its child).
        public var instancePID: Int32?
    }

    /// Scratch space (the cluster file, whatever the caller puts there), removed by ``stop()``.
    public let directory: String
    /// The broker's: inside ``directory`` unless the caller chose one (`shoal up` uses the user's).
    public let stateDirectory: String
    public let hosts: TestHosts?
    public let broker: ManagedProcess
    public let brokerURL: String
    public let token: String
    public let client: BrokerClient
    public private(set) var frontends: [Frontend] = []
    /// Front-ends stopped before ``stop()``, and their instances: checked by ``leftovers()``.
    private var stoppedPIDs: [Int32] = []

    public let pool: Pool
    /// The pool's host names as the broker knows them.
    public let poolHosts: [String]
    /// When the broker process was started (the pool already made): where a pool's start time begins.
    public let brokerStarted: ContinuousClock.Instant

    private init(directory: String, stateDirectory: String, pool: Pool, hosts: TestHosts?, poolHosts: [String],
                 broker: ManagedProcess, brokerStarted: ContinuousClock.Instant, brokerURL: String, token: String,
                 client: BrokerClient) {
        self.directory = directory
        self.stateDirectory = stateDirectory
        self.pool = pool
        self.hosts = hosts
        self.poolHosts = poolHosts
        self.broker = broker
        self.brokerStarted = brokerStarted
        self.brokerURL = brokerURL
        self.token = token
        self.client = client
    }

    /// Whether this machine can make namespace hosts: root, `ip netns`, and a pvmd.
    public static func namespacesWork() -> Bool {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/pvmd") else { return false }
        let probe = (try? ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/env"), ["ip", "netns", "list"]))
        return probe?.status == 0
    }

    /// The pool `make demo` and the benchmarks use: hosts c1 … c`hosts` — namespaces where they
    /// work (unless `local`), else that many slots of this host.
    public static func demoPool(local: Bool, hosts: Int = 3) -> Pool {
        !local && namespacesWork() ? .namespaces((1...hosts).map { "c\($0)" }) : .localSlots(hosts)
    }

    /// Starts the pool and the broker (warnings only in its log).
    /// - Parameters:
    ///   - name: names the scratch directory and the namespaces (e.g. "demo").
    ///   - stateDirectory: the broker's; by default a fresh one inside the scratch directory.
    ///   - brokerPort: 0 for any free port.
    ///   - timeout: seconds to make the namespace hosts, and again for the broker to be ready.
    public static func start(
        _ pool: Pool, name: String, stateDirectory: String? = nil, brokerPort: Int = 0, leaseTTL: Double = 5,
        timeout: Int = 60
    ) async throws -> LocalCluster {
        let directory = NSTemporaryDirectory() + "shoal-\(name)-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let state = stateDirectory ?? directory + "/state"
        var arguments = ["broker", "--state-dir", state, "--port", "\(brokerPort)", "--lease-ttl", "\(leaseTTL)",
                         "--log-level", "warning"]
        var hosts: TestHosts?
        var broker: ManagedProcess?
        do {
            switch pool {
            case .namespaces(let names):
                let made = try await TestHosts.up(count: names.count + 1, reachable: true, names: ["master"] + names,
                                                  prefix: "\(name.prefix(4))\(getpid() % 100_000)",
                                                  timeout: .seconds(timeout))
                hosts = made
                let clusterFile = directory + "/cluster.yaml"
                try ("hosts:\n" + made.others.map { "  - name: \($0)\n    slots: 1\n" }.joined())
                    .write(toFile: clusterFile, atomically: true, encoding: .utf8)
                arguments += ["--pvm-socket", made.masterSocket, "--cluster", clusterFile]
            case .localSlots(let slots):
                arguments += ["--slots", "\(slots)"]
            }
            let brokerStarted = ContinuousClock.now
            let started = try ManagedProcess.start(try ProcessRunner.builtProduct("shoal"), arguments,
                                                   readyPrefix: "shoal broker listening on", timeout: Double(timeout))
            broker = started
            guard let url = ReadyLine.brokerURL(started.firstLine) else {
                throw LocalClusterError("no URL in the broker's ready line: \(started.firstLine)")
            }
            let token = try BrokerToken.read(stateDirectory: state)
            let client = try BrokerClient(baseURL: url, token: token)
            let poolHosts = try await client.pool().hosts.map(\.name)
            return LocalCluster(directory: directory, stateDirectory: state, pool: pool, hosts: hosts, poolHosts: poolHosts,
                                broker: started, brokerStarted: brokerStarted, brokerURL: url, token: token, client: client)
        } catch {
            broker?.stop()
            try? await hosts?.down()
            await PersistentPVMDaemon.stop(directory: state + "/pvm", logger: Logger(label: "shoal-cluster"))
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Starts a front-end for `manifest`, leasing from the broker (warnings only in its log).
    /// `arguments` adds `shoal frontend` options, e.g. `["--port", "0"]`.
    @discardableResult
    public func startFrontend(_ manifest: String, holdTime: Double = 3, arguments: [String] = []) throws -> Frontend {
        let process = try ManagedProcess.start(try ProcessRunner.builtProduct("shoal"), [
            "frontend", manifest, "--broker", brokerURL, "--state-dir", stateDirectory, "--hold-time", "\(holdTime)",
            "--log-level", "warning",
        ] + arguments, readyPrefix: "shoal frontend", timeout: 30)
        guard let ready = ReadyLine.frontend(process.firstLine) else {
            process.stop()
            throw LocalClusterError("unexpected ready line from the front-end: \(process.firstLine)")
        }
        let frontend = Frontend(name: ready.name, port: ready.port, process: process, instancePID: ready.instancePID)
        frontends.append(frontend)
        return frontend
    }

    /// Stops one front-end: it finishes its requests, gives its leases back and stops its instance.
    public func stopFrontend(_ frontend: Frontend, timeout: Double = 20) {
        frontend.process.stop(timeout: timeout)
        frontends.removeAll { $0.process.pid == frontend.process.pid }
        stoppedPIDs += [frontend.process.pid] + [frontend.instancePID].compactMap { $0 }
    }

    /// Front-ends first (they finish their requests and give their leases back), then the broker,
    /// then the pool, then anything of this run still running (a worker that outlived its pvmd).
    public func stop() async {
        for frontend in frontends { stopFrontend(frontend, timeout: 10) }
        await client.close()
        broker.stop(timeout: 10)
        if let hosts {
            try? await hosts.down()
        } else {
            await PersistentPVMDaemon.stop(directory: stateDirectory + "/pvm", logger: Logger(label: "shoal-cluster"))
        }
        await stopStrays()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// What is still on the machine after ``stop()``: processes, namespaces, links, directories.
    public func leftovers() async -> [String] {
        var found = ([broker.pid] + stoppedPIDs).filter(Self.isAlive).map { "process \($0)" }
        if let hosts { found += (try? await hosts.leftovers()) ?? [] }
        found += Self.processes(mentioning: directory).map { "process \($0) (\(Self.commandLine(of: $0)))" }
        if FileManager.default.fileExists(atPath: directory) { found.append("directory \(directory)") }
        return found
    }

    /// Workers started from manifests in the scratch directory name it on their command line;
    /// their service instances are their children. Only those PIDs are signalled.
    private func stopStrays() async {
        let workers = Self.processes(mentioning: directory)
        let strays = workers + workers.flatMap(Self.children)
        guard !strays.isEmpty else { return }
        for pid in strays { kill(pid, SIGTERM) }
        try? await Task.sleep(for: .seconds(2))
        for pid in strays where Self.isAlive(pid) { kill(pid, SIGKILL) }
    }

    private static func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !(stat.split(separator: ")").last?.trimmingCharacters(in: .whitespaces).hasPrefix("Z") ?? true)
    }

    private static func processes(mentioning text: String) -> [Int32] {
        let me = getpid()
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init)
            .filter { $0 != me && isAlive($0) && commandLine(of: $0).contains(text) }
    }

    private static func commandLine(of pid: Int32) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "" }
        return String(decoding: data.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }

    private static func children(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { task -> [Int32] in
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { Int32($0) }
        }
    }
}

public struct LocalClusterError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
