import Foundation
import NIOCore
import NIOHTTP1
import ShoalProxy
import ShoalTesting
import Testing

/// The relay's counters as Prometheus text, after real requests over real sockets; request ids.
extension ProxyTests {
    @Suite struct Metrics {
        @Test func countersMoveWithRealRequests() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: web.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()

            let responses = try await HTTPTestConnection.with(port: relay.port) { connection in
                var statuses: [HTTPResponseStatus] = []
                for _ in 0..<5 { statuses.append(try await connection.request(.GET, "/doc?size=1024").status) }
                statuses.append(try await connection.request(.POST, "/doc?size=1024", body: ByteBuffer(string: "x")).status)
                return statuses
            }
            #expect(responses == [.ok, .ok, .ok, .ok, .ok, .ok])

            let text = relay.metricsExposition(prefix: "shoal_frontend", labels: [("service", "a")])
            for name in ["shoal_frontend_requests_total", "shoal_frontend_request_duration_seconds_bucket",
                         "shoal_frontend_request_duration_seconds_sum", "shoal_frontend_in_flight", "shoal_frontend_member_healthy",
                         "shoal_frontend_retries_total", "shoal_frontend_client_connections_total"] {
                #expect(text.contains("\n\(name){"), "missing \(name)")
            }
            let local = #"service="a",member="local",role="local""#
            #expect(sample(text, "shoal_frontend_requests_total{\(local),status_class=\"2xx\"}") == 6)
            #expect(sample(text, "shoal_frontend_requests_total{\(local),status_class=\"5xx\"}") == 0)
            #expect(sample(text, "shoal_frontend_request_duration_seconds_count{\(local)}") == 6)
            #expect(sample(text, "shoal_frontend_request_duration_seconds_bucket{\(local),le=\"+Inf\"}") == 6)
            #expect(sample(text, "shoal_frontend_request_duration_seconds_bucket{\(local),le=\"10\"}") == 6)
            #expect((sample(text, "shoal_frontend_request_duration_seconds_sum{\(local)}") ?? 0) > 0)
            #expect(sample(text, "shoal_frontend_in_flight{\(local)}") == 0)
            #expect(sample(text, "shoal_frontend_member_healthy{\(local)}") == 1)
            #expect(text.contains(#"le="0.0001""#))

            await relay.shutdown()
            web.stop()
        }

        @Test func localErrorsAreCountedAndCarryTheRequestID() async throws {
            let dead = try SocketAddress(ipAddress: "127.0.0.1", port: try await closedPort())
            let logs = LogCapture()
            let relay = HTTPRelayServer.serviceManager(local: dead, configuration: testConfiguration(), logger: logs.logger)
            try await relay.start()

            let (made, given) = try await HTTPTestConnection.with(port: relay.port) { connection in
                (try await connection.request(.GET, "/doc"), try await connection.request(.GET, "/doc", headers: [("X-Request-Id", "req-42")]))
            }
            #expect(made.status == .badGateway)
            let id = try #require(made.headers.first(name: "x-request-id"))
            #expect(made.text.hasSuffix("(request \(id))\n"))
            #expect(given.headers.first(name: "x-request-id") == "req-42")
            #expect(logs.all.contains { $0.contains("request=req-42") && $0.contains("code=member-unreachable") }, "\(logs.all)")

            let text = relay.metricsExposition(prefix: "shoal_frontend")
            #expect(sample(text, #"shoal_frontend_local_responses_total{code="member-unreachable",status="502"}"#) == 2)
            await relay.shutdown()
        }

        @Test func requestIDsAreMadeOrKeptAndForwarded() async throws {
            let echo = try await HeaderEchoServer.start()
            let relay = HTTPRelayServer.serviceManager(
                local: try SocketAddress(ipAddress: "127.0.0.1", port: echo.localAddress!.port!),
                configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()

            let (first, second, given) = try await HTTPTestConnection.with(port: relay.port) { connection in
                (try await connection.request(.GET, "/"), try await connection.request(.GET, "/"),
                 try await connection.request(.GET, "/", headers: [("X-Request-Id", "abc-123")]))
            }
            func forwarded(_ response: HTTPTestResponse) -> [String] {
                response.text.split(separator: "\n").filter { $0.lowercased().hasPrefix("x-request-id:") }
                    .map { $0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces) }
            }
            let firstID = try #require(forwarded(first).first)
            let secondID = try #require(forwarded(second).first)
            #expect(forwarded(first).count == 1)
            #expect(firstID != secondID)
            #expect(firstID.utf8.count <= 15)
            #expect(forwarded(given) == ["abc-123"])

            await relay.shutdown()
            try await echo.close()
        }

        /// The real `shoal frontend` binary: its admin listener's `/metrics` after real requests
        /// through its public port, and its `--log-format json` lines.
        @Test func frontendServesMetricsOnItsAdminPort() async throws {
            let (directory, manifest) = try webServerManifest()
            defer { try? FileManager.default.removeItem(at: directory) }
            let log = directory.appendingPathComponent("frontend.log").path
            let frontend = try ManagedProcess.startProduct(
                "shoal", ["frontend", manifest, "--standalone", "--port", "0", "--metrics-port", "0", "--log-format", "json"],
                readyPrefix: "shoal frontend", timeout: 30, standardErrorFile: log)
            defer { frontend.stop() }
            let ready = try #require(ReadyLine.frontend(frontend.firstLine))
            let metricsURL = try #require(ready.metricsURL)
            let metricsPort = try #require(metricsURL.split(separator: ":").last?.split(separator: "/").first.flatMap { Int($0) })

            let statuses = try await HTTPTestConnection.with(port: ready.port) { connection in
                var statuses: [HTTPResponseStatus] = []
                for _ in 0..<3 { statuses.append(try await connection.request(.GET, "/doc").status) }
                return statuses
            }
            #expect(statuses == [.ok, .ok, .ok])
            let (scrape, missing) = try await HTTPTestConnection.with(port: metricsPort) { connection in
                (try await connection.request(.GET, "/metrics"), try await connection.request(.GET, "/elsewhere"))
            }
            #expect(scrape.status == .ok)
            #expect(missing.status == .notFound)
            let text = scrape.text
            #expect(sample(text, #"shoal_frontend_requests_total{service="m",member="local",role="local",status_class="2xx"}"#) == 3, "\(text)")
            #expect(text.contains(#"shoal_frontend_leases{service="m",state="active"}"#))
            #expect(text.contains("# TYPE shoal_frontend_request_duration_seconds histogram"))

            frontend.stop()
            let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
            #expect(!lines.isEmpty)
            for line in lines {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["time"] is String && object?["level"] is String && object?["message"] is String, "\(line)")
                #expect((object?["metadata"] as? [String: Any])?["service"] as? String == "m", "\(line)")
            }
        }
    }
}

/// The value of the sample whose name and labels are exactly `series`.
private func sample(_ text: String, _ series: String) -> Double? {
    text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
}
