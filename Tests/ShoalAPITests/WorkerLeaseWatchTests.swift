import Foundation
import NIOHTTP1
import ShoalAPI
import ShoalCore
import ShoalTesting
import Testing

/// A `shoal worker` run by hand with `--lease` and `--broker`: the broker (here a stand-in that
/// answers its API) says the lease was revoked, so the worker stops by itself — and, having
/// ended normally, exits 0.
@Suite struct WorkerLeaseWatchTests {
    @Test("a worker whose lease was revoked stops by itself and exits 0")
    func strandedWorkerStops() async throws {
        let revoked = LeaseView(id: "L-000007", service: "w", frontend: "fe-w", host: "h1", state: .revoked,
                                requestedAt: 0, expiresAt: 0, revocation: .poolRestarted)
        let body = String(decoding: try JSONEncoder().encode(revoked), as: UTF8.self)
        let broker = try await TestHTTPServer.start { request in
            request.uri.hasSuffix("/leases/L-000007/worker") ? .json(.ok, body) : .json(.notFound, #"{"error": "no such lease"}"#)
        }
        let directory = NSTemporaryDirectory() + "shoal-watch-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let manifest = directory + "/w.yaml"
        try """
            name: w
            frontend: fe-w
            command: \(try ProcessRunner.builtProduct("shoal-webserver").path)
            args: ["--port", "{port}"]
            port: 8080
            """.write(toFile: manifest, atomically: true, encoding: .utf8)

        let worker = try ManagedProcess.startProduct("shoal", [
            "worker", manifest, "--listen-host", "127.0.0.1", "--lease", "L-000007",
            "--broker", "http://127.0.0.1:1,http://127.0.0.1:\(broker.port)",  // The first broker is not there.
        ], readyPrefix: "shoal worker", timeout: 30)
        let deadline = ContinuousClock.now + .seconds(15)
        while worker.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!worker.isRunning, "the worker stopped by itself")
        #expect(worker.exitStatus == 0)
        #expect(broker.requests.contains { $0.uri == "/v1/leases/L-000007/worker" })
        await broker.stop()
    }
}
