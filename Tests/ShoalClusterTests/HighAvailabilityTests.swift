import Foundation
import ShoalAPI
import ShoalBroker
import ShoalClient
import ShoalCore
import ShoalTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Two brokers and a real etcd on namespace hosts: b1 on h0, b2 on h1, etcd on h2, the pool on h3
/// and h4; a front-end in the root namespace given both brokers' URLs, under a closed-loop load.
/// One run, three faults in turn, each with the load going on: the active broker's host lost
/// (its link cut, its processes killed), the old broker back (it must stand by), and the active
/// broker partitioned from etcd while the front-end still reaches it (it must step down and grant
/// nothing more). After all that: every `GET` answered, no slot ever granted twice.
@Suite("high availability", .serialized)
struct HighAvailabilityTests {
    @Test("the active broker's host lost, the old one back, the new one cut off from etcd: each time the other broker takes over; nothing lost, nothing granted twice")
    func failover() async throws {
        try await PVMEnrolmentLock.shared.withLock {
            try await withTestHosts(count: 5, reachable: true) { hosts in
                let ha = try await TwoBrokers(hosts)
                defer { ha.tearDown() }
                try await ha.run()
            }
        }
    }
}

private final class TwoBrokers: @unchecked Sendable {
    let hosts: TestHosts
    let directory: String
    let etcdURL: String
    var etcd: ManagedProcess?
    var brokers: [String: ManagedProcess] = [:]
    var frontend: ManagedProcess?
    let client: BrokerClient

    init(_ hosts: TestHosts) async throws {
        self.hosts = hosts
        directory = NSTemporaryDirectory() + "shoal-ha-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        etcdURL = "http://\(hosts.addresses[2]):2379"
        client = try BrokerClient(baseURL: "http://\(hosts.addresses[0]):7070,http://\(hosts.addresses[1]):7070", token: nil)
        try await startEtcd()
        try "hosts:\n  - name: \(hosts.names[3])\n    slots: 1\n  - name: \(hosts.names[4])\n    slots: 1\n"
            .write(toFile: directory + "/cluster.yaml", atomically: true, encoding: .utf8)
    }

    func run() async throws {
        #expect(try startBroker("b1").contains("listening on"))
        #expect(try startBroker("b2").contains("standing by; the active broker is b1"))
        try startFrontend()
        #expect(await eventually { try await self.active().count == 2 }, "the front-end leases both pool hosts")
        let port = try #require(frontendPort)
        let load = LoadGenerator.start(host: "127.0.0.1", port: port, path: "/doc", connections: 8)
        var phase = Phase(load: load)
        try await Task.sleep(for: .seconds(1))

        // 1. b1's host lost: link down, every process of it killed (its pvmd too).
        let first = try await active()
        try await hosts.setLink(of: hosts.names[0], up: false)
        let lost = ContinuousClock.now
        for pid in try await hosts.processIDs(in: hosts.names[0]) { kill(pid, SIGKILL) }
        brokers["b1"] = nil
        let tookOver = await eventually(timeout: .seconds(30)) {
            let now = try await self.active()
            return now.count == 2 && Set(now.map(\.id)).isDisjoint(with: first.map(\.id))
        }
        let failover = ContinuousClock.now - lost
        #expect(tookOver, "b2 took over and the front-end leased both hosts again")
        print("high availability: active broker's host lost → serving from new leases after \(failover)")
        let revoked = try await client.leases(includingFinal: true).filter { first.map(\.id).contains($0.id) }
        #expect(revoked.allSatisfy { $0.state == .revoked && $0.revocation == .poolRestarted }, "\(revoked)")
        try await Task.sleep(for: .seconds(1))
        try await phase.finish("HA1 active broker's host lost (link cut, processes killed)", self, leasedAgain: failover)

        // 2. b1 back (a service manager starts it again): it stands by.
        try await hosts.setLink(of: hosts.names[0], up: true)
        #expect(try startBroker("b1").contains("standing by; the active broker is b2"))
        try await Task.sleep(for: .seconds(1))
        try await phase.finish("HA2 old active broker back (stands by)", self, leasedAgain: nil)

        // 3. b2 cut off from etcd, still reached by the front-end: it must step down, b1 takes over.
        let second = try await active()
        let partition = try ProcessRunner.run(URL(fileURLWithPath: "/usr/sbin/ip"),
                                              ["-n", hosts.names[1], "route", "add", "prohibit", "\(hosts.addresses[2])/32"])
        #expect(partition.status == 0, "\(partition.stderr)")
        let cut = ContinuousClock.now
        let b2 = try #require(brokers["b2"])
        #expect(await eventually(timeout: .seconds(10)) { !b2.isRunning }, "the partitioned broker stepped down and exited")
        let steppedDown = ContinuousClock.now - cut
        #expect(steppedDown < .seconds(5), "within its leadership's proof (0.8 × 3 s after the last renewal): \(steppedDown)")
        let tookBack = await eventually(timeout: .seconds(30)) {
            let now = try await self.active()
            return now.count == 2 && Set(now.map(\.id)).isDisjoint(with: second.map(\.id))
        }
        #expect(tookBack, "b1 took over again")
        let leasedAgain = ContinuousClock.now - cut
        try await Task.sleep(for: .seconds(1))

        let counts = load.stop()
        try await phase.finish("HA3 active broker cut off from etcd", self, leasedAgain: leasedAgain,
                               note: "stepped down \(steppedDown.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))) after the cut")
        #expect(counts.failed == 0 && counts.sent == counts.succeeded, "requests lost: \(counts.errors), \(counts)")
        let events = try await Cluster.events(from: client)
        #expect(Cluster.doubleGrants(in: events).isEmpty, "\(Cluster.doubleGrants(in: events))")
        print("high availability: \(counts.sent) sent, \(counts.succeeded) answered, \(counts.failed) failed; "
            + "partitioned broker stepped down after \(steppedDown)")
    }

    // MARK: Processes

    private func startEtcd() async throws {
        let data = directory + "/etcd"
        let address = hosts.addresses[2]
        etcd = try ManagedProcess.start(URL(fileURLWithPath: hosts.rshWrapper), [
            hosts.names[2], "/bin/sh", "-c", "echo started; exec /usr/bin/etcd \"$@\" 2>\"$0\"", directory + "/etcd.log",
            "--name", "t", "--data-dir", data, "--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
            "--listen-peer-urls", "http://\(address):2380", "--initial-advertise-peer-urls", "http://\(address):2380",
            "--initial-cluster", "t=http://\(address):2380",
        ], readyPrefix: "started")
        let probe = try EtcdClient(endpoints: [etcdURL])
        let ready = await eventually(timeout: .seconds(20)) { (try? await probe.range(prefix: "/")) != nil }
        await probe.close()
        try #require(ready, "etcd answers")
    }

    /// Starts broker `name` on its host; returns its first line (listening, or standing by).
    @discardableResult
    private func startBroker(_ name: String) throws -> String {
        let host = name == "b1" ? hosts.names[0] : hosts.names[1]
        let process = try ManagedProcess.start(URL(fileURLWithPath: hosts.rshWrapper), [
            host, try ProcessRunner.builtProduct("shoal").path, "broker", "--etcd", etcdURL, "--name", name,
            "--host", "0.0.0.0", "--insecure-http", "--port", "7070", "--cluster", directory + "/cluster.yaml",
            "--state-dir", directory + "/" + name, "--leader-ttl", "3", "--log-level", "info",
        ], readyPrefix: "shoal broker", timeout: 60)
        brokers[name] = process
        return process.firstLine
    }

    private var frontendPort: Int?
    /// The front-end's log (debug level: its relay's retries are counted from it).
    var frontendLog: String { directory + "/fe-a.log" }

    private func startFrontend() throws {
        let manifest = directory + "/a.yaml"
        try """
            name: a
            frontend: fe-a
            command: shoal-webserver
            args: ["--port", "{port}", "--size", "1024", "--delay-ms", "20", "--concurrency", "32"]
            port: 8080
            concurrency: 32
            thresholds: {low: 1, high: 3}
            backends: {min: 2, max: 2}
            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        let process = try ManagedProcess.startProduct("shoal", [
            "frontend", manifest, "--port", "0", "--broker", client.baseURL, "--state-dir", directory + "/b1", "--log-level", "debug",
        ], readyPrefix: "shoal frontend", timeout: 30, standardErrorFile: frontendLog)
        frontend = process
        frontendPort = ReadyLine.frontend(process.firstLine)?.port
    }

    // MARK: Looking

    /// One fault's share of the run, recorded as a row of ``FaultTable``.
    struct Phase {
        let load: LoadGenerator
        var started = ContinuousClock.now
        var before: LoadGenerator.Counts
        var retriedBefore = 0
        var finalBefore: Set<String> = []

        init(load: LoadGenerator) {
            self.load = load
            before = load.counts
        }

        mutating func finish(_ name: String, _ ha: TwoBrokers, leasedAgain: Duration?, note: String? = nil) async throws {
            let now = load.counts
            let retried = Cluster.retries(inLog: ha.frontendLog)
            let final = try await ha.client.leases(includingFinal: true).filter(\.state.isFinal)
            let new = final.filter { !finalBefore.contains($0.id) }
            let events = try await Cluster.events(from: ha.client)
            FaultTable.add(FaultTable.Row(
                // Requests finished in this phase (one in flight at its end counts in the next).
                name: name, sent: (now.succeeded + now.failed) - (before.succeeded + before.failed), answered: now.succeeded - before.succeeded, failed: now.failed - before.failed,
                retried: retried - retriedBefore, revoked: new.count { $0.state == .revoked }, released: new.count { $0.state == .released },
                grantedTwice: Cluster.doubleGrants(in: events).count, leasedAgain: leasedAgain, invariantsHold: nil,
                duration: ContinuousClock.now - started, slowest: load.latencies()?.max ?? 0, note: note))
            before = now
            retriedBefore = retried
            finalBefore.formUnion(final.map(\.id))
            started = .now
        }
    }

    func active() async throws -> [LeaseView] {
        try await client.leases().filter { $0.state == .active }
    }

    /// As ``Cluster/eventually(timeout:_:)``; a call that fails (a broker failing over) counts as not yet.
    func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async -> Bool {
        await Cluster.eventually(timeout: timeout) { (try? await condition()) == true }
    }

    func tearDown() {
        frontend?.stop()
        for broker in brokers.values { broker.stop() }
        etcd?.stop()
        // The test hosts' `down` stops whatever is left in their namespaces, pvmds included.
        try? FileManager.default.removeItem(atPath: directory)
    }
}
