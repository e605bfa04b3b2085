import NIOCore
import NIOHTTP1
import NIOPosix
import ShoalProxy
import ShoalTesting
import Testing

/// Members that fail: retry elsewhere, out of rotation, readable errors.
extension ProxyTests {
    @Suite struct Failures {
        @Test func deadMemberIsSkippedAndTheRequestRetriedOnAnother() async throws {
            let local = try WebServer()
            let live = try WebServer()
            let logs = LogCapture()
            let relay = HTTPRelayServer.serviceManager(local: local.address, configuration: testConfiguration(), logger: logs.logger)
            try await relay.start()
            // The dead one first: the paper's policy sends to the first Low member in list order.
            let dead = try relay.members.addBackend(name: "dead", address: SocketAddress(ipAddress: "127.0.0.1", port: try await closedPort()))
            let alive = try relay.members.addBackend(name: "alive", address: live.address)

            let (get, post, again) = try await HTTPTestConnection.with(port: relay.port) { connection in
                (
                    try await connection.request(.GET, "/doc?size=100"),
                    try await connection.request(.POST, "/echo", body: ByteBuffer(string: "posted")),
                    try await connection.request(.GET, "/doc?size=100")
                )
            }
            #expect(get.status == .ok)
            #expect(DocumentPattern.matches(get.body, size: 100))
            // A refused connect sent nothing, so even a POST may go elsewhere.
            #expect(post.status == .ok)
            #expect(post.text == "posted")
            #expect(again.status == .ok)
            #expect(relay.statistics.retries == 1)  // After the first failure the dead one is out of rotation.
            #expect(!dead.isHealthy)
            #expect(alive.requestsStarted == 3)
            #expect(dead.requestsStarted == 1)
            #expect(relay.members.loads().allSatisfy { $0.inFlight == 0 })
            #expect(logs.contains("member unreachable"))

            var events = relay.members.events.makeAsyncIterator()
            let event = await events.next()
            guard case .unreachable(member: "dead", let reason)? = event else {
                Issue.record("expected an unreachable event for 'dead', got \(String(describing: event))")
                return
            }
            #expect(reason.contains("connect failed"))

            await relay.shutdown()
            local.stop()
            live.stop()
        }

        @Test func onlyMemberDeadGives502() async throws {
            let logs = LogCapture()
            let relay = HTTPRelayServer.serviceManager(
                local: try SocketAddress(ipAddress: "127.0.0.1", port: try await closedPort()), configuration: testConfiguration(), logger: logs.logger)
            try await relay.start()

            let responses = try await HTTPTestConnection.with(port: relay.port) { connection in
                [try await connection.request(.GET, "/doc"), try await connection.request(.GET, "/doc")]
            }
            for response in responses {
                #expect(response.status == .badGateway)
                #expect(response.headers.first(name: "x-shoal-error") == "member-unreachable")
                #expect(response.text.hasPrefix("502 Bad Gateway: member local is unreachable (connect failed"))
            }
            #expect(logs.contains("502 Bad Gateway"))

            await relay.shutdown()
        }

        @Test func memberDyingMidKeepAliveIsRetriedForGet() async throws {
            let first = try WebServer()
            let second = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: nil, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()
            try relay.members.addBackend(name: "first", address: first.address)
            try relay.members.addBackend(name: "second", address: second.address)

            try await HTTPTestConnection.with(port: relay.port) { connection in
                // Warm a pooled connection to "first", then kill it.
                #expect(try await connection.request(.GET, "/doc?size=10").status == .ok)
                first.process.kill9()
                for _ in 0..<5 {
                    let response = try await connection.request(.GET, "/doc?size=10")
                    #expect(response.status == .ok)
                }
            }
            await relay.shutdown()
            second.stop()
        }

        @Test func backendsVanishingTogetherLeaveTheLocalInstanceServing() async throws {
            // The pool's pvmd died: every back-end's worker went at once, the front-end's own instance did not.
            let local = try WebServer()
            let first = try WebServer()
            let second = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: local.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()
            try relay.members.addBackend(name: "first", address: first.address)
            try relay.members.addBackend(name: "second", address: second.address)

            try await HTTPTestConnection.with(port: relay.port) { connection in
                for _ in 0..<4 { #expect(try await connection.request(.GET, "/doc?size=10").status == .ok) }
                first.process.kill9()
                second.process.kill9()
                for _ in 0..<6 {
                    let response = try await connection.request(.GET, "/doc?size=10")
                    #expect(response.status == .ok)
                    #expect(DocumentPattern.matches(response.body, size: 10))
                }
            }
            #expect(relay.statistics.retries >= 2, "both back-ends were tried before the local instance")
            #expect(relay.members.loads().allSatisfy { $0.inFlight == 0 })
            await relay.shutdown()
            local.stop()
        }

        @Test func revokedMembersUnansweredRequestIsRetriedElsewhereAtOnce() async throws {
            // A member that takes requests and never answers: a back-end whose host went dark.
            let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: 0).get()
            let live = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: nil, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()
            let gone = try relay.members.addBackend(name: "gone", address: try #require(silent.localAddress))
            try relay.members.addBackend(name: "alive", address: live.address)

            let port = relay.port
            let answer = Task { try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/doc?size=100") } }
            let deadline = ContinuousClock.now + .seconds(5)
            while gone.inFlight == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(gone.inFlight == 1, "the request waits at the silent member")

            let revoked = ContinuousClock.now
            relay.members.removeBackend(named: "gone", abandoningInFlight: true)
            let response = try await answer.value
            #expect(response.status == .ok)
            #expect(DocumentPattern.matches(response.body, size: 100))
            #expect(relay.statistics.retries == 1)
            #expect(gone.inFlight == 0)
            #expect(gone.isHealthy, "gone, not failed: no unreachable report about a removed member")
            // A timer tick or two, not the 60 s answer timeout (the bound leaves room for a busy machine).
            #expect(elapsed(since: revoked) < 10)

            await relay.shutdown()
            try await silent.close()
            live.stop()
        }

        @Test func slowMemberGives504() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(
                local: web.address, configuration: testConfiguration { $0.responseHeadTimeout = .seconds(1) }, logger: LogCapture().logger)
            try await relay.start()

            // 1 s, not less: the second request gets the same timeout, and on a CI machine busy with
            // the cluster tests a fresh member connection once took over 0.3 s to answer.
            let start = ContinuousClock.now
            let (slow, fast) = try await HTTPTestConnection.with(port: relay.port) { connection in
                (try await connection.request(.GET, "/doc?size=10&delay_ms=15000"), try await connection.request(.GET, "/doc?size=10"))
            }
            #expect(slow.status == .gatewayTimeout)
            #expect(slow.headers.first(name: "x-shoal-error") == "member-timeout")
            #expect(slow.text.contains("did not answer within 1 s"))
            #expect(fast.status == .ok)  // The client connection survived the timeout.
            #expect(elapsed(since: start) < 8)  // 1 s, not the member's 15 s (room for a busy machine).
            #expect(relay.members.local!.isHealthy)  // Slow is not dead.

            await relay.shutdown()
            web.stop()
        }
    }
}
