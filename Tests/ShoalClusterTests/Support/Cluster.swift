import Foundation
import ShoalAPI
import ShoalCore
import ShoalTesting
import Testing

#if canImport(Glibc)
import Glibc
import ShoalClient
#endif

/// A real cluster for one test: namespace test hosts (the master pvmd in h0, the pool on
/// h1…hN), a `shoal broker` process attached to the master, and `shoal frontend` processes in
/// the root namespace, which reaches the hosts through the bridge. Everything is stopped by PID
/// and removed at the end, also when the test fails.
final class Cluster: @unchecked Sendable {
    let hosts: TestHosts
    let directory: String
    let slotsPerHost: Int
    let leaseTTL: Double
    /// The broker runs on the master host and starts the pool's pvmd itself (and again when it
    /// dies), instead of attaching to the test hosts' master pvmd.
    let brokerOwnsPool: Bool
    private(set) var broker: ManagedProcess?
    private(set) var brokerURL = ""
    /// 0 until the first start; a restart listens where the front-ends expect the broker.
    private var brokerPort = 0
    private(set) var frontends: [String: Frontend] = [:]
    private(set) var client: BrokerClient!

    struct Frontend {
        var process: ManagedProcess
        var port: Int
        /// The front-end's local service instance (its child).
        var instancePID: Int32?
    }

    /// The pool's hosts (every test host but the master).
    var poolHosts: [String] { hosts.others }

    private init(hosts: TestHosts, directory: String, slotsPerHost: Int, leaseTTL: Double, brokerOwnsPool: Bool) {
        self.hosts = hosts
        self.directory = directory
        self.slotsPerHost = slotsPerHost
        self.leaseTTL = leaseTTL
        self.brokerOwnsPool = brokerOwnsPool
    }

    /// Runs `body` with a cluster of `hostCount` pool hosts of `slots` slots each.
    static func with(
        hostCount: Int = 3, slots: Int = 1, leaseTTL: Double = 10, brokerOwnsPool: Bool = false,
        _ body: (Cluster) async throws -> Void
    ) async throws {
        try await PVMEnrolmentLock.shared.withLock {
            try await withTestHosts(count: hostCount + 1, reachable: true) { hosts in
                let directory = NSTemporaryDirectory() + "shoal-cluster-\(getpid())-\(UUID().uuidString.prefix(8))"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let cluster = Cluster(hosts: hosts, directory: directory, slotsPerHost: slots, leaseTTL: leaseTTL,
                                      brokerOwnsPool: brokerOwnsPool)
                defer { cluster.tearDown() }
                try await cluster.startBroker()
                try await body(cluster)
                await cluster.client.close()
            }
        }
    }

    // MARK: Broker

    var stateDirectory: String { directory + "/state" }

    func startBroker() async throws {
        let clusterFile = directory + "/cluster.yaml"
        let yaml = "hosts:\n" + poolHosts.map { "  - name: \($0)\n    slots: \(slotsPerHost)\n" }.joined()
        try yaml.write(toFile: clusterFile, atomically: true, encoding: .utf8)
        let options = ["--cluster", clusterFile, "--state-dir", stateDirectory, "--port", "\(brokerPort)",
                       "--lease-ttl", "\(leaseTTL)", "--log-level", "info"]
        let process: ManagedProcess
        if brokerOwnsPool {
            // On the master host, reached through the bridge; its ready line names that address.
            process = try ManagedProcess.start(URL(fileURLWithPath: hosts.rshWrapper),
                                               [hosts.master, ProcessRunner.builtProduct("shoal").path, "broker", "--host", "0.0.0.0", "--insecure-http"] + options,
                                               readyPrefix: "shoal broker listening on", timeout: 60)
        } else {
            // On the bridge's address, as on a real network: the workers on the hosts reach it too.
            process = try ManagedProcess.startProduct("shoal", ["broker", "--pvm-socket", hosts.masterSocket,
                                                                "--host", try #require(hosts.rootAddress), "--insecure-http"] + options,
                                                      readyPrefix: "shoal broker listening on", timeout: 60)
        }
        let url = try #require(ReadyLine.brokerURL(process.firstLine))
        brokerPort = try #require(url.split(separator: ":").last.flatMap { Int($0) })
        broker = process
        brokerURL = url
        await client?.close()
        client = try BrokerClient(baseURL: url, token: try BrokerToken.read(stateDirectory: stateDirectory))
    }

    /// The pvmd the broker started for its pool (with `brokerOwnsPool`).
    var poolPVMD: Int32? {
        (try? String(contentsOfFile: stateDirectory + "/pvm/pvmd.pid", encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// SIGKILL: the broker gets no chance to clean up anything.
    func killBroker() {
        broker?.kill9()
        broker = nil
    }

    // MARK: Front-ends

    /// Writes a manifest for a service of `shoal-webserver` answering after `delayMilliseconds`.
    func manifest(
        _ name: String, priority: Int = 0, weight: Int = 1, min: Int = 0, max: Int = 3,
        low: Int = 1, high: Int = 3, delayMilliseconds: Int = 100, concurrency: Int = 32, drainTimeout: Int = 20
    ) throws -> String {
        let path = directory + "/\(name).yaml"
        try """
            name: \(name)
            frontend: fe-\(name)
            command: shoal-webserver
            args: ["--port", "{port}", "--size", "1024", "--delay-ms", "\(delayMilliseconds)", "--concurrency", "\(concurrency)"]
            port: 8080
            concurrency: \(concurrency)
            thresholds: {low: \(low), high: \(high)}
            backends: {min: \(min), max: \(max)}
            priority: \(priority)
            weight: \(weight)
            drain_timeout: \(drainTimeout)s
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// With `logToFile`, the front-end logs at debug level to ``frontendLog(_:)`` instead of the
    /// test's stderr, so ``retries(of:)`` can count its relay's retries.
    @discardableResult
    func startFrontend(_ manifestPath: String, holdTime: Double = 30, logToFile: Bool = false) throws -> Frontend {
        let name = ((manifestPath as NSString).lastPathComponent as NSString).deletingPathExtension
        let process = try ManagedProcess.startProduct("shoal", [
            "frontend", manifestPath, "--port", "0", "--broker", brokerURL, "--state-dir", stateDirectory,
            "--hold-time", "\(holdTime)", "--member-header", "X-Shoal-Member", "--log-level", logToFile ? "debug" : "info",
        ], readyPrefix: "shoal frontend", timeout: 30, standardErrorFile: logToFile ? frontendLog(name) : nil)
        let ready = try #require(ReadyLine.frontend(process.firstLine), "ready line: \(process.firstLine)")
        let frontend = Frontend(process: process, port: ready.port, instancePID: ready.instancePID)
        frontends[ready.name] = frontend
        return frontend
    }

    /// SIGTERM a front-end and wait for it to exit: it gives its leases back first.
    func stopFrontend(_ name: String) {
        frontends.removeValue(forKey: name)?.process.stop(timeout: 20)
    }

    /// SIGKILL a front-end. Its local instance dies with it (the kernel's parent-death signal);
    /// `instanceToo` kills it as well, for good measure.
    func killFrontend(_ name: String, instanceToo: Bool = true) {
        guard let frontend = frontends.removeValue(forKey: name) else { return }
        frontend.process.kill9()
        if instanceToo, let pid = frontend.instancePID { kill(pid, SIGKILL) }
    }

    func load(on service: String, connections: Int) throws -> LoadGenerator {
        let frontend = try #require(frontends[service], "no front-end \(service)")
        return LoadGenerator.start(host: "127.0.0.1", port: frontend.port, path: "/doc", connections: connections)
    }

    /// Where a front-end started with `logToFile` logs (also after it was killed).
    func frontendLog(_ service: String) -> String {
        directory + "/fe-\(service).log"
    }

    /// Requests the front-end's relay sent again, to another member or its local instance, after
    /// the first failed before answering (its `retrying on …` log lines; the relay's
    /// `RelayStatistics.retries` counts the same calls). Needs `logToFile`.
    func retries(of service: String) -> Int {
        Self.retries(inLog: frontendLog(service))
    }

    /// The retries a front-end's relay logged (at debug level) to the file `log`.
    static func retries(inLog log: String) -> Int {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").count { $0.contains("retrying on another member") || $0.contains("retrying on the local instance") }
    }

    // MARK: Looking

    func leases(all: Bool = false) async throws -> [LeaseView] {
        try await client.leases(includingFinal: all)
    }

    /// These leases as they are now, live or final.
    func leases(ids: [String]) async throws -> [LeaseView] {
        try await client.leases(includingFinal: true).filter { ids.contains($0.id) }
    }

    func events() async throws -> [EventView] {
        try await Self.events(from: client)
    }

    /// The whole event log.
    static func events(from client: BrokerClient) async throws -> [EventView] {
        var all: [EventView] = []
        var after: Int64 = 0
        while true {
            let page = try await client.events(after: after, limit: 1000)
            all += page.events
            guard !page.events.isEmpty else { return all }
            after = page.next
        }
    }

    /// Waits (checking every 100 ms) until `condition` holds; false after `timeout`.
    func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
        try await Self.eventually(timeout: timeout, condition)
    }

    static func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    /// The PIDs of processes in `host` whose command line contains `word` (e.g. "worker",
    /// "shoal-webserver").
    func processes(in host: String, matching word: String) async throws -> [Int32] {
        try await hosts.processIDs(in: host).filter { pid in
            let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return cmdline.replacingOccurrences(of: "\0", with: " ").contains(word)
        }
    }

    private func tearDown() {
        for name in Array(frontends.keys) {
            frontends[name]?.process.stop()
        }
        frontends = [:]
        broker?.stop()
        // The test hosts' `down` stops every process left in their namespaces, pvmds included.
        try? FileManager.default.removeItem(atPath: directory)
    }
}

// MARK: Invariants

extension Cluster {
    /// What breaks the cluster's invariants now, in words; empty when they all hold:
    /// - every active or draining lease has its worker alive on its host, and no host runs more
    ///   workers of a service than that service's live leases there (none that no lease owns);
    /// - no service instance on a pool host outlives its worker;
    /// - no slot is held twice: never more live leases on a host than it has slots, and in the
    ///   whole event log no grant of a host's slot while an earlier lease still held it.
    func invariantViolations() async throws -> [String] {
        var problems: [String] = []
        let live = try await leases()
        for host in poolHosts {
            var workers: [String: [Int32]] = [:]
            for pid in try await processes(in: host, matching: " worker ") {
                workers[Self.service(ofWorker: pid) ?? "?", default: []].append(pid)
            }
            let here = live.filter { $0.host == host }
            for service in Set(workers.keys).union(here.map(\.service)).sorted() {
                let serving = here.filter { $0.service == service && ($0.state == .active || $0.state == .draining) }
                let starting = here.filter { $0.service == service && $0.state == .granted }
                let running = workers[service] ?? []
                if running.count < serving.count {
                    problems.append("\(host): leases \(serving.map(\.id)) of \(service) are live but only \(running.count) worker(s) run")
                }
                if running.count > serving.count + starting.count {
                    problems.append("\(host): \(running.count) worker(s) of \(service) (pids \(running)) but only "
                        + "\(serving.count + starting.count) live lease(s) there")
                }
            }
            let instances = try await processes(in: host, matching: "shoal-webserver")
            let workerCount = workers.values.reduce(0) { $0 + $1.count }
            if instances.count > workerCount {
                problems.append("\(host): \(instances.count) service instance(s) (pids \(instances)) for \(workerCount) worker(s)")
            }
            if here.count > slotsPerHost {
                problems.append("\(host): \(here.count) live leases \(here.map(\.id)) on \(slotsPerHost) slot(s)")
            }
        }
        return problems + Self.doubleGrants(in: try await events())
    }

    /// Grants, in the event log's order, of a slot that an earlier lease still held.
    static func doubleGrants(in events: [EventView]) -> [String] {
        var holder: [String: String] = [:]  // "host/slot" → lease
        var slotOf: [String: String] = [:]  // lease → "host/slot"
        var problems: [String] = []
        for event in events {
            guard let lease = event.lease else { continue }
            if event.kind == "grant" {
                guard let host = event.host, let slot = Self.grantedSlot(event.reason) else {
                    problems.append("event #\(event.id): a grant that names no host and slot: \(event.reason)")
                    continue
                }
                let key = "\(host)/\(slot)"
                if let other = holder[key] {
                    problems.append("event #\(event.id): slot \(slot) of \(host) granted to \(lease) while \(other) held it")
                }
                holder[key] = lease
                slotOf[lease] = key
            } else if event.toState == .released || event.toState == .revoked, let key = slotOf.removeValue(forKey: lease) {
                if holder[key] == lease { holder[key] = nil }
            }
        }
        return problems
    }

    /// The slot in a grant's reason: `granted slot N of HOST: ...`.
    private static func grantedSlot(_ reason: String) -> Int? {
        guard let range = reason.range(of: "granted slot ") else { return nil }
        return Int(reason[range.upperBound...].prefix { $0.isNumber })
    }

    /// The service of a `shoal worker MANIFEST --pvm` process: its manifest's file name.
    private static func service(ofWorker pid: Int32) -> String? {
        guard let cmdline = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) else { return nil }
        let arguments = cmdline.split(separator: "\0").map(String.init)
        guard let index = arguments.firstIndex(of: "worker"), index + 1 < arguments.count else { return nil }
        return ((arguments[index + 1] as NSString).lastPathComponent as NSString).deletingPathExtension
    }
}
