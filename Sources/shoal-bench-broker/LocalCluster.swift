import Foundation
import Logging
import PVM
import ShoalAPI
import ShoalTesting

#if canImport(Glibc)
import Glibc
#endif

/// `shoal broker` with its own local pvmd (2 slots) and one `shoal frontend` leasing from it,
/// all under one temporary directory, and everything stopped by PID at the end.
actor LocalCluster {
    let directory: String
    let logger: Logger
    private var broker: ManagedProcess?
    private var frontend: ManagedProcess?
    private var client: BrokerClient?
    /// The front-end's local service instance (its child).
    private var instancePID: Int32?
    private(set) var frontendPort = 0

    init(directory: String, logger: Logger) {
        self.directory = directory
        self.logger = logger
    }

    func brokerClient() throws -> BrokerClient {
        guard let client else { throw BenchError("the broker is not running") }
        return client
    }

    func start(deadline: Deadline) async throws {
        let shoal = try ProcessRunner.builtProduct("shoal")
        let broker = try ManagedProcess.start(shoal, [
            "broker", "--state-dir", directory, "--port", "0", "--slots", "2", "--log-level", "warning",
        ], readyPrefix: "shoal broker listening on", timeout: 60)
        self.broker = broker
        // "shoal broker listening on http://127.0.0.1:PORT (pool …)"
        guard let url = ReadyLine.brokerURL(broker.firstLine) else {
            throw BenchError("no URL in the broker's ready line: \(broker.firstLine)")
        }
        let client = try BrokerClient(baseURL: url, token: try BrokerToken.read(stateDirectory: directory))
        self.client = client

        let manifest = directory + "/bench.yaml"
        // A load of 12 connections on 50 ms requests keeps the local instance High (≥ 3 in flight).
        try """
            name: bench
            frontend: fe-bench
            command: shoal-webserver
            args: ["--port", "{port}", "--size", "1024", "--delay-ms", "50", "--concurrency", "32"]
            port: 8080
            concurrency: 32
            thresholds: {low: 1, high: 3}
            backends: {min: 0, max: 2}

            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        let frontend = try ManagedProcess.start(shoal, [
            "frontend", manifest, "--port", "0", "--broker", url, "--state-dir", directory, "--hold-time", "1",
            "--member-header", "X-Shoal-Member", "--log-level", "warning",
        ], readyPrefix: "shoal frontend", timeout: 30)
        self.frontend = frontend
        guard let ready = ReadyLine.frontend(frontend.firstLine) else {
            throw BenchError("no port in the front-end's ready line: \(frontend.firstLine)")
        }
        instancePID = ready.instancePID
        frontendPort = ready.port

        let registered = try await eventually(within: .seconds(20), deadline: deadline) {
            try await client.services().contains { $0.name == "bench" && !$0.frontends.isEmpty }
        }
        guard registered else { throw BenchError("the front-end did not register with the broker within 20 s") }
    }

    /// Stops what was started, by PID: the front-end (it stops its instance), the broker, its
    /// pvmd; then anything still running from this directory (a worker, its instance).
    func stop() async {
        await client?.close()
        client = nil
        frontend?.stop(timeout: 10)
        frontend = nil
        if let pid = instancePID, Self.commandLine(of: pid).contains("shoal-webserver") {
            logger.warning("the front-end's instance outlived it; stopping it", metadata: ["pid": "\(pid)"])
            kill(pid, SIGKILL)
        }
        broker?.stop(timeout: 10)
        broker = nil
        _ = await PersistentPVMDaemon.stop(directory: directory + "/pvm", logger: logger)
        await stopLeftovers()
    }

    /// Workers spawned through PVM name the manifest in this directory; their service instances
    /// are their children. Only those PIDs are signalled.
    private func stopLeftovers() async {
        let workers = Self.processIDs().filter { Self.commandLine(of: $0).contains(directory) }
        let leftovers = workers + workers.flatMap(Self.children)
        guard !leftovers.isEmpty else { return }
        logger.warning("processes of this run were still running; stopping them", metadata: ["pids": "\(leftovers)"])
        for pid in leftovers { kill(pid, SIGTERM) }
        try? await Task.sleep(for: .seconds(2))
        for pid in leftovers where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    }

    private static func processIDs() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init)
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
