import NIOCore
import NIOHTTP1
import ShoalProxy
import ShoalTesting
import Testing

/// Requests the relay refuses itself, through raw sockets: none may crash or stall it.
extension ProxyTests {
    @Suite struct BadRequests {
        static func relay(_ web: WebServer, logs: LogCapture = LogCapture()) async throws -> HTTPRelayServer {
            let relay = HTTPRelayServer.serviceManager(
                local: web.address,
                configuration: testConfiguration {
                    $0.maxHeaderBytes = 8 * 1024
                    $0.maxRequestBodyBytes = 1024 * 1024
                    $0.requestHeadTimeout = .milliseconds(400)
                    $0.requestBodyIdleTimeout = .milliseconds(400)
                },
                logger: logs.logger)
            try await relay.start()
            return relay
        }

        static func exchange(_ port: Int, _ request: String) async throws -> String {
            try await RawConnection.with(port: port) { connection in
                try await connection.send(request)
                return try await connection.readToEnd()
            }
        }

        /// The relay still serves a good request afterwards.
        static func stillServes(_ port: Int) async throws {
            let response = try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/doc?size=5") }
            #expect(response.status == .ok)
        }

        @Test func headersOverTheLimitGet431() async throws {
            let web = try WebServer()
            let logs = LogCapture()
            let relay = try await Self.relay(web, logs: logs)
            let big = String(repeating: "a", count: 20 * 1024)
            let answer = try await Self.exchange(relay.port, "GET /doc HTTP/1.1\r\nHost: a\r\nX-Big: \(big)\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"))
            #expect(answer.contains("x-shoal-error: headers-too-large\r\n"))
            #expect(logs.contains("431"))
            try await Self.stillServes(relay.port)
            await relay.shutdown()
            web.stop()
        }

        @Test(arguments: [
            ("GET /doc HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400 Bad Request", "bad-request"),
            ("GET /doc HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "400 Bad Request", "bad-request"),
            ("THIS IS NOT HTTP\r\n\r\n", "400 Bad Request", "bad-request"),
            ("GET /doc HTTP/1.1\r\nHost: a\r\nBad Header Name: x\r\n\r\n", "400 Bad Request", "bad-request"),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n", "400 Bad Request", "bad-request"),
            // Well-formed, but not something the relay does.
            ("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "501 Not Implemented", "not-implemented"),
            ("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501 Not Implemented", "not-implemented"),
        ])
        func refusedRequestsGetAClearAnswer(request: String, status: String, code: String) async throws {
            let web = try WebServer()
            let relay = try await Self.relay(web)
            let answer = try await Self.exchange(relay.port, request)
            #expect(answer.hasPrefix("HTTP/1.1 \(status)\r\n"), "got \(answer.debugDescription)")
            #expect(answer.contains("x-shoal-error: \(code)\r\n"))
            try await Self.stillServes(relay.port)
            await relay.shutdown()
            web.stop()
        }

        @Test func declaredBodyOverTheLimitGets413AtOnce() async throws {
            let web = try WebServer()
            let relay = try await Self.relay(web)
            // Only the head is sent: the relay must answer without waiting for 2 MB.
            let answer = try await Self.exchange(relay.port, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2097152\r\n\r\n")
            #expect(answer.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"))
            #expect(answer.contains("connection: close\r\n"))
            #expect(answer.contains("exceeds the limit of 1048576"))
            try await Self.stillServes(relay.port)
            await relay.shutdown()
            web.stop()
        }

        @Test func streamedBodyOverTheLimitGets413() async throws {
            let web = try WebServer()
            let relay = try await Self.relay(web)
            // A chunked body that crosses the limit mid-stream (a GET: the web server answers
            // only after the body, so the relay's answer is the first one).
            let answer = try await RawConnection.with(port: relay.port) { connection in
                try await connection.send("GET /doc?size=10 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
                let chunk = "10000\r\n" + String(repeating: "x", count: 65536) + "\r\n"
                for _ in 0..<20 {
                    do { try await connection.send(chunk) } catch { break }  // The relay may close mid-send.
                }
                return try await connection.readToEnd()
            }
            #expect(answer.hasPrefix("HTTP/1.1 413 Payload Too Large\r\n"), "got \(answer.prefix(200).debugDescription)")
            try await Self.stillServes(relay.port)
            await relay.shutdown()
            web.stop()
        }

        @Test func slowRequestHeadGets408() async throws {
            let web = try WebServer()
            let relay = try await Self.relay(web)
            let start = ContinuousClock.now
            let answer = try await Self.exchange(relay.port, "GET /doc HTTP/1.1\r\nHost: a\r\n")  // No blank line: never complete.
            #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
            #expect(answer.contains("request head not complete within 0.4 s"))
            #expect(elapsed(since: start) < 10)  // Bounded, not hung (room for a busy machine).
            try await Self.stillServes(relay.port)
            await relay.shutdown()
            web.stop()
        }

        @Test func stalledRequestBodyGets408() async throws {
            let web = try WebServer()
            let relay = try await Self.relay(web)
            let answer = try await Self.exchange(relay.port, "GET /doc?size=10 HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
            #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"), "got \(answer.debugDescription)")
            #expect(answer.contains("request body stalled"))
            #expect(relay.members.local?.inFlight == 0)
            try await Self.stillServes(relay.port)
            await relay.shutdown()
            web.stop()
        }

        @Test func idleKeepAliveConnectionIsClosedSilently() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(
                local: web.address, configuration: testConfiguration { $0.clientIdleTimeout = .milliseconds(300) }, logger: LogCapture().logger)
            try await relay.start()
            let answer = try await RawConnection.with(port: relay.port) { connection in
                try await connection.send("GET /doc?size=3 HTTP/1.1\r\nHost: a\r\n\r\n")
                try await connection.read(until: "012")
                return try await connection.readToEnd()
            }
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"))
            #expect(answer.hasSuffix("\r\n\r\n012"))  // Nothing after the answer: no stray 408.
            await relay.shutdown()
            web.stop()
        }
    }
}
