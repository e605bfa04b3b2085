import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PVM
import ShoalProxy
import ShoalTesting
import ShoalWorker
import Testing
import ShoalWorkerProtocol

/// The whole data path with real parts: client → service manager → worker spawned through a
/// real pvmd → service instance, and the paper's graceful removal under load.
@Suite(.serialized)
struct WorkerOverPVMTests {
    // The limit includes the wait for `PVMEnrolmentLock` (a cluster test holds it up to ~3½ minutes).
    @Test(.timeLimit(.minutes(6)))
    func frontEndRelaysThroughAPVMSpawnedWorkerAndItsDrainLosesNothing() async throws {
        let logger = Logger(label: "worker-over-pvm") { StreamLogHandler.standardError(label: $0) }
        let local = try WebServer(["--concurrency", "16"])
        defer { local.stop() }
        let daemon = try await PVMDaemon.start(logger: logger)
        let manifest = try writeManifest(concurrency: 16)
        defer { try? FileManager.default.removeItem(atPath: manifest) }
        do {
            try await PVMEnrolmentLock.shared.withLock {
                try await PVMEngine.withAttached(socketPath: daemon.socketPath, logger: logger) { engine in
                    try await exercise(engine: engine, manifest: manifest, local: local, logger: logger)
                }
            }
        } catch {
            try? await daemon.stop()
            throw error
        }
        try await daemon.stop()
    }

    private func exercise(engine: PVMEngine, manifest: String, local: WebServer, logger: Logger) async throws {
        let shoal = try ProcessRunner.builtProduct("shoal").path
        let worker = try await engine.spawn(shoal, arguments: [
            "worker", manifest, "--pvm", "--listen-host", "127.0.0.1", "--advertise", "127.0.0.1", "--log-level", "warning",
        ])
        try await engine.watch(tasks: [worker])
        let ready = try await engine.receive(from: worker, tag: WorkerMessage.Tag.ready.rawValue, timeout: .seconds(30))
        guard case .ready(let host, let port)? = WorkerMessage(tag: ready.tag, fields: ready.fields) else {
            throw TestFailure("not a ready message: \(ready.fields)")
        }
        #expect(host == "127.0.0.1")

        let relay = HTTPRelayServer.serviceManager(local: local.address, configuration: testConfiguration(), logger: logger)
        try relay.members.addBackend(name: "c1", address: try SocketAddress(ipAddress: host, port: port))
        let address = try await relay.start()
        let relayPort = try #require(address.port)
        defer { Task { await relay.shutdown(gracePeriod: .seconds(1)) } }

        // Two hops, a 500 KB document intact.
        let big = try await HTTPTestConnection.with(port: relayPort) { try await $0.request(.GET, "/doc?size=512000") }
        #expect(big.status == .ok)
        #expect(DocumentPattern.matches(big.body, size: 512_000))

        // Slow requests in flight on the worker, then the paper's removal: the front-end stops
        // routing there, the worker is told to drain, and reports drained only when all finished
        // — reporting its load meanwhile, so the broker knows it is alive through a long drain.
        let clock = ContinuousClock()
        let slowStart = clock.now
        let slow = (0..<8).map { _ in
            Task { () throws -> (HTTPResponseStatus, ContinuousClock.Instant) in
                let response = try await HTTPTestConnection.with(port: relayPort) { try await $0.request(.GET, "/doc?size=1024&delay_ms=2000") }
                return (response.status, clock.now)
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(relay.members.loads().first { $0.name == "c1" }?.inFlight == 8)
        relay.members.removeBackend(named: "c1")
        // Meanwhile new requests keep arriving and go to the local instance.
        let steady = Task { () throws -> Int in
            var served = 0
            try await HTTPTestConnection.with(port: relayPort) { connection in
                for _ in 0..<40 {
                    let response = try await connection.request(.GET, "/doc?size=1024")
                    if response.status == .ok { served += 1 }
                }
            }
            return served
        }
        _ = await takeLoadReports(from: worker, engine: engine)
        try await engine.send(WorkerMessage.drain.message, to: worker)
        _ = try await engine.receive(from: worker, tag: WorkerMessage.Tag.drained.rawValue, timeout: .seconds(20))
        let drainedAt = clock.now
        let reportsWhileDraining = await takeLoadReports(from: worker, engine: engine)
        #expect(reportsWhileDraining >= 2, "a draining worker reports its load every 500 ms until drained")

        // The worker waited out the 2 s of every in-flight request before saying drained;
        // each answer then only had the front-end's hop left to travel.
        #expect(drainedAt - slowStart >= .milliseconds(1990), "drained before its in-flight requests could finish")
        for request in slow {
            let (status, finishedAt) = try await request.value
            #expect(status == .ok)
            #expect(finishedAt - drainedAt < .milliseconds(200))
        }
        let served = try await steady.value
        #expect(served == 40)

        // Drained, the worker ends its service instance and itself: PVM tells us.
        let exited = await engine.events.first { event in
            if case .taskExited(let task) = event { return task == worker }
            return false
        }
        #expect(exited != nil)
    }

    /// Takes the load reports the worker sent and nobody read yet; how many.
    private func takeLoadReports(from worker: PVMTaskID, engine: PVMEngine) async -> Int {
        var count = 0
        while (try? await engine.receive(from: worker, tag: WorkerMessage.Tag.load.rawValue, timeout: .milliseconds(1))) != nil {
            count += 1
        }
        return count
    }

    private func writeManifest(concurrency: Int) throws -> String {
        let webserver = try ProcessRunner.builtProduct("shoal-webserver").path
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-worker-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).yaml").path
        try """
            name: t
            command: \(webserver)
            args: ["--port", "{port}", "--concurrency", "\(concurrency)"]
            port: 18999
            concurrency: \(concurrency)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
