import NIOCore
import NIOHTTP1
import ShoalCore
import ShoalProxy
import ShoalTesting
import Synchronization
import Testing

/// The service manager's members change under load: nothing is lost.
extension ProxyTests {
    @Suite struct Membership {
        /// Tally of a load run.
        final class Tally: Sendable {
            let stop = Atomic<Bool>(false)
            let ok = Atomic<Int>(0)
            let failed = Mutex<[String]>([])
        }

        /// `clients` connections, each sending requests back to back (keep-alive) until `stop`
        /// is set, or `maxRequests` each, or `maxSeconds`: bounded in count and in time.
        static func load(
            port: Int, clients: Int, uri: String, size: Int, maxRequests: Int, maxSeconds: Double,
            tally: Tally
        ) async {
            let start = ContinuousClock.now
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<clients {
                    group.addTask {
                        do {
                            try await HTTPTestConnection.with(port: port, timeout: .seconds(Int64(maxSeconds) + 10)) { connection in
                                for _ in 0..<maxRequests {
                                    if tally.stop.load(ordering: .relaxed) || elapsed(since: start) > maxSeconds { break }
                                    let response = try await connection.request(.GET, uri)
                                    if response.status == .ok, DocumentPattern.matches(response.body, size: size) {
                                        tally.ok.add(1, ordering: .relaxed)
                                    } else {
                                        tally.failed.withLock { $0.append("\(response.status) \(response.text.prefix(100))") }
                                    }
                                }
                            }
                        } catch {
                            tally.failed.withLock { $0.append("\(error)") }
                        }
                    }
                }
            }
        }

        @Test func membersAddedAndRemovedUnderLoadLoseNoRequest() async throws {
            let local = try WebServer()
            let backendB = try WebServer()
            let backendC = try WebServer()
            let relay = HTTPRelayServer.serviceManager(
                local: local.address, dispatcher: Dispatcher(policy: .paper, thresholds: LoadThresholds(low: 1, high: 4)),
                configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()
            let members = relay.members

            let tally = Tally()
            async let loadDone: Void = Self.load(
                port: relay.port, clients: 6, uri: "/doc?size=4096&delay_ms=1", size: 4096,
                maxRequests: 5000, maxSeconds: 20, tally: tally)

            let step: Duration = .milliseconds(250)
            try await Task.sleep(for: step)
            let b = try members.addBackend(name: "b", address: backendB.address)
            try await Task.sleep(for: step)
            let c = try members.addBackend(name: "c", address: backendC.address)
            try await Task.sleep(for: step)
            members.removeBackend(named: "b")
            try await b.drained()
            try await Task.sleep(for: step)
            let b2 = try members.addBackend(name: "b2", address: backendB.address)
            try await Task.sleep(for: step)
            members.removeBackend(named: "c")
            try await c.drained()
            try await Task.sleep(for: step)
            members.removeBackend(named: "b2")
            try await b2.drained()
            try await Task.sleep(for: step)
            tally.stop.store(true, ordering: .relaxed)
            await loadDone

            let failures = tally.failed.withLock { $0 }
            #expect(failures.isEmpty, "failed requests: \(failures.prefix(5))")
            #expect(tally.ok.load(ordering: .relaxed) > 200)
            #expect(b.requestsStarted > 0 && c.requestsStarted > 0 && b2.requestsStarted > 0)
            #expect(members.loads().map(\.inFlight) == [0])
            #expect(relay.statistics.localResponses == 0)

            await relay.shutdown()
            for server in [local, backendB, backendC] { server.stop() }
        }

        @Test func drainedReturnsOnlyAfterEveryInFlightRequestFinished() async throws {
            let local = try WebServer()
            let backend = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: local.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()
            let member = try relay.members.addBackend(name: "c1", address: backend.address)
            let port = relay.port
            let start = ContinuousClock.now

            // Eight slow requests: all go to the back-end (back-ends exist, so not to the local one).
            async let slow: [(HTTPResponseStatus, Double)] = withThrowingTaskGroup(of: (HTTPResponseStatus, Double).self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let response = try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/doc?size=100&delay_ms=300") }
                        return (response.status, elapsed(since: start))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // Wait until all eight are in flight at the back-end, then remove it.
            while member.inFlight < 8, elapsed(since: start) < 5 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(member.inFlight == 8)
            relay.members.removeBackend(named: "c1")
            let removedAt = elapsed(since: start)

            // New requests after the removal go to the local member.
            let after = try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/doc?size=10") }
            #expect(after.status == .ok)
            #expect(relay.members.local?.requestsStarted == 1)
            #expect(member.requestsStarted == 8)

            try await member.drained()
            let drainedAt = elapsed(since: start)
            #expect(member.inFlight == 0)
            let results = try await slow
            #expect(results.count == 8)
            #expect(results.allSatisfy { $0.0 == .ok })
            // drained() waited for the 300 ms requests: it returned well after the removal, and
            // no answer reached its client much after it (a client sees the end a moment after
            // the relay counted the request done).
            #expect(drainedAt - removedAt > 0.15)
            #expect(results.allSatisfy { $0.1 <= drainedAt + 0.25 })

            var events = relay.members.events.makeAsyncIterator()
            #expect(await events.next() == .drained(member: "c1"))

            await relay.shutdown()
            local.stop()
            backend.stop()
        }
    
        /// The paper's data path end to end: front-end relay → worker relay on a "back-end" →
        /// its service instance; then the paper's removal order: the front-end stops routing,
        /// the member drains, the worker drains and stops.
        @Test func frontEndThroughWorkerAndThePapersRemovalOrder() async throws {
            let local = try WebServer()
            let backendService = try WebServer()
            let logs = LogCapture()
            let worker = HTTPRelayServer.worker(
                upstream: backendService.address, limits: Admission.Limits(maxConcurrent: 4, maxQueued: 16),
                configuration: testConfiguration(), logger: logs.logger)
            try await worker.start()
            let frontEnd = HTTPRelayServer.serviceManager(local: local.address, configuration: testConfiguration(), logger: logs.logger)
            try await frontEnd.start()
            let member = try frontEnd.members.addBackend(name: "c1", address: worker.localAddress!)
            let port = frontEnd.port

            let statuses = try await withThrowingTaskGroup(of: HTTPResponseStatus.self) { group in
                for _ in 0..<12 {
                    group.addTask {
                        try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/doc?size=2048&delay_ms=100") }.status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses == Array(repeating: .ok, count: 12))
            #expect(member.requestsStarted == 12)
            #expect(frontEnd.members.local?.requestsStarted == 0)

            frontEnd.members.removeBackend(named: "c1")
            try await member.drained()
            try await worker.drain()
            #expect(worker.admission.inFlight == 0)
            await worker.shutdown()
            let after = try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/doc?size=10") }
            #expect(after.status == .ok)
            #expect(frontEnd.members.local?.requestsStarted == 1)
            #expect(!logs.contains("502"))

            await frontEnd.shutdown()
            local.stop()
            backendService.stop()
        }
    }
}
