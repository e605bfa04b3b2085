import NIOCore
import NIOHTTP1
@testable import ShoalProxy
import ShoalCore
import ShoalTesting
import Testing

/// The per-lease secret: a worker that has one serves only requests that present it (the
/// front-end holding the lease adds it per member) and strips it before its instance sees them.
/// WebSocket and TCP mode through a front-end and a worker with a secret: ``Upgrade`` and ``TCPMode``.
extension ProxyTests {
    @Suite struct LeaseSecrets {
        static let secret = LeaseSecret.random()

        @Test func onlyWellFormedSecretsAreTaken() {
            #expect(LeaseSecret(Self.secret.text) == Self.secret)
            #expect(Self.secret.text.utf8.count == 43)
            #expect(LeaseSecret.random() != LeaseSecret.random())
            #expect(LeaseSecret(String(Self.secret.text.dropLast())) == nil)
            #expect(LeaseSecret(String(Self.secret.text.dropLast()) + "=") == nil)
            #expect(LeaseSecret(String(repeating: "a", count: 43)) != nil)
            #expect(LeaseSecret(String(repeating: "a", count: 42) + " ") == nil)
            // Never printed by accident.
            #expect(!"\(Self.secret)".contains(Self.secret.text))
        }

        @Test func matchesOnlyTheSameBytes() {
            let secret = Self.secret
            func matches(_ text: String) -> Bool { Array(text.utf8).withUnsafeBytes { secret.matches($0) } }
            #expect(matches(secret.text))
            var flipped = Array(secret.text.utf8)
            flipped[42] = flipped[42] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            #expect(!matches(String(decoding: flipped, as: UTF8.self)))
            #expect(!matches(String(secret.text.dropLast())))
            #expect(!matches(secret.text + "A"))
            #expect(!matches(""))
        }

        @Test func preambleVerdicts() {
            let secret = Self.secret
            func check(_ text: String) -> LeaseSecretPreambleHandler.Verdict {
                Array(text.utf8).withUnsafeBytes { LeaseSecretPreambleHandler.check($0, secret: secret) }
            }
            let line = "SHOAL \(secret.text)\r\n"
            #expect(check(line + "PING\r\n") == .accepted(rest: line.utf8.count))
            #expect(check(line) == .accepted(rest: line.utf8.count))
            #expect(check("SHO") == .needMore)
            #expect(check("SHOAL \(secret.text.prefix(10))") == .needMore)
            #expect(check("PING\r\n") == .refused)  // A client speaking the service's protocol directly.
            #expect(check("SHOAL \(LeaseSecret.random().text)\r\n") == .refused)
            #expect(check("SHOAL \(secret.text)\n") == .refused)
            #expect(check("SHOAL " + String(repeating: "a", count: 200)) == .refused)
        }

        /// The secret the front-end's head carries goes in place of the blank line, once.
        @Test func headEndingReplacesTheBlankLine() {
            var ending = Self.secret.headEnding
            #expect(ending.readString(length: ending.readableBytes) == "shoal-lease-secret: \(Self.secret.text)\r\n\r\n")
            var preamble = Self.secret.preamble
            #expect(preamble.readString(length: preamble.readableBytes) == "SHOAL \(Self.secret.text)\r\n")
        }

        @Test func workerRefusesWithoutTheSecretAndStripsIt() async throws {
            let echo = try await HeaderEchoServer.start()
            let logs = LogCapture()
            let worker = HTTPRelayServer.worker(
                upstream: echo.localAddress!, limits: .init(maxConcurrent: 4, maxQueued: 4),
                configuration: testConfiguration { $0.leaseSecret = Self.secret }, logger: logs.logger)
            let workerAddress = try await worker.start()
            let frontend = HTTPRelayServer.serviceManager(local: nil, configuration: testConfiguration(), logger: LogCapture().logger)
            try await frontend.start()
            try frontend.members.addBackend(name: "L-000001", address: workerAddress, leaseSecret: Self.secret)

            // Straight to the worker: none, a wrong one, and the right one.
            let none = try await HTTPTestConnection.with(port: worker.port) { try await $0.request(.GET, "/x") }
            #expect(none.status == .forbidden)
            #expect(none.headers.first(name: "x-shoal-error") == "forbidden")
            #expect(none.headers.first(name: "connection") == "close")
            #expect(!none.text.contains("GET /x"))  // Not the instance's answer.
            let wrong = try await HTTPTestConnection.with(port: worker.port) {
                try await $0.request(.POST, "/x", headers: [("Shoal-Lease-Secret", LeaseSecret.random().text)], body: ByteBuffer(string: "hello"))
            }
            #expect(wrong.status == .forbidden)
            let twice = try await HTTPTestConnection.with(port: worker.port) {
                try await $0.request(.GET, "/x", headers: [("Shoal-Lease-Secret", Self.secret.text), ("shoal-lease-secret", "other")])
            }
            #expect(twice.status == .badRequest)
            let right = try await HTTPTestConnection.with(port: worker.port) {
                try await $0.request(.GET, "/x", headers: [("Shoal-Lease-Secret", Self.secret.text), ("X-Keep", "kept")])
            }
            #expect(right.status == .ok)
            #expect(right.text.contains("x-keep: kept"))
            #expect(!right.text.contains("shoal-lease-secret"))
            #expect(!right.text.contains(Self.secret.text))

            // Through the front-end: a client's own secret header is dropped, the front-end's
            // reaches the worker, which strips it; two requests on one connection, both served.
            let through = try await HTTPTestConnection.with(port: frontend.port) { connection in
                [try await connection.request(.GET, "/a", headers: [("Shoal-Lease-Secret", "guess")]),
                 try await connection.request(.POST, "/b", body: ByteBuffer(string: "body"))]
            }
            #expect(through.map(\.status) == [.ok, .ok])
            for response in through {
                #expect(!response.text.contains("shoal-lease-secret"))
                #expect(!response.text.contains("guess"))
            }

            // Counted where the worker's metrics read them.
            #expect(worker.statistics.localResponsesByCode.first { $0.code == .forbidden }?.count == 2)
            #expect(worker.metricsExposition(prefix: "shoal_worker").contains(#"code="forbidden""#))
            #expect(logs.contains("forbidden"))

            await frontend.shutdown()
            await worker.shutdown()
            try await echo.close()
        }

        /// A member without a secret gets none: the front-end's own instance, a hand-run worker.
        @Test func membersWithoutASecretGetNone() async throws {
            let echo = try await HeaderEchoServer.start()
            let frontend = HTTPRelayServer.serviceManager(local: echo.localAddress!, configuration: testConfiguration(), logger: LogCapture().logger)
            try await frontend.start()
            let response = try await HTTPTestConnection.with(port: frontend.port) {
                try await $0.request(.GET, "/x", headers: [("Shoal-Lease-Secret", Self.secret.text)])
            }
            #expect(response.status == .ok)
            #expect(!response.text.contains("shoal-lease-secret"))
            await frontend.shutdown()
            try await echo.close()
        }
    }
}
