import NIOCore
import NIOHTTP1
import ShoalProxy
import ShoalTesting
import Testing

/// The worker: one upstream, a concurrency cap with a bounded queue, and drain.
extension ProxyTests {
    @Suite struct Worker {
        @Test func concurrencyLimitQueuesThenRefusesWith503() async throws {
            let web = try WebServer(["--concurrency", "64"])
            let logs = LogCapture()
            let worker = HTTPRelayServer.worker(
                upstream: web.address, limits: Admission.Limits(maxConcurrent: 2, maxQueued: 2),
                configuration: testConfiguration(), logger: logs.logger)
            try await worker.start()
            let port = worker.port
            let start = ContinuousClock.now

            // Six at once, 400 ms each: two run, two wait their turn, two are refused.
            async let peak: Int = {
                var peak = 0
                while elapsed(since: start) < 0.7 {
                    peak = max(peak, worker.admission.running)
                    try? await Task.sleep(for: .milliseconds(5))
                }
                return peak
            }()
            let answers = try await withThrowingTaskGroup(of: (HTTPTestResponse, Double).self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let response = try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/doc?size=10&delay_ms=400") }
                        return (response, elapsed(since: start))
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let ok = answers.filter { $0.0.status == .ok }
            let refused = answers.filter { $0.0.status == .serviceUnavailable }
            #expect(ok.count == 4)
            #expect(refused.count == 2)
            #expect(await peak == 2)
            for (response, at) in refused {
                #expect(response.headers.first(name: "x-shoal-error") == "queue-full")
                #expect(response.text.hasPrefix("503 Service Unavailable: 2 requests running and 2 waiting"))
                #expect(at < 0.38)  // Refused at once, not after a 400 ms turn.
            }
            // The queued two waited for a turn: they finished a whole request time later.
            #expect(ok.map(\.1).max()! > 0.75)
            #expect(logs.contains("queue-full"))
            #expect(worker.admission.inFlight == 0)

            await worker.shutdown()
            web.stop()
        }

        @Test func drainFinishesInFlightAndRefusesNewRequests() async throws {
            let web = try WebServer()
            let worker = HTTPRelayServer.worker(
                upstream: web.address, limits: Admission.Limits(maxConcurrent: 4, maxQueued: 8),
                configuration: testConfiguration(), logger: LogCapture().logger)
            try await worker.start()
            let port = worker.port
            let start = ContinuousClock.now

            // Six requests of 300 ms: four run, two queue.
            async let slow: [Double] = withThrowingTaskGroup(of: Double.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let response = try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/doc?size=10&delay_ms=300") }
                        guard response.status == .ok else { throw TestFailure("in-flight request got \(response.status)") }
                        return elapsed(since: start)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            while worker.admission.inFlight < 6, elapsed(since: start) < 5 { try await Task.sleep(for: .milliseconds(5)) }

            // A keep-alive connection opened before the drain order.
            let drainedAt = try await HTTPTestConnection.with(port: port) { connection in
                #expect(try await connection.request(.GET, "/health").status == .ok)
                async let drained: Double = {
                    try await worker.drain()
                    return elapsed(since: start)
                }()
                try await Task.sleep(for: .milliseconds(50))
                let refused = try await connection.request(.GET, "/doc?size=10")
                #expect(refused.status == .serviceUnavailable)
                #expect(refused.headers.first(name: "x-shoal-error") == "draining")
                #expect(refused.headers.first(name: "connection") == "close")

                return try await drained
            }
            let finished = try await slow
            #expect(finished.count == 6)
            #expect(finished.allSatisfy { $0 <= drainedAt + 0.25 })  // A client sees its end a moment after the relay counted it done.
            #expect(drainedAt > 0.55)  // The queued two ran after the first four.
            #expect(worker.admission.inFlight == 0)

            // A new connection is still accepted, and told plainly.
            let late = try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/doc?size=10") }
            #expect(late.status == .serviceUnavailable)

            await worker.shutdown()
            web.stop()
        }

        @Test func shutdownFinishesInFlightRequests() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: web.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()
            let port = relay.port
            let start = ContinuousClock.now

            async let slow: [HTTPResponseStatus] = withThrowingTaskGroup(of: HTTPResponseStatus.self) { group in
                for _ in 0..<4 {
                    group.addTask { try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/doc?size=10&delay_ms=300") }.status }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            while relay.admission.inFlight < 4, elapsed(since: start) < 5 { try await Task.sleep(for: .milliseconds(5)) }
            await relay.shutdown()
            #expect(elapsed(since: start) > 0.25)
            #expect(try await slow == [.ok, .ok, .ok, .ok])
            await #expect(throws: (any Error).self) {
                try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/health") }
            }
            web.stop()
        }
    }
}
