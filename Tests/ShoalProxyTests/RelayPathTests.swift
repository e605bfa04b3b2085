import Foundation
import NIOCore
import NIOHTTP1
import ShoalProxy
import ShoalTesting
import Testing

/// client → relay → the local service instance (a real `shoal-webserver` process).
extension ProxyTests {
    @Suite struct RelayPath {
        @Test func relaysToTheLocalService() async throws {
            let web = try WebServer()
            let logs = LogCapture()
            let relay = HTTPRelayServer.serviceManager(local: web.address, configuration: testConfiguration(), logger: logs.logger)
            try await relay.start()

            let (document, health) = try await HTTPTestConnection.with(port: relay.port) { connection in
                (try await connection.request(.GET, "/doc?size=1024"), try await connection.request(.GET, "/health"))
            }
            #expect(document.status == .ok)
            #expect(DocumentPattern.matches(document.body, size: 1024))
            #expect(health.status == .ok)
            #expect(health.text == "ok\n")
            #expect(relay.members.local?.inFlight == 0)

            await relay.shutdown()
            web.stop()
        }

        /// Every event loop listens on the port with its own socket (`SO_REUSEPORT`), yet a
        /// second relay must not join a port another one listens on: it would quietly take part
        /// of its connections. It fails to start instead, and the first serves every connection.
        @Test func aPortInUseIsRefusedNotShared() async throws {
            let web = try WebServer()
            let first = HTTPRelayServer.serviceManager(local: web.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await first.start()
            let port = first.port
            let second = HTTPRelayServer.serviceManager(
                local: web.address, configuration: testConfiguration { $0.port = port }, logger: LogCapture().logger)
            await #expect(throws: IOError.self) { try await second.start() }
            #expect(second.localAddress == nil)

            for _ in 0..<16 {
                let response = try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/health") }
                #expect(response.status == .ok)
            }
            #expect(first.statistics.clientConnectionsAccepted == 16)
            #expect(second.statistics.clientConnectionsAccepted == 0)

            await first.shutdown()
            web.stop()
        }

        @Test func bigResponseBodyArrivesIntact() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: web.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()

            let size = 500 * 1024
            let responses = try await HTTPTestConnection.with(port: relay.port) { connection in
                [try await connection.request(.GET, "/doc?size=\(size)"), try await connection.request(.GET, "/doc?size=\(size)")]
            }
            for response in responses {
                #expect(response.status == .ok)
                #expect(response.headers.first(name: "content-length") == String(size))
                #expect(DocumentPattern.matches(response.body, size: size))
            }

            await relay.shutdown()
            web.stop()
        }

        @Test(arguments: [false, true])
        func multiMegabytePostIsStreamedAndEchoed(chunked: Bool) async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: web.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()

            let size = 6 * 1024 * 1024 + 123
            let response = try await HTTPTestConnection.with(port: relay.port) { connection in
                try await connection.postStreaming("/echo", size: size, chunkSize: 48 * 1024, chunked: chunked)
            }
            #expect(response.status == .ok)
            #expect(DocumentPattern.matches(response.body, size: size))

            await relay.shutdown()
            web.stop()
        }

        @Test func keepAliveReusesOneMemberConnection() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: web.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()

            let (statuses, openDuring) = try await HTTPTestConnection.with(port: relay.port) { connection in
                var statuses: [HTTPResponseStatus] = []
                for index in 0..<100 {
                    statuses.append(try await connection.request(.GET, "/doc?size=\(index * 10)").status)
                }
                return (statuses, establishedConnections(toPort: web.port))
            }
            #expect(statuses.allSatisfy { $0 == .ok })
            #expect(relay.statistics.upstreamConnectionsOpened == 1)
            #expect(relay.statistics.clientConnectionsAccepted == 1)
            // Seen by the kernel, not by the relay: one connection to the web server (plus its
            // server-side twin, which /proc/net/tcp lists with the ports swapped, so not counted).
            #expect(openDuring == 1)

            await relay.shutdown()
            web.stop()
        }

        @Test func headRequestsAndHTTP10Clients() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: web.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()

            let (head, after) = try await HTTPTestConnection.with(port: relay.port) { connection in
                (try await connection.request(.HEAD, "/doc?size=1000"), try await connection.request(.GET, "/doc?size=10"))
            }
            #expect(head.status == .ok)
            #expect(head.headers.first(name: "content-length") == "1000")
            #expect(head.body.readableBytes == 0)
            #expect(DocumentPattern.matches(after.body, size: 10))

            // HTTP/1.0 without keep-alive: answered in 1.0, then closed.
            let raw = try await RawConnection.with(port: relay.port) { connection in
                try await connection.send("GET /doc?size=100 HTTP/1.0\r\n\r\n")
                return try await connection.readToEnd()
            }
            #expect(raw.hasPrefix("HTTP/1.0 200 OK\r\n"))
            #expect(raw.hasSuffix("\r\n\r\n" + String(decoding: DocumentPattern.alphabet[0..<64] + DocumentPattern.alphabet[0..<36], as: UTF8.self)))

            await relay.shutdown()
            web.stop()
        }

        @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: web.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()

            let raw = try await RawConnection.with(port: relay.port) { connection in
                try await connection.send(
                    "GET /doc?size=5&delay_ms=50 HTTP/1.1\r\nHost: a\r\n\r\n"
                        + "GET /doc?size=3 HTTP/1.1\r\nHost: a\r\n\r\n"
                        + "GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                return try await connection.readToEnd()
            }
            let bodies = raw.components(separatedBy: "\r\n\r\n").dropFirst().map { $0.prefix { $0 != "H" } }
            #expect(raw.components(separatedBy: "HTTP/1.1 200 OK").count == 4)
            #expect(bodies == ["01234", "012", "ok\n"])

            await relay.shutdown()
            web.stop()
        }

        /// The chunked body reaches the member as the client framed it (extensions, trailers): the
        /// service, which decodes it with its own parser, echoes exactly the data.
        @Test func chunkedBodyWithExtensionsAndTrailersPassesAsItCame() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: web.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()

            let raw = try await RawConnection.with(port: relay.port) { connection in
                // An empty line before the request line, split between two sends, is ignored (RFC 9112 §2.2).
                try await connection.send("\r\n\r")
                try await connection.send("\nPOST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                try await connection.send("5;name=value;q=\"a \\\"b\"\r\nhello\r\n6\r\n world\r\n")
                try await connection.send("0\r\nx-checksum: 1234\r\n\r\n")
                return try await connection.readToEnd()
            }
            #expect(raw.hasPrefix("HTTP/1.1 200 OK\r\n"), "got \(raw.debugDescription)")
            let answer = ProxyTests.SplitDelivery.responses(Array(raw.utf8), heads: [false])?.first
            #expect(answer?.hasSuffix("\n\nhello world") == true, "got \(raw.debugDescription)")

            await relay.shutdown()
            web.stop()
        }

        @Test func expectContinueIsAnsweredByTheRelay() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: web.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()

            let raw = try await RawConnection.with(port: relay.port) { connection in
                try await connection.send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
                try await connection.read(until: "HTTP/1.1 100 Continue\r\n\r\n")
                try await connection.send("hello")
                return try await connection.readToEnd()
            }
            #expect(raw.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"))
            #expect(raw.hasSuffix("\r\n\r\nhello"))

            await relay.shutdown()
            web.stop()
        }

        @Test func hopByHopHeadersAreDroppedAndForwardingHeadersAdded() async throws {
            let echo = try await HeaderEchoServer.start()
            let relay = HTTPRelayServer.serviceManager(
                local: echo.localAddress!, configuration: testConfiguration { $0.via = "1.1 shoal" }, logger: LogCapture().logger)
            try await relay.start()

            let response = try await HTTPTestConnection.with(port: relay.port) { connection in
                try await connection.request(.GET, "/x?y=1", headers: [
                    ("Connection", "keep-alive, X-Private"), ("Keep-Alive", "timeout=9"), ("X-Private", "secret"),
                    ("Proxy-Authorization", "Basic Zm9v"), ("TE", "trailers"), ("Upgrade", "websocket"),
                    ("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-Proto", "https"), ("X-Keep", "kept"),
                ])
            }
            let lines = Set(response.text.split(separator: "\n").map(String.init))
            #expect(lines.contains("GET /x?y=1 HTTP/1.1"))
            #expect(lines.contains("host: 127.0.0.1:\(relay.port)"))
            #expect(lines.contains("x-keep: kept"))
            #expect(lines.contains("x-forwarded-for: 10.0.0.1, 127.0.0.1"))
            #expect(lines.contains("x-forwarded-proto: http"))  // Not trusted at the edge.
            #expect(lines.contains("via: 1.1 shoal"))
            for dropped in ["connection", "keep-alive", "x-private", "proxy-authorization", "te", "upgrade"] {
                #expect(!lines.contains { $0.hasPrefix(dropped + ":") }, "\(dropped) was forwarded")
            }
            #expect(response.headers.first(name: "x-end") == "ok")
            #expect(response.headers.first(name: "via") == "1.1 shoal")
            for dropped in ["keep-alive", "x-hop", "proxy-foo", "connection"] {
                #expect(!response.headers.contains(name: dropped), "\(dropped) reached the client")
            }

            await relay.shutdown()
            try await echo.close()
        }
    }
}
