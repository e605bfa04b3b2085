import NIOCore
import NIOHTTP1
import NIOWebSocket
import ShoalCore
import ShoalProxy
import ShoalTesting
import Testing

/// `Upgrade` through the relay: a real WebSocket client (NIOWebSocket) and an ordinary
/// WebSocket echo server, through a front-end alone and through a front-end and a worker.
extension ProxyTests {
    @Suite struct Upgrade {
        /// Sends each message and reads its echo.
        static func exchange(_ messages: [String], over connection: WebSocketClient.Connection) async throws -> [String] {
            try await connection.executeThenClose { inbound, outbound in
                var echoes: [String] = []
                var frames = inbound.makeAsyncIterator()
                for message in messages {
                    try await outbound.write(WebSocketClient.text(message))
                    guard let frame = try await frames.next() else { break }
                    echoes.append(String(buffer: frame.unmaskedData))
                }
                try await outbound.write(WebSocketClient.binary([0, 1, 2, 255]))
                if let frame = try await frames.next() { echoes.append("binary \(Array(frame.unmaskedData.readableBytesView))") }
                // The close handshake: ours, the server's answer, then the server closes.
                try await outbound.write(WebSocketClient.close())
                if let frame = try await frames.next() { echoes.append("\(frame.opcode)") }
                while try await frames.next() != nil {}
                return echoes
            }
        }

        static let expected = ["hello", "über 🐟", "binary [0, 1, 2, 255]", "\(WebSocketOpcode.connectionClose)"]

        @Test func webSocketThroughAFrontEndAlone() async throws {
            let echo = try await WebSocketEchoServer()
            let relay = HTTPRelayServer.serviceManager(local: echo.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()

            let connection = try await WebSocketClient.connect(port: relay.port)
            // Counted in flight while the tunnel is open: the load manager sees it.
            #expect(relay.members.local?.inFlight == 1)
            #expect(relay.admission.inFlight == 1)
            #expect(try await Self.exchange(["hello", "über 🐟"], over: connection) == Self.expected)
            #expect(try await Pooling.eventually(within: 2) { relay.members.local?.inFlight == 0 && relay.admission.inFlight == 0 })

            await relay.shutdown()
            echo.stop()
        }

        /// As a leased back-end: the worker has the lease's secret, which the front-end presents.
        @Test func webSocketThroughAFrontEndAndAWorker() async throws {
            let echo = try await WebSocketEchoServer()
            let secret = LeaseSecret.random()
            let worker = HTTPRelayServer.worker(upstream: echo.address, limits: .init(maxConcurrent: 4, maxQueued: 4),
                                                configuration: testConfiguration { $0.leaseSecret = secret }, logger: LogCapture().logger)
            let workerAddress = try await worker.start()
            let frontend = HTTPRelayServer.serviceManager(local: nil, configuration: testConfiguration(), logger: LogCapture().logger)
            try await frontend.start()
            let backend = try frontend.members.addBackend(name: "lease-1", address: workerAddress, leaseSecret: secret)

            // Straight to the worker, the upgrade is refused like any request without the secret.
            await #expect(throws: (any Error).self) { _ = try await WebSocketClient.connect(port: worker.port) }
            #expect(worker.statistics.localResponsesByCode.first { $0.code == .forbidden }?.count == 1)

            let connection = try await WebSocketClient.connect(port: frontend.port)
            #expect(backend.inFlight == 1)
            #expect(worker.admission.running == 1)  // Holds one of the worker's concurrency slots.
            #expect(try await Self.exchange(["hello", "über 🐟"], over: connection) == Self.expected)
            #expect(try await Pooling.eventually(within: 2) { backend.inFlight == 0 && worker.admission.inFlight == 0 })

            await frontend.shutdown()
            await worker.shutdown()
            echo.stop()
        }

        @Test func drainWaitsForAnOpenWebSocketUpToItsTimeoutThenClosesIt() async throws {
            let echo = try await WebSocketEchoServer()
            let worker = HTTPRelayServer.worker(upstream: echo.address, limits: .init(maxConcurrent: 4, maxQueued: 4),
                                                configuration: testConfiguration { $0.shutdownGracePeriod = .seconds(1) },
                                                logger: LogCapture().logger)
            let workerAddress = try await worker.start()
            let frontend = HTTPRelayServer.serviceManager(local: nil, configuration: testConfiguration(), logger: LogCapture().logger)
            try await frontend.start()
            try frontend.members.addBackend(name: "lease-1", address: workerAddress)

            let connection = try await WebSocketClient.connect(port: frontend.port)
            let start = ContinuousClock.now
            async let drain: Void = worker.drain()
            let (echoes, closedAfter) = try await connection.executeThenClose { inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                // The socket still works while the drain waits for it.
                try await Task.sleep(for: .milliseconds(200))
                try await outbound.write(WebSocketClient.text("during the drain"))
                let echo = try await frames.next().map { String(buffer: $0.unmaskedData) }
                // Then the drain's time is up and the tunnel closes under it.
                while try await frames.next() != nil {}
                return ([echo], elapsed(since: start))
            }
            try await drain
            #expect(echoes == ["during the drain"])
            #expect(closedAfter >= 0.9)
            #expect(closedAfter < 5)
            #expect(worker.admission.inFlight == 0)

            await frontend.shutdown()
            await worker.shutdown()
            echo.stop()
        }

        @Test func h2cUpgradeIsServedAsPlainHTTP1() async throws {
            let echo = try await WebSocketEchoServer()
            let relay = HTTPRelayServer.serviceManager(local: echo.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()
            let response = try await HTTPTestConnection.with(port: relay.port) { connection in
                try await connection.request(.GET, "/", headers: [
                    ("Connection", "Upgrade, HTTP2-Settings"), ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
                ])
            }
            #expect(response.status == .ok)
            #expect(response.text == "upgrade: none")  // The member never saw the h2c upgrade.
            await relay.shutdown()
            echo.stop()
        }

        @Test func upgradeTheMemberDeclinesIsAnOrdinaryAnswerOnAKeptConnection() async throws {
            let echo = try await WebSocketEchoServer()  // Switches to websocket only.
            let relay = HTTPRelayServer.serviceManager(local: echo.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()
            // A raw socket: NIO's own HTTP client expects a switch once it asked for one.
            let socket = try BlockingSocket(port: relay.port)
            try socket.send("GET / HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: foo/2\r\n\r\n")
            let first = socket.receiveText(until: "upgrade: foo/2", seconds: 5)
            try socket.send("GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            let second = socket.receiveText(until: "upgrade: none", seconds: 5)
            #expect(first.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(first.hasSuffix("upgrade: foo/2"))  // Passed on; the member declined by answering.
            #expect(second.hasSuffix("upgrade: none"))
            #expect(relay.statistics.upstreamConnectionsOpened == 2)  // The first is not reused.
            await relay.shutdown()
            echo.stop()
        }
    }
}
