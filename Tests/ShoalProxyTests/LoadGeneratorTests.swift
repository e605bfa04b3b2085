import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import ShoalTesting
import Testing

/// The load generator the integration tests count failures with: it must count every request,
/// and call a failure a failure and nothing else.
extension ProxyTests {
    @Suite struct LoadGeneratorTests {
        @Test func keepAliveLoadAgainstTheWebServerAllSucceeds() async throws {
            let server = try WebServer()
            let load = LoadGenerator.start(host: "127.0.0.1", port: server.port, path: "/doc?size=1000", connections: 4)
            try await Task.sleep(for: .seconds(1))
            let counts = load.stop()
            server.stop()

            #expect(counts.succeeded > 20)
            #expect(counts.failed == 0, "last error: \(load.lastError ?? "none")")
            #expect(counts.sent == counts.succeeded + counts.failed)
            #expect(counts.inFlight == 0)
            #expect(counts.statuses == [200: counts.succeeded])
            #expect(counts.errors.isEmpty)
            #expect(counts.members == ["-": counts.succeeded])
            #expect(counts.connectionsOpened == 4)  // Kept alive throughout.
            #expect(counts.staleConnectionRetries == 0)
            #expect(load.lastError == nil)
            let latencies = try #require(load.latencies())
            #expect(latencies.count == counts.succeeded)
            #expect(latencies.mean > 0)
            #expect(latencies.p50 <= latencies.p99 && latencies.p99 <= latencies.max)
        }

        @Test func megabyteBodiesAreReadWhole() async throws {
            let server = try WebServer()
            let load = LoadGenerator.start(host: "localhost", port: server.port, path: "/doc?size=1048576", connections: 2)
            #expect(await load.waitUntil(succeeded: 10, timeout: .seconds(20)))
            let counts = load.stop()
            server.stop()

            #expect(counts.failed == 0, "last error: \(load.lastError ?? "none")")
            #expect(counts.sent == counts.succeeded)
            #expect(counts.connectionsOpened == 2)
        }

        @Test func closedPortCountsConnectFailures() async throws {
            let port = try await closedPort()
            let load = LoadGenerator.start(host: "127.0.0.1", port: port, path: "/", connections: 2, pause: .milliseconds(5))
            try await Task.sleep(for: .milliseconds(300))
            let stopping = ContinuousClock.now
            let counts = load.stop()

            #expect(elapsed(since: stopping) < 5)
            #expect(counts.failed > 5)
            #expect(counts.succeeded == 0)
            #expect(counts.sent == counts.failed)
            #expect(counts.errors == ["connect: Connection refused": counts.failed])
            #expect(counts.statuses.isEmpty)
            #expect(load.lastError == "connect: Connection refused")
            #expect(load.latencies() == nil)
        }

        @Test func non2xxStatusIsAFailureWithThatStatus() async throws {
            // The web server serves a document for any path; a bad query is what it refuses.
            let server = try WebServer()
            let load = LoadGenerator.start(host: "127.0.0.1", port: server.port, path: "/doc?size=lots", connections: 2)
            try await Task.sleep(for: .milliseconds(300))
            let counts = load.stop()
            server.stop()

            #expect(counts.failed > 5)
            #expect(counts.succeeded == 0)
            #expect(counts.sent == counts.failed)
            #expect(counts.statuses == [400: counts.failed])
            #expect(counts.errors == ["status 400": counts.failed])
            #expect(counts.connectionsOpened == 2)  // A 400 doesn't cost the connection.
            #expect(load.lastError == "status 400")
        }

        @Test func chunkedBodiesAndClosesBetweenRequestsAreNotFailures() async throws {
            let server = try await ScriptedServer.start()
            let port = try #require(server.localAddress?.port)
            let load = LoadGenerator.start(host: "127.0.0.1", port: port, path: "/", connections: 3, pause: .milliseconds(2))
            #expect(await load.waitUntil(succeeded: 60, timeout: .seconds(10)))
            let counts = load.stop()
            try await server.close()

            #expect(counts.failed == 0, "last error: \(load.lastError ?? "none")")
            #expect(counts.sent == counts.succeeded)
            #expect(counts.members["a", default: 0] > 0 && counts.members["-", default: 0] > 0)
            // Two requests per connection (but the last ones may have had only one).
            #expect((0...3).contains(counts.connectionsOpened * 2 - counts.succeeded))
        }

        @Test func timeoutIsAFailure() async throws {
            let server = try WebServer()
            let load = LoadGenerator.start(host: "127.0.0.1", port: server.port, path: "/doc?delay_ms=2000", connections: 1,
                                           requestTimeout: .milliseconds(200))
            try await Task.sleep(for: .milliseconds(500))
            let counts = load.stop()
            server.stop()

            #expect(counts.failed >= 1)
            #expect(counts.succeeded == 0)
            #expect(counts.errors == ["read: timed out": counts.failed])
        }

        @Test func connectionsGrowAndShrink() async throws {
            let server = try WebServer()
            let load = LoadGenerator.start(host: "127.0.0.1", port: server.port, path: "/doc?size=10", connections: 1)
            #expect(await load.waitUntil(succeeded: 10, timeout: .seconds(5)))
            load.setConnections(3)
            // A busy machine may take a while to start the two new threads.
            let deadline = ContinuousClock.now + .seconds(10)
            while load.counts.connectionsOpened < 3, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            load.setConnections(1)
            try await Task.sleep(for: .milliseconds(200))
            let counts = load.stop()
            server.stop()

            #expect(counts.failed == 0, "last error: \(load.lastError ?? "none")")
            #expect(counts.connectionsOpened == 3)
        }
    }
}

/// A member that answers the first request on every connection chunked, as `X-Shoal-Member: a`,
/// and the second with a length and then closes: with `Connection: close` on every other
/// connection, without notice on the rest (the client sees that while idle).
private enum ScriptedServer {
    private static let connections = Atomic(0)

    static func start() async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let announcesClose = connections.add(1, ordering: .relaxed).newValue % 2 == 0
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(announcesClose: announcesClose))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let announcesClose: Bool
        private var answered = 0

        init(announcesClose: Bool) {
            self.announcesClose = announcesClose
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            answered += 1
            var headers = HTTPHeaders()
            let body = ByteBuffer(string: String(repeating: "x", count: 3000))
            if answered == 1 {
                headers.add(name: "Transfer-Encoding", value: "chunked")
                headers.add(name: "X-Shoal-Member", value: "a")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                for _ in 0..<3 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            headers.add(name: "Content-Length", value: String(body.readableBytes))
            if announcesClose { headers.add(name: "Connection", value: "close") }
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
