import ShoalClient
import Foundation
import ShoalAPI
import ShoalCore
import ShoalTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The broker, its leases and the load managers, end to end: a real broker process attached to a
/// real pvmd on three namespace hosts, real front-end processes, workers spawned through PVM,
/// and load on real sockets.
@Suite("cluster", .serialized)
struct ClusterTests {
    @Test("a front-end under load leases back-ends on the hosts, routes to them, and gives them back")
    func leasesFollowLoad() async throws {
        try await Cluster.with(hostCount: 3, slots: 1) { cluster in
            cluster.startFrontendOrFail(try cluster.manifest("a", max: 3), holdTime: 2)
            let load = try cluster.load(on: "a", connections: 12)
            let grown = try await cluster.eventually {
                try await cluster.leases().filter { $0.state == .active }.count == 3
            }
            let grownTo = try await cluster.leases()
            #expect(grown, "three back-ends under load; leases: \(grownTo)")
            // Requests reach the back-ends, not just the local instance.
            #expect(await cluster.eventually(timeout: .seconds(5)) { load.counts.members.keys.contains { $0.hasPrefix("L-") } })
            // ...which answer only the front-end that holds their lease.
            for lease in grownTo where lease.state == .active {
                try await expectAnswersOnlyItsFrontend(lease, cluster: cluster)
            }
            let counts = load.stop()
            #expect(counts.failed == 0, "failed: \(counts)")

            let shrunk = try await cluster.eventually {
                try await cluster.leases().isEmpty
            }
            #expect(shrunk, "every lease given back once idle")
            let finals = try await cluster.leases(all: true)
            #expect(finals.allSatisfy { $0.state == .released }, "\(finals)")
            for host in cluster.poolHosts {
                #expect(try await cluster.eventually(timeout: .seconds(10)) {
                    try await cluster.processes(in: host, matching: "worker").isEmpty
                }, "no worker left on \(host)")
            }
            let kinds = Set(try await cluster.events().map(\.kind))
            #expect(kinds.isSuperset(of: ["request", "grant", "spawn", "ready", "drain", "release"]), "\(kinds)")
        }
    }

    @Test("a drain longer than the workers' silence limit keeps its slot until the worker drained; the request is answered, the lease released")
    func aLongDrainKeepsItsSlotUntilTheWorkerDrained() async throws {
        try await Cluster.with(hostCount: 1, slots: 1) { cluster in
            cluster.startFrontendOrFail(try cluster.manifest("a", max: 1, low: 1, high: 2, delayMilliseconds: 50), holdTime: 1)
            let load = try cluster.load(on: "a", connections: 6)
            #expect(try await cluster.eventually { try await cluster.leases().contains { $0.state == .active } })
            _ = load.stop()
            let lease = try #require(try await cluster.leases().first { $0.state == .active })
            let endpoint = try #require(lease.endpoint?.split(separator: ":"))
            let (host, port) = (String(endpoint[0]), try #require(Int(endpoint[1])))

            // A 12 s request the worker serves and the front-end does not count (one it gave up on,
            // or from before it restarted): the front-end's scale-down gives the lease back at
            // once, and the worker is told to drain while it still serves — for longer than the
            // 3 s after which a silent worker is taken for lost.
            let secret = try #require(try await cluster.client.renew(lease: lease.id).secret)
            let slow = LoadGenerator.start(host: host, port: port, path: "/doc?size=1024&delay_ms=12000", connections: 1,
                                           pause: .seconds(120), requestTimeout: .seconds(30), headers: [("Shoal-Lease-Secret", secret)])
            #expect(try await cluster.eventually(timeout: .seconds(15)) {
                try await cluster.leases(ids: [lease.id]).first?.state == .draining
            })
            // Once a second until the answer: still draining (not revoked), its slot still held.
            var drainingChecks = 0
            while slow.counts.succeeded + slow.counts.failed == 0, drainingChecks < 30 {
                guard try await cluster.leases(ids: [lease.id]).first?.state == .draining,
                      try await cluster.client.pool().hosts.first?.used == 1 else { break }
                drainingChecks += 1
                try await Task.sleep(for: .seconds(1))
            }
            // From about 2 s to 12 s: ten checks, give or take one at each end.
            let after = try await cluster.leases(ids: [lease.id])
            #expect(drainingChecks >= 8, "draining with its slot held at \(drainingChecks) checks, then: \(after)")
            let counts = slow.stop()
            #expect(counts.succeeded == 1, "\(counts)")
            #expect(try await cluster.eventually(timeout: .seconds(10)) {
                try await cluster.leases(ids: [lease.id]).first?.state == .released
            })
            let history = try await cluster.client.explain(lease: lease.id).events
            #expect(!history.contains { $0.kind == "revoke" }, "\(history.map(\.reason))")
        }
    }

    @Test("killing a worker, a service instance or a host's pvmd revokes exactly that host's lease")
    func failuresRevokeTheRightLeases() async throws {
        try await Cluster.with(hostCount: 3, slots: 1) { cluster in
            // min_backends 3: one lease per host, held without load.
            cluster.startFrontendOrFail(try cluster.manifest("a", min: 3, max: 3, delayMilliseconds: 20))
            #expect(try await cluster.eventually { try await cluster.leases().filter { $0.state == .active }.count == 3 })
            let load = try cluster.load(on: "a", connections: 4)
            let initial = try await cluster.leases()
            func lease(on host: String) throws -> LeaseView { try #require(initial.first { $0.host == host }) }
            let (h1, h2, h3) = (cluster.poolHosts[0], cluster.poolHosts[1], cluster.poolHosts[2])

            // 1. The worker on h1.
            let worker = try #require(try await cluster.processes(in: h1, matching: " worker ").first)
            kill(worker, SIGKILL)
            try await expectRevoked(try lease(on: h1), because: .taskDied, cluster: cluster)
            await settle(load, cluster)
            // 2. The service instance behind the worker on h2: the worker exits with it.
            let instance = try #require(try await cluster.processes(in: h2, matching: "shoal-webserver").first)
            kill(instance, SIGKILL)
            try await expectRevoked(try lease(on: h2), because: .taskDied, cluster: cluster)
            await settle(load, cluster)
            // 3. h3's pvmd: the host is gone.
            let pvmd = try #require(try await cluster.hosts.pvmdPID(of: h3))
            kill(pvmd, SIGKILL)
            try await expectRevoked(try lease(on: h3), because: .hostFailed, cluster: cluster)
            #expect(try await cluster.client.pool().hosts.first { $0.name == h3 }?.down == true)

            // Each failure revoked its own lease and nothing else.
            let revoked = try await cluster.leases(all: true).filter { $0.state == .revoked }
            #expect(Set(revoked.map(\.id)) == Set(initial.map(\.id)))
            // The front-end stopped routing to them: new requests go elsewhere and succeed.
            let before = load.counts
            #expect(await cluster.eventually(timeout: .seconds(5)) { load.counts.succeeded > before.succeeded + 50 })
            let counts = load.stop()
            let dead = Set(initial.map(\.id))
            let afterwards = counts.members.filter { dead.contains($0.key) }.reduce(0) { $0 + $1.value }
                - before.members.filter { dead.contains($0.key) }.reduce(0) { $0 + $1.value }
            #expect(afterwards == 0, "requests answered by revoked members after revocation")
            #expect(counts.failed == 0, "failed: \(counts)")
        }
    }

    @Test("a host whose pvmd was killed is started anew by the broker, shown up again, and leased again")
    func killedHostRejoins() async throws {
        try await Cluster.with(hostCount: 3, slots: 1) { cluster in
            // min_backends 3 on three one-slot hosts: a lease waits for the lost one.
            cluster.startFrontendOrFail(try cluster.manifest("a", min: 3, max: 3, delayMilliseconds: 20))
            #expect(try await cluster.eventually { try await cluster.leases().filter { $0.state == .active }.count == 3 })
            let host = cluster.poolHosts[2]
            let victim = try #require(try await cluster.leases().first { $0.host == host })
            let pvmd = try #require(try await cluster.hosts.pvmdPID(of: host))
            let killedAt = ContinuousClock.now
            kill(pvmd, SIGKILL)
            try await expectRevoked(victim, because: .hostFailed, cluster: cluster)
            #expect(try await cluster.client.pool().hosts.first { $0.name == host }?.down == true)

            // The broker hears nothing from the host during its 30 s quarantine and deletes it
            // from PVM; PVM lets go of it once its retransmissions to the dead pvmd time out
            // (3 minutes after the first unanswered one); then the broker adds it again at once.
            // Other tests may run meanwhile: this one only waits, and its broker is another process.
            let back = try await PVMEnrolmentLock.shared.yielding {
                try await cluster.eventually(timeout: .seconds(300)) {
                    try await cluster.client.pool().hosts.first { $0.name == host }?.down == false
                }
            }
            let pool = try await cluster.client.pool()
            #expect(back, "\(host) up again within 300 s of the kill: \(pool)")
            let restarted = try await cluster.hosts.pvmdPID(of: host)
            #expect(restarted != nil && restarted != pvmd, "a new pvmd in \(host): \(String(describing: restarted))")
            let hostEvents = try await cluster.events().filter { $0.host == host && $0.lease == nil }
            #expect(hostEvents.map(\.kind).last == "host-up", "\(hostEvents.map(\.reason))")
            #expect(try await cluster.eventually {
                try await cluster.leases().contains { $0.host == host && $0.state == .active }
            }, "a lease active on \(host) again")
            print("cluster: \(host) killed, back and leased again after \(ContinuousClock.now - killedAt)")
        }
    }

    @Test("four front-ends contending for three hosts get slots by weighted fair share, with no failed request")
    func fairShare() async throws {
        try await Cluster.with(hostCount: 3, slots: 2) { cluster in
            // 6 slots; weights 3:1:1:1 → shares 3, 1, 1, 1.
            let specs: [(name: String, weight: Int, connections: Int)] = [("a", 3, 12), ("b", 1, 8), ("c", 1, 8), ("d", 1, 8)]
            var loads: [String: LoadGenerator] = [:]
            for spec in specs {
                cluster.startFrontendOrFail(try cluster.manifest(spec.name, weight: spec.weight, max: 3))
                loads[spec.name] = try cluster.load(on: spec.name, connections: spec.connections)
            }
            let expected = ["a": 3, "b": 1, "c": 1, "d": 1]
            let settled = try await cluster.eventually(timeout: .seconds(60)) {
                let services = try await cluster.client.services()
                let leases = try await cluster.leases()
                return Dictionary(uniqueKeysWithValues: services.map { ($0.name, $0.held) }) == expected
                    && services.allSatisfy { $0.fairShare == expected[$0.name] }
                    && leases.allSatisfy { $0.state == .active || $0.state == .requested }
            }
            let services = try await cluster.client.services()
            #expect(settled, "services: \(services)")
            for (name, load) in loads {
                let counts = load.stop()
                #expect(counts.failed == 0, "\(name) failed: \(counts)")
                #expect(counts.succeeded > 0)
            }
        }
    }

    @Test("a higher-priority service preempts a lower one gracefully, with no failed request")
    func preemption() async throws {
        try await Cluster.with(hostCount: 3, slots: 1) { cluster in
            cluster.startFrontendOrFail(try cluster.manifest("low", max: 3))
            let lowLoad = try cluster.load(on: "low", connections: 12)
            #expect(try await cluster.eventually {
                try await cluster.leases().filter { $0.service == "low" && $0.state == .active }.count == 3
            })
            cluster.startFrontendOrFail(try cluster.manifest("high", priority: 1, max: 1))
            let highLoad = try cluster.load(on: "high", connections: 6)
            let served = try await cluster.eventually {
                try await cluster.leases().contains { $0.service == "high" && $0.state == .active }
            }
            let all = try await cluster.leases(all: true)
            #expect(served, "leases: \(all)")
            #expect(await cluster.eventually(timeout: .seconds(5)) { highLoad.counts.members.keys.contains { $0.hasPrefix("L-") } })
            let events = try await cluster.events()
            let preempt = try #require(events.first { $0.kind == "preempt" })
            #expect(preempt.service == "low")
            #expect(preempt.reason.contains("fair share"))
            let preempted = try #require(try await cluster.leases(all: true).first { $0.id == preempt.lease })
            #expect(preempted.state == .released, "a preempted lease is drained, then released — not revoked")
            for (name, counts) in [("low", lowLoad.stop()), ("high", highLoad.stop())] {
                #expect(counts.failed == 0, "\(name) failed: \(counts)")
            }
        }
    }

    @Test("a front-end killed with SIGKILL loses its leases after the TTL, and their workers are stopped")
    func silentFrontendIsReclaimed() async throws {
        try await Cluster.with(hostCount: 3, slots: 1, leaseTTL: 2) { cluster in
            cluster.startFrontendOrFail(try cluster.manifest("a", min: 2, max: 2))
            #expect(try await cluster.eventually { try await cluster.leases().filter { $0.state == .active }.count == 2 })
            let held = try await cluster.leases().map(\.id)
            let killedAt = ContinuousClock.now
            cluster.killFrontend("a")
            let reclaimed = try await cluster.eventually(timeout: .seconds(15)) {
                try await cluster.leases(ids: held).allSatisfy { $0.state == .revoked }
            }
            let waited = ContinuousClock.now - killedAt
            let finals = try await cluster.leases(ids: held)
            #expect(reclaimed, "\(finals)")
            #expect(waited >= .seconds(1.5), "not before the TTL")
            #expect(finals.allSatisfy { $0.revocation == .ttlExpired }, "\(finals)")
            for host in Set(finals.compactMap(\.host)) {
                #expect(try await cluster.eventually(timeout: .seconds(10)) {
                    try await cluster.processes(in: host, matching: " worker ").isEmpty
                }, "worker on \(host) stopped")
            }
        }
    }

    @Test("the broker killed and restarted under load keeps every lease, and the data path never stops")
    func brokerRestart() async throws {
        try await Cluster.with(hostCount: 3, slots: 1) { cluster in
            cluster.startFrontendOrFail(try cluster.manifest("a", max: 3), holdTime: 2)
            let load = try cluster.load(on: "a", connections: 12)
            #expect(try await cluster.eventually { try await cluster.leases().filter { $0.state == .active }.count == 3 })
            let before = try await cluster.leases()

            cluster.killBroker()
            let during = load.counts
            try await Task.sleep(for: .seconds(2))
            #expect(load.counts.succeeded > during.succeeded + 20, "the data path keeps serving without the broker")
            try await cluster.startBroker()

            let after = try await cluster.leases()
            #expect(after.map(\.id) == before.map(\.id))
            #expect(after.map(\.endpoint) == before.map(\.endpoint))
            #expect(after.allSatisfy { $0.state == .active })
            // The restarted broker adopted the workers: their load reports reach it.
            #expect(try await cluster.eventually(timeout: .seconds(5)) { try await cluster.leases().allSatisfy { $0.inFlight != nil } })

            let counts = load.stop()
            #expect(counts.failed == 0, "failed: \(counts)")
            // And it can still take them back: drained by the adopted workers, then released.
            #expect(try await cluster.eventually { try await cluster.leases().isEmpty })
            #expect(try await cluster.leases(all: true).allSatisfy { $0.state == .released })
        }
    }

    /// One fault at a time: the load runs on for a while before the next.
    private func settle(_ load: LoadGenerator, _ cluster: Cluster) async {
        let before = load.counts.succeeded
        _ = await cluster.eventually(timeout: .seconds(5)) { load.counts.succeeded > before + 100 }
    }

    private func expectRevoked(_ lease: LeaseView, because reason: RevocationReason, cluster: Cluster) async throws {
        let revoked = try await cluster.eventually(timeout: .seconds(10)) {
            try await cluster.client.lease(lease.id).state == .revoked
        }
        #expect(revoked, "lease \(lease.id) on \(lease.host ?? "?") revoked")
        #expect(try await cluster.client.lease(lease.id).revocation == reason)
    }
}

extension Cluster {
    /// Starts a front-end or records why it could not.
    func startFrontendOrFail(_ manifest: String, holdTime: Double = 30) {
        do {
            try startFrontend(manifest, holdTime: holdTime)
        } catch {
            Issue.record("front-end \(manifest) did not start: \(error)")
        }
    }
}

extension ClusterTests {
    /// The lease's worker refuses a request straight to it (403, `forbidden`) and serves one with
    /// the secret the broker gave the holding front-end (in its POST answers only); the secret is
    /// in none of the broker's public views, nor in the worker's command line or environment.
    func expectAnswersOnlyItsFrontend(_ lease: LeaseView, cluster: Cluster) async throws {
        let endpoint = try #require(lease.endpoint)
        let host = try #require(lease.host)
        func curl(_ arguments: [String]) throws -> String {
            try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/curl"), ["-s", "--max-time", "10"] + arguments, timeout: 15).stdout
        }
        let refused = try curl(["-D", "-", "-o", "/dev/null", "http://\(endpoint)/doc?size=10"])
        #expect(refused.hasPrefix("HTTP/1.1 403"), "straight to the worker: \(refused)")
        #expect(refused.lowercased().contains("x-shoal-error: forbidden"), "\(refused)")

        let secret = try #require(try await cluster.client.renew(lease: lease.id).secret, "the holder's renew answer carries the secret")
        let served = try curl(["-o", "/dev/null", "-w", "%{http_code}", "-H", "Shoal-Lease-Secret: \(secret)", "http://\(endpoint)/doc?size=10"])
        #expect(served == "200")

        let publicViews = ["/v1/leases", "/v1/leases?all=true", "/v1/leases/\(lease.id)", "/v1/leases/\(lease.id)/explain",
                           "/v1/leases/\(lease.id)/worker", "/v1/events?limit=1000", "/v1/pool", "/status"]
        for path in publicViews {
            let body = try curl([cluster.brokerURL + path])
            #expect(!body.isEmpty && !body.contains(secret), "GET \(path) shows no lease secret")
        }
        #expect(try await cluster.client.leases().allSatisfy { $0.secret == nil })
        let workers = try await cluster.processes(in: host, matching: "worker")
        #expect(!workers.isEmpty)
        for pid in workers {
            for file in ["cmdline", "environ"] {
                let text = (try? String(contentsOfFile: "/proc/\(pid)/\(file)", encoding: .isoLatin1)) ?? ""
                #expect(!text.contains(secret), "the worker's \(file) does not show the secret")
            }
        }
    }
}
