import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import ShoalAPI
import ShoalBroker
import ShoalCore
import ShoalTesting
import Synchronization
import Testing

private let token = "s3cret-token"
private let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
private let sampleLease = LeaseView(id: "L-000001", service: "A", frontend: "fe-a", state: .active, requestedAt: 1, expiresAt: 2)

/// Records every call and answers with fixed values, or with `refusal` when one is set.
private actor FakeOperations: BrokerOperations {
    enum Call: Equatable, Sendable {
        case pool, services
        case leases(includingFinal: Bool)
        case explain(String)
        case workerAsked(String)
        case events(after: Int64, limit: Int, wait: Duration)
        case acquire(AcquireRequest)
        case renew(String)
        case drain(String, LeaseChangeRequest)
        case cancelDrain(String, LeaseChangeRequest)
        case release(String, LeaseChangeRequest)
        case register(FrontendRegistration)
        case heartbeat(String, Heartbeat)
        case drainHost(String)
        case undrainHost(String)
    }

    struct Unexpected: Error {}

    private(set) var calls: [Call] = []
    private var refusal: (any Error)?
    /// When set, `events` waits out its `wait` like the broker's long poll; counts the cancelled ones.
    private var holdsLongPolls = false
    private(set) var cancelledPolls = 0

    func holdLongPolls() { holdsLongPolls = true }

    func refuse(with error: (any Error)?) { refusal = error }

    private func record(_ call: Call) throws {
        calls.append(call)
        if let refusal { throw refusal }
    }

    private func status() -> FrontendStatus {
        FrontendStatus(name: "fe-a", service: "A", leaseTTLMilliseconds: 30_000, leases: [sampleLease])
    }

    func pool() throws -> PoolView {
        try record(.pool)
        return PoolView(hosts: [.init(name: "c1", slots: 2, used: 1, leases: ["L-000001"])])
    }
    func services() throws -> [ServiceView] {
        try record(.services)
        return [ServiceView(name: "A", frontends: ["fe-a"], minBackends: 0, maxBackends: 2, priority: 0, weight: 1, held: 1, waiting: 0, fairShare: 2)]
    }
    func leases(includingFinal: Bool) throws -> [LeaseView] {
        try record(.leases(includingFinal: includingFinal))
        return [sampleLease]
    }
    func workerAsked(lease id: String) throws -> LeaseView {
        try record(.workerAsked(id))
        return sampleLease
    }

    func explain(lease id: String) throws -> LeaseExplanation {
        try record(.explain(id))
        return LeaseExplanation(lease: sampleLease, events: [EventView(id: 1, time: 1, kind: "request", lease: id, reason: "asked")])
    }
    func events(after: Int64, limit: Int, wait: Duration) async throws -> EventPage {
        try record(.events(after: after, limit: limit, wait: wait))
        if holdsLongPolls {
            do {
                try await Task.sleep(for: wait)
            } catch {
                cancelledPolls += 1
                throw error
            }
        }
        return EventPage(events: [], next: after)
    }
    func acquire(_ request: AcquireRequest) throws -> LeaseView {
        try record(.acquire(request))
        return sampleLease
    }
    func renew(lease id: String) throws -> LeaseView {
        try record(.renew(id))
        return sampleLease
    }
    func drain(lease id: String, _ request: LeaseChangeRequest) throws -> LeaseView {
        try record(.drain(id, request))
        return sampleLease
    }
    func cancelDrain(lease id: String, _ request: LeaseChangeRequest) throws -> LeaseView {
        try record(.cancelDrain(id, request))
        return sampleLease
    }
    func release(lease id: String, _ request: LeaseChangeRequest) throws -> LeaseView {
        try record(.release(id, request))
        return sampleLease
    }
    func register(_ registration: FrontendRegistration) throws -> FrontendStatus {
        try record(.register(registration))
        return status()
    }
    func heartbeat(frontend name: String, _ heartbeat: Heartbeat) throws -> FrontendStatus {
        try record(.heartbeat(name, heartbeat))
        return status()
    }
    func drainHost(_ name: String) throws -> HostDrainResult {
        try record(.drainHost(name))
        return HostDrainResult(host: name, draining: ["L-000001"])
    }

    func undrainHost(_ name: String) throws -> HostDrainResult {
        try record(.undrainHost(name))
        return HostDrainResult(host: name, draining: [])
    }
}

/// Runs `body` against the API served on a real socket (any free port).
private func withAPI(
    _ fake: FakeOperations = FakeOperations(),
    logger: Logger = quietLogger,
    _ body: @Sendable (LiveHTTPClient, FakeOperations) async throws -> Void
) async throws {
    try await servingAPI(fake, token: token, logger: logger) { try await body(LiveHTTPClient(port: $0), fake) }
}

/// Keeps every debug-or-worse log record's message and metadata, for tests that check the log.
private final class RecordingLogHandler: LogHandler, Sendable {
    struct Record: Sendable {
        var message: String
        var metadata: [String: String]
    }

    private let storage = Mutex<[Record]>([])
    var records: [Record] { storage.withLock { $0 } }

    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }
    var logLevel: Logger.Level {
        get { .debug }
        set {}
    }
    subscript(metadataKey _: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        let record = Record(message: "\(event.message)", metadata: (event.metadata ?? [:]).mapValues { "\($0)" })
        storage.withLock { $0.append(record) }
    }
}

private func authorized(_ value: String = "Bearer \(token)") -> HTTPFields {
    [.authorization: value, .contentType: "application/json"]
}

private func json(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

private func decode<T: Decodable>(_ type: T.Type, _ response: LiveResponse) throws -> T {
    try JSONDecoder().decode(type, from: Data(response.body.readableBytesView))
}

private func errorMessage(_ response: LiveResponse) throws -> String {
    try decode(ErrorBody.self, response).error
}

@Suite("Broker HTTP API")
struct BrokerHTTPTests {
    @Test("each read route calls its operation and answers its JSON")
    func reads() async throws {
        try await withAPI { client, fake in
            let pool = try await client.execute(uri: "/v1/pool", method: .get)
            #expect(pool.status == .ok)
            #expect(pool.headers[.contentType] == "application/json; charset=utf-8")
            #expect(try decode(PoolView.self, pool).hosts.map(\.name) == ["c1"])

            #expect(try decode([ServiceView].self, await client.execute(uri: "/v1/services", method: .get)).map(\.name) == ["A"])
            #expect(try decode([LeaseView].self, await client.execute(uri: "/v1/leases", method: .get)) == [sampleLease])
            _ = try await client.execute(uri: "/v1/leases?all=true", method: .get)
            #expect(try decode(LeaseView.self, await client.execute(uri: "/v1/leases/L-000001", method: .get)) == sampleLease)
            let explanation = try decode(LeaseExplanation.self, await client.execute(uri: "/v1/leases/L-000002/explain", method: .get))
            #expect(explanation.events.first?.lease == "L-000002")
            let page = try decode(EventPage.self, await client.execute(uri: "/v1/events", method: .get))
            #expect(page == EventPage(events: [], next: 0))

            #expect(await fake.calls == [
                .pool, .services, .leases(includingFinal: false), .leases(includingFinal: true),
                .explain("L-000001"), .explain("L-000002"), .events(after: 0, limit: 100, wait: .zero),
            ])
        }
    }

    @Test("health needs no token and calls nothing")
    func health() async throws {
        try await withAPI { client, fake in
            let response = try await client.execute(uri: "/v1/health", method: .get)
            #expect(response.status == .ok)
            #expect(try decode([String: String].self, response) == ["status": "ok"])
            #expect(await fake.calls.isEmpty)
        }
    }

    @Test("events passes after, limit and the long-poll wait through, capped")
    func eventsQuery() async throws {
        try await withAPI { client, fake in
            for uri in ["/v1/events?after=41&limit=5&wait=2.5", "/v1/events?limit=5000&wait=600"] {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .ok)
            }
            #expect(await fake.calls == [
                .events(after: 41, limit: 5, wait: .milliseconds(2500)),
                .events(after: 0, limit: 1000, wait: .seconds(60)),
            ])
        }
    }

    @Test("a long poll whose client disconnects ends at once, not at its wait's end")
    func longPollEndsWithItsClient() async throws {
        try await withAPI { client, fake in
            await fake.holdLongPolls()
            let socket = try LoopbackSocket.connect(port: client.port)
            let request = "GET /v1/events?after=-1&wait=30 HTTP/1.1\r\nHost: test\r\n\r\n"
            #expect(request.withCString { send(socket, $0, strlen($0), 0) } == request.utf8.count)
            #expect(await Self.eventually { await fake.calls.count == 1 }, "the poll is waiting")
            close(socket)
            #expect(await Self.eventually { await fake.cancelledPolls == 1 }, "the poll ended with its client")
        }
    }

    static func eventually(_ condition: @Sendable () async -> Bool) async -> Bool {
        for _ in 0..<50 {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    @Test("bad query values are 400s that name the parameter, and call nothing")
    func badQueries() async throws {
        try await withAPI { client, fake in
            for uri in ["/v1/events?after=abc", "/v1/events?limit=0", "/v1/events?wait=-1", "/v1/events?wait=nan", "/v1/leases?all=yes"] {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .badRequest, "\(uri)")
                let parameter = String(uri.split(separator: "?")[1].split(separator: "=")[0])
                #expect(try errorMessage(response).contains("`\(parameter)`"), "\(uri)")
            }
            #expect(await fake.calls.isEmpty)
        }
    }

    @Test("each change route calls its operation with the decoded body")
    func changes() async throws {
        try await withAPI { client, fake in
            let acquired = try await client.execute(
                uri: "/v1/leases", method: .post, headers: authorized(), body: json(#"{"frontend":"fe-a","reason":"busy"}"#)
            )
            #expect(acquired.status == .created)
            #expect(try decode(LeaseView.self, acquired) == sampleLease)

            #expect(try await client.execute(uri: "/v1/leases/L-1/renew", method: .post, headers: authorized()).status == .ok)
            #expect(try await client.execute(
                uri: "/v1/leases/L-1/drain", method: .post, headers: authorized(), body: json(#"{"reason":"quiet"}"#)
            ).status == .ok)
            #expect(try await client.execute(uri: "/v1/leases/L-1/cancel-drain", method: .post, headers: authorized()).status == .ok)
            #expect(try await client.execute(
                uri: "/v1/leases/L-1/release", method: .post, headers: authorized(), body: json("{}")
            ).status == .ok)

            let registered = try await client.execute(
                uri: "/v1/frontends", method: .post, headers: authorized(),
                body: json(#"{"name":"fe-a","manifestPath":"/etc/shoal/a.yaml"}"#)
            )
            #expect(registered.status == .ok)
            #expect(try decode(FrontendStatus.self, registered).leases == [sampleLease])
            #expect(try await client.execute(
                uri: "/v1/frontends/fe-a/heartbeat", method: .post, headers: authorized(), body: json("{}")
            ).status == .ok)
            #expect(try await client.execute(uri: "/v1/frontends/fe-b/heartbeat", method: .post, headers: authorized()).status == .ok)
            let drained = try await client.execute(uri: "/v1/hosts/c2/drain", method: .post, headers: authorized(" bearer   \(token)"))
            #expect(try decode(HostDrainResult.self, drained) == HostDrainResult(host: "c2", draining: ["L-000001"]))

            #expect(await fake.calls == [
                .acquire(AcquireRequest(frontend: "fe-a", reason: "busy")),
                .renew("L-1"),
                .drain("L-1", LeaseChangeRequest(reason: "quiet")),
                .cancelDrain("L-1", LeaseChangeRequest()),
                .release("L-1", LeaseChangeRequest()),
                .register(FrontendRegistration(name: "fe-a", manifestPath: "/etc/shoal/a.yaml")),
                .heartbeat("fe-a", Heartbeat()),
                .heartbeat("fe-b", Heartbeat()),
                .drainHost("c2"),
            ])
        }
    }

    @Test("a change without the token, or with a wrong one, is 401 and calls nothing")
    func unauthorized() async throws {
        try await withAPI { client, fake in
            let cases: [(String, HTTPFields)] = [
                ("missing", [:]),
                ("wrong", authorized("Bearer not-the-token")),
                ("prefix", authorized("Bearer \(token.dropLast())")),
                ("longer", authorized("Bearer \(token)x")),
                ("empty", authorized("Bearer ")),
                ("basic", authorized("Basic \(token)")),
            ]
            for (name, headers) in cases {
                let response = try await client.execute(
                    uri: "/v1/leases", method: .post, headers: headers, body: json(#"{"frontend":"fe-a"}"#)
                )
                #expect(response.status == .unauthorized, "\(name)")
                #expect(response.headers[.wwwAuthenticate] == "Bearer", "\(name)")
                let message = try errorMessage(response)
                #expect(message.contains("`token`") && message.contains("SHOAL_TOKEN"), "\(name): \(message)")
            }
            let renew = try await client.execute(uri: "/v1/leases/L-1/renew", method: .post)
            #expect(renew.status == .unauthorized)
            #expect(await fake.calls.isEmpty)
        }
    }

    @Test("malformed bodies are 400s that name the problem, and call nothing")
    func malformedBodies() async throws {
        try await withAPI { client, fake in
            let cases: [(uri: String, body: String, expected: String)] = [
                ("/v1/leases", #"{"frontend": "#, "not valid JSON"),
                ("/v1/leases", #"{"frontend":"fe-a","reson":"typo"}"#, "unknown field `reson`"),
                ("/v1/leases", #"{"frontend":42}"#, "field `frontend` must be a string"),
                ("/v1/leases", #"{"reason":"x"}"#, "missing field `frontend`"),
                ("/v1/leases", #"{"frontend":null}"#, "field `frontend` must not be null"),
                ("/v1/leases", "", "needs a JSON body"),
                ("/v1/leases", "[1, 2]", "must be a JSON object"),
                ("/v1/leases/L-1/drain", #"{"reason":"x","force":true}"#, "unknown field `force`"),
                ("/v1/frontends/fe-a/heartbeat", #"{"localInFlight":3}"#, "unknown field `localInFlight`"),
            ]
            for (uri, body, expected) in cases {
                let response = try await client.execute(uri: uri, method: .post, headers: authorized(), body: json(body))
                #expect(response.status == .badRequest, "\(body)")
                let message = try errorMessage(response)
                #expect(message.contains(expected), "\(body): \(message)")
            }
            #expect(await fake.calls.isEmpty)
        }
    }

    @Test("a body over the limit is 413")
    func oversizeBody() async throws {
        try await withAPI { client, fake in
            let padding = String(repeating: "x", count: BrokerAPI.maxBodyBytes)
            let response = try await client.execute(
                uri: "/v1/leases", method: .post, headers: authorized(), body: json(#"{"frontend":"\#(padding)"}"#)
            )
            #expect(response.status == .contentTooLarge)
            #expect(try errorMessage(response).contains("\(BrokerAPI.maxBodyBytes)"))
            #expect(await fake.calls.isEmpty)
        }
    }

    @Test("the broker's refusals keep their message and get 400, 404 or 409", arguments: [
        (BrokerError.Code.invalid, HTTPResponse.Status.badRequest),
        (.notFound, .notFound),
        (.conflict, .conflict),
    ])
    func refusals(code: BrokerError.Code, status: HTTPResponse.Status) async throws {
        try await withAPI { client, fake in
            await fake.refuse(with: BrokerError(code, "no can do"))
            let response = try await client.execute(uri: "/v1/leases/L-9/cancel-drain", method: .post, headers: authorized())
            #expect(response.status == status)
            #expect(try errorMessage(response) == "no can do")
            #expect(await fake.calls == [.cancelDrain("L-9", LeaseChangeRequest())])
        }
    }

    @Test("any other error is a 500 with a JSON body")
    func internalError() async throws {
        try await withAPI { client, fake in
            await fake.refuse(with: FakeOperations.Unexpected())
            let response = try await client.execute(uri: "/v1/pool", method: .get)
            #expect(response.status == .internalServerError)
            #expect(try errorMessage(response).contains("log"))
        }
    }

    @Test("unknown routes are JSON 404s")
    func unknownRoute() async throws {
        try await withAPI { client, fake in
            for (uri, method) in [("/v1/nothing", HTTPRequest.Method.get), ("/v1/pool/extra", .get), ("/v1/leases/L-1/renew", .get)] {
                let response = try await client.execute(uri: uri, method: method)
                #expect(response.status == .notFound, "\(uri)")
                #expect(try errorMessage(response).contains("no such route"), "\(uri)")
            }
            #expect(await fake.calls.isEmpty)
        }
    }

    @Test("each request is logged at debug with method, path and status")
    func requestLog() async throws {
        let handler = RecordingLogHandler()
        try await withAPI(logger: Logger(label: "test", factory: { _ in handler })) { client, _ in
            _ = try await client.execute(uri: "/v1/pool?x=1", method: .get)
            _ = try await client.execute(uri: "/v1/leases/L-1/renew", method: .post)
        }
        let requests = handler.records.filter { $0.message == "HTTP request" }.map { [$0.metadata["method"], $0.metadata["path"], $0.metadata["status"]] }
        #expect(requests == [["GET", "/v1/pool", "200"], ["POST", "/v1/leases/L-1/renew", "401"]])
    }

    @Test("the server runs as a Service and reports the port it bound")
    func reportsBoundPort() async throws {
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let server = try BrokerHTTPServer(operations: FakeOperations(), token: token, port: 0, logger: quietLogger) { port in
            portSink.yield(port)
        }
        let group = ServiceGroup(services: [server], logger: quietLogger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            #expect(port > 0)
            let response = try await LiveHTTPClient(port: port).execute(uri: "/v1/health", method: .get)
            #expect(response.status == .ok)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
