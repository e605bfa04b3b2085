import NIOCore
import NIOHTTP1
import ShoalProxy
import ShoalTesting
import Testing

/// The pools of member connections: bounded, timed out, and emptied when a member goes.
extension ProxyTests {
    @Suite struct Pooling {
        /// Polls `condition` every 20 ms for at most `seconds`.
        static func eventually(within seconds: Double, _ condition: () -> Bool) async throws -> Bool {
            let start = ContinuousClock.now
            while elapsed(since: start) < seconds {
                if condition() { return true }
                try await Task.sleep(for: .milliseconds(20))
            }
            return condition()
        }

        @Test func idlePooledConnectionsCloseAfterTheirTimeout() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(
                local: web.address, configuration: testConfiguration { $0.pooledConnectionIdleTimeout = .milliseconds(300) },
                logger: LogCapture().logger)
            try await relay.start()

            try await HTTPTestConnection.with(port: relay.port) { connection in
                let first = try await connection.request(.GET, "/health")
                #expect(first.status == .ok)
                #expect(establishedConnections(toPort: web.port) == 1)
                let closed = try await Self.eventually(within: 2) { establishedConnections(toPort: web.port) == 0 }
                #expect(closed)
                // The next request simply opens a new one.
                let second = try await connection.request(.GET, "/health")
                #expect(second.status == .ok)
            }
            #expect(relay.statistics.upstreamConnectionsOpened == 2)

            await relay.shutdown()
            web.stop()
        }

        @Test func idleConnectionsPerMemberAreBounded() async throws {
            let web = try WebServer()
            let relay = HTTPRelayServer.serviceManager(
                local: web.address,
                configuration: testConfiguration { $0.maxIdleConnectionsPerMember = 2 },
                logger: LogCapture().logger)
            try await relay.start()
            let port = relay.port

            // Eight at once need eight member connections; afterwards at most two per event
            // loop stay open (this machine's loops: System.coreCount).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let response = try await HTTPTestConnection.with(port: port) { try await $0.request(.GET, "/doc?size=10&delay_ms=200") }
                        #expect(response.status == .ok)
                    }
                }
                try await group.waitForAll()
            }
            #expect(relay.statistics.upstreamConnectionsOpened == 8)
            let bound = 2 * System.coreCount
            let trimmed = try await Self.eventually(within: 2) { establishedConnections(toPort: web.port) <= bound }
            #expect(trimmed)

            await relay.shutdown()
            web.stop()
        }

        @Test func removedMembersPoolIsClosed() async throws {
            let local = try WebServer()
            let backend = try WebServer()
            let relay = HTTPRelayServer.serviceManager(local: local.address, configuration: testConfiguration(), logger: LogCapture().logger)
            try await relay.start()
            let member = try relay.members.addBackend(name: "c1", address: backend.address)

            try await HTTPTestConnection.with(port: relay.port) { connection in
                for _ in 0..<5 {
                    let response = try await connection.request(.GET, "/doc?size=10")
                    #expect(response.status == .ok)
                }
                #expect(establishedConnections(toPort: backend.port) == 1)
                relay.members.removeBackend(named: "c1")
                try await member.drained()
                let closed = try await Self.eventually(within: 2) { establishedConnections(toPort: backend.port) == 0 }
                #expect(closed)
                let after = try await connection.request(.GET, "/doc?size=10")
                #expect(after.status == .ok)
            }
            #expect(member.requestsStarted == 5)
            #expect(relay.members.local?.requestsStarted == 1)

            await relay.shutdown()
            local.stop()
            backend.stop()
        }
    }
}
