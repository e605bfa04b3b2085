import Foundation
import NIOCore
import ShoalCore
import ShoalInstance
import ShoalProxy
import ShoalTesting
import Testing

/// `protocol: tcp`: Debian's unmodified `redis-server`, used by its own `redis-cli`, through a
/// front-end alone and through a front-end and a worker (both relays in TCP mode, as a leased
/// back-end runs them; the lease itself is not made here).
extension ProxyTests {
    @Suite struct TCPMode {
        static func redis() async throws -> ServiceInstance {
            let manifest = ServiceManifest(
                name: "redis", command: "redis-server",
                arguments: ["--port", "{port}", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                port: 6379, serviceProtocol: .tcp)
            return try await ServiceInstance.start(manifest, logger: LogCapture().logger)
        }

        static func cli(_ port: Int, _ arguments: String...) throws -> String {
            let output = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/redis-cli"), ["-p", "\(port)"] + arguments, timeout: 10)
            return output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        static func tcp(_ change: (inout RelayConfiguration) -> Void = { _ in }) -> RelayConfiguration {
            testConfiguration {
                $0.serviceProtocol = .tcp
                change(&$0)
            }
        }

        @Test func redisThroughAFrontEndAlone() async throws {
            let redis = try await Self.redis()
            let relay = HTTPRelayServer.serviceManager(
                local: try SocketAddress(ipAddress: redis.host, port: redis.port), configuration: Self.tcp(), logger: LogCapture().logger)
            try await relay.start()

            #expect(try Self.cli(relay.port, "SET", "fish", "shoal") == "OK")
            #expect(try Self.cli(relay.port, "GET", "fish") == "shoal")
            // Load is connections in progress: one open connection is one in flight.
            let socket = try BlockingSocket(port: relay.port)
            try socket.send("PING\r\n")
            #expect(socket.receiveText(until: "\r\n", seconds: 5) == "+PONG\r\n")
            #expect(relay.members.local?.inFlight == 1)
            try socket.send("PING\r\n")
            #expect(socket.receiveText(until: "\r\n", seconds: 5) == "+PONG\r\n")
            socket.close()
            #expect(try await Pooling.eventually(within: 2) { relay.members.local?.inFlight == 0 && relay.admission.inFlight == 0 })

            await relay.shutdown()
            await redis.stop()
        }

        /// As a leased back-end: the worker has the lease's secret; the front-end's first line on
        /// each connection presents it, and the worker strips it before redis sees anything.
        @Test func redisThroughAFrontEndAndAWorker() async throws {
            let redis = try await Self.redis()
            let secret = LeaseSecret.random()
            let worker = HTTPRelayServer.worker(
                upstream: try SocketAddress(ipAddress: redis.host, port: redis.port), limits: .init(maxConcurrent: 4, maxQueued: 4),
                configuration: Self.tcp { $0.leaseSecret = secret; $0.requestHeadTimeout = .milliseconds(500) }, logger: LogCapture().logger)
            let workerAddress = try await worker.start()
            let frontend = HTTPRelayServer.serviceManager(local: nil, configuration: Self.tcp(), logger: LogCapture().logger)
            try await frontend.start()
            let backend = try frontend.members.addBackend(name: "lease-1", address: workerAddress, leaseSecret: secret)

            // Straight to the worker: closed unanswered — speaking redis, with a wrong line, or
            // saying nothing (the head timeout) — and redis never sees a connection.
            for opening in ["PING\r\n", "SHOAL \(LeaseSecret.random().text)\r\nPING\r\n", ""] {
                let direct = try BlockingSocket(port: worker.port)
                if !opening.isEmpty { try direct.send(opening) }
                #expect(direct.receiveText(until: "\r\n", seconds: 3) == "")
                direct.close()
            }
            #expect((try? Self.cli(worker.port, "PING")) != "PONG")
            #expect(worker.statistics.localResponsesByCode.first { $0.code == .forbidden }?.count == 4)
            #expect(worker.statistics.upstreamConnectionsOpened == 0)
            #expect(worker.admission.inFlight == 0)

            #expect(try Self.cli(frontend.port, "SET", "fish", "shoal") == "OK")
            #expect(try Self.cli(frontend.port, "GET", "fish") == "shoal")
            let socket = try BlockingSocket(port: frontend.port)
            try socket.send("GET fish\r\n")
            #expect(socket.receiveText(until: "shoal\r\n", seconds: 5) == "$5\r\nshoal\r\n")
            #expect(backend.inFlight == 1)
            #expect(worker.admission.running == 1)
            socket.close()
            #expect(try await Pooling.eventually(within: 2) { backend.inFlight == 0 && worker.admission.inFlight == 0 })

            await frontend.shutdown()
            await worker.shutdown()
            await redis.stop()
        }

        @Test func drainRefusesNewConnectionsAndWaitsForOpenOnesUpToItsTimeout() async throws {
            let redis = try await Self.redis()
            let worker = HTTPRelayServer.worker(
                upstream: try SocketAddress(ipAddress: redis.host, port: redis.port), limits: .init(maxConcurrent: 4, maxQueued: 4),
                configuration: Self.tcp { $0.shutdownGracePeriod = .seconds(1) }, logger: LogCapture().logger)
            try await worker.start()
            let open = try BlockingSocket(port: worker.port)
            try open.send("PING\r\n")
            #expect(open.receiveText(until: "\r\n", seconds: 5) == "+PONG\r\n")

            let start = ContinuousClock.now
            async let drain: Void = worker.drain()
            try await Task.sleep(for: .milliseconds(200))
            // A new connection is closed unanswered; the open one still works.
            let late = try BlockingSocket(port: worker.port)
            try? late.send("PING\r\n")
            #expect(late.receiveText(until: "\r\n", seconds: 2) == "")
            try open.send("PING\r\n")
            #expect(open.receiveText(until: "\r\n", seconds: 5) == "+PONG\r\n")
            try await drain
            #expect(elapsed(since: start) >= 0.9)
            #expect(open.receiveText(until: "never", seconds: 2) == "")  // Closed by the drain.
            #expect(worker.admission.inFlight == 0)

            await worker.shutdown()
            await redis.stop()
        }

        /// A connection waiting for admission gets the queue timeout HTTP requests have: closed
        /// unanswered when it passes, served when its turn comes first.
        @Test func aQueuedConnectionWaitsNoLongerThanTheQueueTimeout() async throws {
            let redis = try await Self.redis()
            let worker = HTTPRelayServer.worker(
                upstream: try SocketAddress(ipAddress: redis.host, port: redis.port),
                limits: .init(maxConcurrent: 1, maxQueued: 1, queueTimeout: .milliseconds(600)),
                configuration: Self.tcp(), logger: LogCapture().logger)
            try await worker.start()
            let first = try BlockingSocket(port: worker.port)
            try first.send("PING\r\n")
            #expect(first.receiveText(until: "\r\n", seconds: 5) == "+PONG\r\n")

            // The second waits its turn, sees none within the timeout, and is closed.
            let second = try BlockingSocket(port: worker.port)
            try second.send("PING\r\n")
            #expect(try await Pooling.eventually(within: 2) { worker.admission.queued == 1 })
            let start = ContinuousClock.now
            #expect(second.receiveText(until: "\r\n", seconds: 5) == "")
            #expect((0.2...2.5).contains(elapsed(since: start)))
            #expect(worker.admission.queued == 0)
            #expect(worker.admission.inFlight == 1)

            // A third's turn comes before its timeout (the first leaves): it is served.
            let third = try BlockingSocket(port: worker.port)
            try third.send("PING\r\n")
            #expect(try await Pooling.eventually(within: 2) { worker.admission.queued == 1 })
            first.close()
            #expect(third.receiveText(until: "\r\n", seconds: 5) == "+PONG\r\n")
            try await Task.sleep(for: .milliseconds(800))  // Past its deadline: still open, still served.
            try third.send("PING\r\n")
            #expect(third.receiveText(until: "\r\n", seconds: 5) == "+PONG\r\n")
            third.close()
            #expect(try await Pooling.eventually(within: 2) { worker.admission.inFlight == 0 })

            await worker.shutdown()
            await redis.stop()
        }
    }
}
