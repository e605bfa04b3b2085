import Foundation
import Synchronization
import NIOHTTP1
import ShoalAPI
import ShoalCore
import Testing
import ShoalClient

@Suite struct BrokerClientTests {
    static let lease = LeaseView(id: "L1", service: "web", frontend: "a@fe", state: .requested, requestedAt: 1000, expiresAt: 31000)

    static func json(_ value: some Encodable) -> String {
        String(decoding: try! JSONEncoder().encode(value), as: UTF8.self)
    }

    /// Answers like the broker: POSTs need the token, reads don't.
    static func broker(_ request: TestHTTPServer.Request) -> TestHTTPServer.Reply {
        if request.method == .POST, request.headers["Authorization"].first != "Bearer secret" {
            return .json(.unauthorized, #"{"error": "this request needs the broker's token"}"#)
        }
        switch (request.method, request.uri) {
        case (.POST, "/v1/leases"): return .json(.created, json(lease))
        case (.GET, "/v1/pool"): return .json(.ok, json(PoolView(hosts: [.init(name: "c1", slots: 2, used: 1, leases: ["L1"])])))
        default: return .json(.notFound, #"{"error": "no route \#(request.method) \#(request.uri)"}"#)
        }
    }

    @Test func acquireRoundTrip() async throws {
        let server = try await TestHTTPServer.start(Self.broker)
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(server.port)", token: "secret", timeout: .seconds(30))

        let lease = try await client.acquire(AcquireRequest(frontend: "a@fe", reason: "level High"))
        #expect(lease == Self.lease)

        let request = try #require(server.requests.first)
        #expect(request.method == .POST)
        #expect(request.uri == "/v1/leases")
        #expect(request.headers["Content-Type"].first == "application/json")
        #expect(try JSONDecoder().decode(AcquireRequest.self, from: Data(request.body.utf8)) == AcquireRequest(frontend: "a@fe", reason: "level High"))
        await client.close()
        await server.stop()
    }

    @Test func readsCarryNoTokenAndPathsAreEncoded() async throws {
        let server = try await TestHTTPServer.start { _ in .json(.ok, #"{"events": [], "next": 7}"#) }
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(server.port)/", token: "secret", timeout: .seconds(30))

        let page = try await client.events(after: 5, limit: 10, wait: .milliseconds(1500))
        #expect(page == EventPage(events: [], next: 7))
        _ = try? await client.explain(lease: "a b/c")
        _ = try? await client.heartbeat(frontend: "a@fe", Heartbeat())

        let requests = server.requests
        #expect(requests.map(\.uri) == ["/v1/events?after=5&limit=10&wait=1.5", "/v1/leases/a%20b%2Fc/explain", "/v1/frontends/a@fe/heartbeat"])
        #expect(requests[0].headers["Authorization"].isEmpty)
        #expect(requests[2].headers["Authorization"].first == "Bearer secret")
        await client.close()
        await server.stop()
    }

    @Test func aRefusalCarriesTheBrokersMessage() async throws {
        let server = try await TestHTTPServer.start(Self.broker)
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(server.port)", token: "wrong", timeout: .seconds(30))

        let error = try await #require(throws: BrokerClientError.self) { try await client.drainHost("c1") }
        #expect(error.statusCode == 401)
        #expect(error.kind == .status(code: 401, message: "this request needs the broker's token"))
        #expect(server.requests.first?.uri == "/v1/hosts/c1/drain")
        await client.close()
        await server.stop()
    }

    @Test func anUndecodableAnswerSaysWhatWasExpected() async throws {
        let server = try await TestHTTPServer.start { _ in .json(.ok, #"{"hosts": 3}"#) }
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(server.port)", token: nil, timeout: .seconds(30))

        let error = try await #require(throws: BrokerClientError.self) { try await client.pool() }
        guard case .badAnswer(let expected, _) = error.kind else { Issue.record("\(error)"); return }
        #expect(expected.contains("PoolView"))
        await client.close()
        await server.stop()
    }

    @Test func noBrokerMeansUnreachable() async throws {
        let server = try await TestHTTPServer.start(Self.broker)
        let port = server.port
        await server.stop()
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(port)", token: nil)

        let error = try await #require(throws: BrokerClientError.self) { try await client.pool() }
        #expect(error.kind == .unreachable(reason: "connection refused"))
        #expect(error.description.hasPrefix("cannot reach the broker at http://127.0.0.1:\(port) (connection refused)"))
        #expect(error.statusCode == nil)
        await client.close()
    }

    @Test func onlyHTTPAndHTTPSAddresses() {
        #expect(throws: BrokerClientError.self) { try BrokerClient(baseURL: "ftp://127.0.0.1:7070", token: nil) }
        #expect(throws: BrokerClientError.self) { try BrokerClient(baseURL: "https://127.0.0.1:7070", token: nil, caFile: "/nonexistent/ca.pem") }
        #expect(throws: BrokerClientError.self) { try BrokerClient(baseURL: "127.0.0.1:7070", token: nil) }
        #expect(throws: BrokerClientError.self) { try BrokerClient(baseURL: "http://127.0.0.1:99999", token: nil) }
        #expect(throws: BrokerClientError.self) { try BrokerClient(baseURL: "http://host/prefix", token: nil) }
        #expect(throws: Never.self) { try BrokerClient(baseURL: "http://[::1]:7070", token: nil) }
    }

    // Clients here get 30 s: nothing waits that long unless the machine is swamped (the whole
    // suite starting at once), and a 5 s timeout then failed a test about retries, not timing.
    @Test func callsShareOneConnection() async throws {
        let server = try await TestHTTPServer.start(Self.broker)
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(server.port)", token: "secret", timeout: .seconds(30))

        _ = try await client.pool()
        _ = try await client.acquire(AcquireRequest(frontend: "a@fe"))
        #expect(server.acceptedConnections == 1)
        #expect(server.requests.count == 2)
        await client.close()
        await server.stop()
    }

    @Test func reconnectsAfterTheServerClosedAnIdleConnection() async throws {
        let server = try await TestHTTPServer.start(Self.broker)
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(server.port)", token: nil, timeout: .seconds(30))

        _ = try await client.pool()
        await server.closeConnections()
        _ = try await client.pool()
        #expect(server.acceptedConnections == 2)
        await client.close()
        await server.stop()
    }

    @Test func anAnswerThatClosesTheConnectionStillCounts() async throws {
        let server = try await TestHTTPServer.start { _ in .json(.ok, #"{"hosts": []}"#, closing: true) }
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(server.port)", token: nil, timeout: .seconds(30))

        #expect(try await client.pool() == PoolView(hosts: []))
        #expect(try await client.pool() == PoolView(hosts: []))
        #expect(server.acceptedConnections == 2)
        await client.close()
        await server.stop()
    }

    @Test func retriesOnceWhenAReusedConnectionDiesBeforeAnswering() async throws {
        let count = Counter()
        let server = try await TestHTTPServer.start { request in
            count.next() == 2 ? .hangUp : Self.broker(request)
        }
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(server.port)", token: nil, timeout: .seconds(30))

        _ = try await client.pool()
        _ = try await client.pool()  // Sent twice: the first connection hangs up, a new one answers.
        #expect(server.requests.count == 3)
        #expect(server.acceptedConnections == 2)
        await client.close()
        await server.stop()
    }

    @Test func noRetryOnAFreshConnection() async throws {
        let server = try await TestHTTPServer.start { _ in .hangUp }
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(server.port)", token: nil, timeout: .seconds(30))

        let error = try await #require(throws: BrokerClientError.self) { try await client.pool() }
        guard case .unreachable = error.kind else { Issue.record("\(error)"); return }
        #expect(server.requests.count == 1)
        await client.close()
        await server.stop()
    }

    @Test func aSilentBrokerTimesOut() async throws {
        let server = try await TestHTTPServer.start { _ in .silence }
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(server.port)", token: nil, timeout: .milliseconds(200))

        let started = ContinuousClock.now
        let error = try await #require(throws: BrokerClientError.self) { try await client.pool() }
        #expect(error.kind == .timedOut(after: .milliseconds(200)))
        #expect(error.description == "the broker at http://127.0.0.1:\(server.port) did not answer GET /v1/pool within 0.2 s")
        #expect(ContinuousClock.now - started < .seconds(10))  // Bounded, not hung (a busy machine is slow).
        await client.close()
        await server.stop()
    }

    @Test func cancellingACallEndsItAtOnce() async throws {
        let server = try await TestHTTPServer.start { _ in .silence }
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(server.port)", token: nil, timeout: .seconds(30))

        let call = Task { try await client.pool() }
        try await Task.sleep(for: .milliseconds(100))
        call.cancel()
        await #expect(throws: CancellationError.self) { try await call.value }
        await client.close()
        await server.stop()
    }

    @Test func aLongPollGetsItsWaitOnTopOfTheTimeout() async throws {
        let server = try await TestHTTPServer.start { _ in .silence }
        let client = try BrokerClient(baseURL: "http://127.0.0.1:\(server.port)", token: nil, timeout: .milliseconds(100))

        let started = ContinuousClock.now
        await #expect(throws: BrokerClientError.self) { try await client.events(after: 0, limit: 1, wait: .milliseconds(300)) }
        #expect(ContinuousClock.now - started >= .milliseconds(400))
        await client.close()
        await server.stop()
    }
}

/// Counts calls from any thread.
final class Counter: Sendable {
    private let value = Mutex(0)

    func next() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }
}
