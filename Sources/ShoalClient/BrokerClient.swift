import ShoalAPI
import Foundation
import Synchronization
import NIOCore
import NIOHTTP1
import NIOSSL

/// The broker's HTTP API as typed calls, one per route (and named like the broker's
/// `BrokerOperations`), for front-end agents and the CLI.
///
/// Calls share one keep-alive connection and take turns on it, so a long poll of ``events(after:limit:wait:)``
/// holds up the calls behind it: give a follower of the event log a client of its own.
/// Every call throws ``BrokerClientError``, or `CancellationError` if its task is cancelled.
///
/// With standby brokers (docs/ha.md) the client is given every broker's URL: a call goes to the
/// one that answered last, and to the next when that one cannot be reached (only the active
/// broker listens), so a client follows a failover by itself.
public final class BrokerClient: Sendable {
    /// The brokers' base URLs, as given (comma-separated when there are several).
    public let baseURL: String
    /// Sent as `Authorization: Bearer` with every POST: the routes that change things.
    private let token: String?
    private let timeout: Duration
    private let brokers: [(url: String, connection: HTTPClientConnection)]
    /// The broker that answered last: the first one asked.
    private let preferred = Mutex(0)

    /// - Parameters:
    ///   - baseURL: `http://HOST[:PORT]`, or several, comma-separated; see ``BrokerAddress/resolve(_:)``.
    ///   - token: The broker's token (``BrokerToken/read(stateDirectory:)``); `nil` for read-only use.
    ///   - timeout: For each call as a whole: connecting, sending and the whole answer.
    ///   - caFile: For `https://` brokers: the PEM certificates to trust (the broker's own, or
    ///     the CA that signed it); `nil`: `$SHOAL_CA_FILE`, else the system's trusted roots.
    /// - Throws: ``BrokerClientError`` (``BrokerClientError/Kind/invalidAddress(reason:)``) if the URL
    ///   or the CA file won't do.
    public init(
        baseURL: String = "http://127.0.0.1:7070", token: String?, timeout: Duration = .seconds(5), caFile: String? = nil
    ) throws(BrokerClientError) {
        var brokers: [(url: String, connection: HTTPClientConnection)] = []
        let urls = baseURL.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var tls: NIOSSLContext?
        for url in urls {
            let endpoint = try BrokerEndpoint.parse(url).get()
            if endpoint.tls, tls == nil { tls = try Self.tlsContext(caFile: caFile, broker: url) }
            // With several brokers, one whose host is gone must not hold a call for its whole timeout.
            brokers.append((url, HTTPClientConnection(host: endpoint.host, port: endpoint.port,
                                                      connectTimeout: urls.count > 1 ? .seconds(1) : nil,
                                                      tls: endpoint.tls ? tls : nil)))
        }
        guard !brokers.isEmpty else {
            throw BrokerClientError(.invalidAddress(reason: "no broker URL"), broker: baseURL, request: "")
        }
        self.baseURL = baseURL
        self.token = token
        self.timeout = timeout
        self.brokers = brokers
    }

    /// The client side of TLS: the broker's certificate must chain to `caFile` (or the system's
    /// roots) and name the host it was reached at.
    private static func tlsContext(caFile: String?, broker: String) throws(BrokerClientError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile = caFile ?? ProcessInfo.processInfo.environment["SHOAL_CA_FILE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw BrokerClientError(.invalidAddress(reason: "cannot read the CA file \(caFile)"), broker: broker, request: "")
            }
            configuration.trustRoots = .file(caFile)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw BrokerClientError(.invalidAddress(reason: "cannot use the CA file for TLS: \(error)"), broker: broker, request: "")
        }
    }

    /// Closes the connections; a call in progress fails, and later calls are refused.
    public func close() async {
        for broker in brokers { await broker.connection.close() }
    }

    // MARK: Reading

    public func pool() async throws -> PoolView {
        try await call(.GET, "/pool")
    }

    public func services() async throws -> [ServiceView] {
        try await call(.GET, "/services")
    }

    /// Live leases; with `includingFinal`, released and revoked ones too.
    public func leases(includingFinal: Bool = false) async throws -> [LeaseView] {
        try await call(.GET, "/leases", query: includingFinal ? "all=true" : nil)
    }

    /// One lease, live or final.
    public func lease(_ id: String) async throws -> LeaseView {
        try await call(.GET, "/leases/\(id.percentEncodedPathSegment)")
    }

    /// One lease, asked by its worker: the broker counts the asking as a sign of the worker's life.
    public func workerCheck(lease id: String) async throws -> LeaseView {
        try await call(.GET, "/leases/\(id.percentEncodedPathSegment)/worker")
    }

    /// One lease and every event of its life.
    public func explain(lease id: String) async throws -> LeaseExplanation {
        try await call(.GET, "/leases/\(id.percentEncodedPathSegment)/explain")
    }

    /// Events after `after`, oldest first, at most `limit`; if there are none yet, the broker
    /// waits up to `wait` for one (a long poll: this call's timeout is `wait` longer).
    public func events(after: Int64 = 0, limit: Int = 100, wait: Duration = .zero) async throws -> EventPage {
        var query = "after=\(after)&limit=\(limit)"
        if wait > .zero { query += "&wait=\(wait.decimalSeconds)" }
        return try await call(.GET, "/events", query: query, timeout: timeout + max(wait, .zero))
    }

    // MARK: Leases

    /// A new lease for the front-end's service: granted at once if a slot is free, else queued.
    public func acquire(_ request: AcquireRequest) async throws -> LeaseView {
        try await call(.POST, "/leases", body: request)
    }

    public func renew(lease id: String) async throws -> LeaseView {
        try await call(.POST, "/leases/\(id.percentEncodedPathSegment)/renew")
    }

    /// The front-end stopped routing to the lease's back-end (scale-down); it may still cancel.
    public func drain(lease id: String, _ request: LeaseChangeRequest = LeaseChangeRequest()) async throws -> LeaseView {
        try await call(.POST, "/leases/\(id.percentEncodedPathSegment)/drain", body: request)
    }

    public func cancelDrain(lease id: String, _ request: LeaseChangeRequest = LeaseChangeRequest()) async throws -> LeaseView {
        try await call(.POST, "/leases/\(id.percentEncodedPathSegment)/cancel-drain", body: request)
    }

    /// The front-end has nothing in flight there any more: the slot is freed.
    public func release(lease id: String, _ request: LeaseChangeRequest = LeaseChangeRequest()) async throws -> LeaseView {
        try await call(.POST, "/leases/\(id.percentEncodedPathSegment)/release", body: request)
    }

    // MARK: Front-ends and hosts

    public func register(_ registration: FrontendRegistration) async throws -> FrontendStatus {
        try await call(.POST, "/frontends", body: registration)
    }

    /// Renews every lease of the front-end.
    public func heartbeat(frontend name: String, _ heartbeat: Heartbeat) async throws -> FrontendStatus {
        try await call(.POST, "/frontends/\(name.percentEncodedPathSegment)/heartbeat", body: heartbeat)
    }

    /// Maintenance: no new grants on the host, and every lease there drains.
    public func drainHost(_ name: String) async throws -> HostDrainResult {
        try await call(.POST, "/hosts/\(name.percentEncodedPathSegment)/drain")
    }

    /// Maintenance over: the host takes new leases again.
    public func undrainHost(_ name: String) async throws -> HostDrainResult {
        try await call(.POST, "/hosts/\(name.percentEncodedPathSegment)/undrain")
    }

    // MARK: The exchange

    /// Sends `body` as JSON to `path` (below ``BrokerAPI/prefix``) and decodes a 2xx answer.
    private func call<Answer: Decodable>(
        _ method: HTTPMethod, _ path: String, query: String? = nil, body: (any Encodable & Sendable)? = nil,
        timeout: Duration? = nil
    ) async throws -> Answer {
        let request = "\(method.rawValue) \(BrokerAPI.prefix)\(path)"
        let target = BrokerAPI.prefix + path + (query.map { "?" + $0 } ?? "")
        var headers: HTTPHeaders = ["Accept": "application/json"]
        if method == .POST, let token {
            headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        var bytes: ByteBuffer?
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            bytes = try ByteBuffer(bytes: JSONEncoder().encode(body))
        }

        let (answer, broker) = try await send(method, target, headers: headers, body: bytes, request: request, timeout: timeout ?? self.timeout)
        let data = Data(answer.body.readableBytesView)
        guard (200..<300).contains(answer.status.code) else {
            throw BrokerClientError(.status(code: Int(answer.status.code), message: Self.message(in: data, status: answer.status)),
                                    broker: broker, request: request)
        }
        do {
            return try JSONDecoder().decode(Answer.self, from: data)
        } catch {
            throw BrokerClientError(.badAnswer(expected: "\(Answer.self) as JSON", detail: Self.describe(decoding: error)),
                                    broker: broker, request: request)
        }
    }

    /// Sends to the broker that answered last; while a broker cannot be reached (nothing of the
    /// request got there), to the next one. Returns the answer and the URL that gave it.
    private func send(
        _ method: HTTPMethod, _ target: String, headers: HTTPHeaders, body: ByteBuffer?, request: String, timeout: Duration
    ) async throws -> (HTTPAnswer, String) {
        let first = preferred.withLock { $0 }
        var lastError: BrokerClientError?
        for offset in brokers.indices {
            let index = (first + offset) % brokers.count
            let broker = brokers[index]
            do {
                let answer = try await broker.connection.send(method, target, headers: headers, body: body, timeout: timeout)
                preferred.withLock { $0 = index }
                return (answer, broker.url)
            } catch let failure as HTTPClientFailure {
                lastError = error(failure, broker: broker.url, request: request, timeout: timeout)
                switch failure {
                case .connectFailed, .closedBeforeAnswer:
                    continue  // Not the active broker, or gone: the next.
                case .timedOut where brokers.count > 1:
                    // Perhaps taken (so not sent again), but its host may be gone: the next call asks the next broker.
                    preferred.withLock { $0 = (index + 1) % brokers.count }
                    throw lastError!
                default:
                    throw lastError!
                }
            }
        }
        throw lastError!
    }

    private func error(_ failure: HTTPClientFailure, broker: String, request: String, timeout: Duration) -> BrokerClientError {
        let kind: BrokerClientError.Kind
        switch failure {
        case .connectFailed(let error):
            kind = .unreachable(reason: ConnectFailure.describe(error))
        case .closedBeforeAnswer(let error):
            kind = .unreachable(reason: "the connection \(error.map { "failed (\($0))" } ?? "closed") before an answer")
        case .closedDuringAnswer(let error):
            kind = .badAnswer(expected: "a whole HTTP answer", detail: "the connection \(error.map { "failed (\($0))" } ?? "closed") partway")
        case .timedOut:
            kind = .timedOut(after: timeout)
        case .answerTooLarge(let limit):
            kind = .badAnswer(expected: "an answer under \(limit >> 20) MiB", detail: "it was longer")
        case .clientClosed:
            kind = .unreachable(reason: "this client was closed")
        }
        return BrokerClientError(kind, broker: broker, request: request)
    }

    /// The broker's `{"error": ...}` sentence, or else the body as text, or else the reason phrase.
    private static func message(in body: Data, status: HTTPResponseStatus) -> String {
        if let error = try? JSONDecoder().decode(ErrorBody.self, from: body) { return error.error }
        let text = String(decoding: body.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? status.reasonPhrase : text
    }

    private static func describe(decoding error: any Error) -> String {
        let context: DecodingError.Context
        switch error as? DecodingError {
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c): context = c
        case nil: return "\(error)"
        @unknown default: return "\(error)"
        }
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return path.isEmpty ? context.debugDescription : "at \(path): \(context.debugDescription)"
    }
}
