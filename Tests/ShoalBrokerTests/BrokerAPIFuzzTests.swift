import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import ShoalAPI
import ShoalBroker
import ShoalCore
import Testing

private let token = "s3cret-fuzz-token"

/// Bad input, tried at scale, against the broker's API over a real socket, in front of a real
/// `Broker` (SQLite lease store in a temporary directory, fake launcher): malformed JSON, wrong
/// types, unknown and missing fields, huge and deeply nested bodies, random paths, methods and
/// query values, missing, wrong and near-miss tokens, unknown ids and refused transitions. Each
/// gets its 4xx as docs/broker.md says — never a 500 — and none changes the lease table, the
/// event log or what the broker reports. The seed is fixed, so a failure repeats.
@Suite struct BrokerAPIFuzzTests {
    @Test("2 000 bad requests get 400, 401, 404, 405, 409 or 413 (never 500) and change neither the lease table nor the event log")
    func rejectedRequestsChangeNothing() async throws {
        try await withBroker(hosts: [PoolHost(name: "c1", slots: 2)]) { h in
            let manifestPath = try await h.register("a", max: 3)
            let first = try await h.activeLease("a").id
            let second = try await h.activeLease("a").id
            let queued = try await h.acquire("a").id  // No slot left: it waits, then is withdrawn (final).
            _ = try await h.broker.release(lease: queued, LeaseChangeRequest(reason: "fuzz setup"))
            #expect(try await h.lease(queued).lease.state.isFinal)

            let world = APIFuzzWorld(active: [first, second], final: queued, manifestPath: manifestPath)
            var random = SplitMix64(seed: 0xB20C_E201)
            let cases = (0..<2_040).map { world.input($0, &random) }

            let before = try await BrokerSnapshot(h)
            let start = ContinuousClock.now
            let answers = try await withAPI(h.broker) { client in
                await APIFuzzCase.send(cases, to: client)
            }
            let took = ContinuousClock.now - start
            let after = try await BrokerSnapshot(h)

            var statuses: [Int: Int] = [:]
            var problems: [String] = []
            for (input, answer) in zip(cases, answers) {
                switch answer {
                case .success(let status):
                    statuses[status, default: 0] += 1
                    if !input.expected.contains(status) {
                        problems.append("\(input.kind): \(input.method) \(input.uri) got \(status), expected one of \(input.expected.sorted())")
                    }
                case .failure(let error):
                    problems.append("\(input.kind): \(input.method) \(input.uri) got no answer: \(error)")
                }
            }
            let counts = statuses.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")
            print("BrokerAPIFuzz: \(cases.count) requests, answers \(counts), \(problems.count) problems, took \(took)")
            for problem in problems.prefix(8) { Issue.record(Comment(rawValue: problem)) }
            #expect(problems.isEmpty)
            #expect(statuses[500] == nil)
            #expect(Set(statuses.keys).isSuperset(of: [400, 401, 404, 409, 413]), "every kind of refusal was tried")
            #expect(before == after, "a rejected request changed the broker")
            #expect(after.events.count >= 8, "the setup's events are there to be compared")
        }
    }
}

/// What the broker holds and reports: must be the same before and after the rejected requests.
private struct BrokerSnapshot: Equatable {
    var leases: [StoredLease]
    var events: [BrokerEvent]
    var pool: PoolView
    var services: [ServiceView]
    var launcherCalls: [FakeLauncher.Call]

    init(_ h: BrokerHarness) async throws {
        leases = try await h.store.leases(includingFinal: true)
        events = try await h.store.events(after: 0, limit: 1_000_000)
        pool = try await h.broker.pool()
        services = try await h.broker.services()
        launcherCalls = h.launcher.calls
    }
}

/// Serves `broker` on a free port for the duration of `body`.
private func withAPI<T: Sendable>(_ broker: Broker, _ body: @Sendable (LiveHTTPClient) async throws -> T) async throws -> T {
    try await servingAPI(broker, token: token) { try await body(LiveHTTPClient(port: $0)) }
}

/// One request and the statuses it may get.
private struct APIFuzzCase: Sendable {
    var kind: String
    var method: HTTPRequest.Method
    var uri: String
    var headers: HTTPFields
    var body: ByteBuffer?
    var expected: Set<Int>

    /// Sends every case, a few at a time; the statuses in the order of `cases`.
    static func send(_ cases: [APIFuzzCase], to client: LiveHTTPClient) async -> [Result<Int, any Error>] {
        await withTaskGroup(of: (Int, Result<Int, any Error>).self) { group in
            var pending = cases.indices.makeIterator()
            func start(_ index: Int) {
                let input = cases[index]
                group.addTask {
                    do {
                        let response = try await client.execute(uri: input.uri, method: input.method, headers: input.headers, body: input.body)
                        return (index, .success(response.status.code))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            for _ in 0..<6 { if let index = pending.next() { start(index) } }
            var results = [Result<Int, any Error>?](repeating: nil, count: cases.count)
            while let (index, result) = await group.next() {
                results[index] = result
                if let next = pending.next() { start(next) }
            }
            return results.map { $0! }
        }
    }
}

/// The broker's leases and names, and the generators of bad requests against them.
private struct APIFuzzWorld {
    let active: [String]
    let final: String
    let manifestPath: String

    static let authorized: HTTPFields = [.authorization: "Bearer \(token)", .contentType: "application/json"]

    func input(_ round: Int, _ random: inout SplitMix64) -> APIFuzzCase {
        switch round % 12 {
        case 0, 1, 2: malformedJSON(&random)
        case 3: wrongTypes(&random)
        case 4: unknownOrMissingFields(&random)
        case 5: oversizeOrDeep(&random)
        case 6: badToken(&random)
        case 7, 8: randomRoute(&random)
        case 9: unknownNames(&random)
        case 10: queryValues(&random)
        default: refusedTransition(&random)
        }
    }

    /// Every route that takes a JSON body, with a valid body for it.
    var bodyRoutes: [(uri: String, valid: String)] {
        [
            ("/v1/leases", #"{"frontend":"fe-a","reason":"busy"}"#),
            ("/v1/leases/\(active[0])/drain", #"{"reason":"quiet"}"#),
            ("/v1/leases/\(active[1])/cancel-drain", #"{"reason":"busy again"}"#),
            ("/v1/leases/\(active[0])/release", #"{"reason":"done"}"#),
            ("/v1/frontends", #"{"name":"fe-new","manifestPath":"\#(manifestPath)"}"#),
        ]
    }

    private func post(_ kind: String, _ uri: String, _ body: String, expected: Set<Int>) -> APIFuzzCase {
        APIFuzzCase(kind: kind, method: .post, uri: uri, headers: Self.authorized, body: ByteBuffer(string: body), expected: expected)
    }

    /// A strict prefix of a valid body (never empty: an empty body is valid for some routes),
    /// random bytes that cannot start JSON, or a valid body with its structure broken.
    func malformedJSON(_ random: inout SplitMix64) -> APIFuzzCase {
        let route = bodyRoutes.randomElement(using: &random)!
        let valid = Array(route.valid.utf8)
        var body: [UInt8]
        switch Int.random(in: 0..<3, using: &random) {
        case 0:
            body = Array(valid.prefix(Int.random(in: 1..<valid.count, using: &random)))
        case 1:
            body = (0..<Int.random(in: 1...200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            body[0] = Array("#)x=}\u{1}'".utf8).randomElement(using: &random)!
        default:
            // Structure broken where no string can absorb it: after the object, its first colon, its brace.
            body = valid
            switch Int.random(in: 0..<3, using: &random) {
            case 0: body += Array([",", "}", "{}", "x", "\u{0}", "[", "\""].randomElement(using: &random)!.utf8)
            case 1: body.remove(at: body.firstIndex(of: UInt8(ascii: ":"))!)
            default: body[0] = Array("([<x'".utf8).randomElement(using: &random)!
            }
        }
        return APIFuzzCase(kind: "malformed JSON", method: .post, uri: route.uri, headers: Self.authorized,
                           body: ByteBuffer(bytes: body), expected: [400])
    }

    static let notStrings = ["42", "-1", "3.5", "true", "false", "[]", "{}", #"["x"]"#, #"{"a":1}"#]
    static let notInts = [#""3""#, "3.5", "true", "[]", "{}", #""x""#, "99999999999999999999", "1e400"]

    /// A field of the wrong type, or null where one is required.
    func wrongTypes(_ random: inout SplitMix64) -> APIFuzzCase {
        let bodies: [(String, String)] = [
            ("/v1/leases", #"{"frontend":\#(Self.notStrings.randomElement(using: &random)!)}"#),
            ("/v1/leases", #"{"frontend":null}"#),
            ("/v1/leases", #"{"frontend":"fe-a","reason":\#(Self.notStrings.randomElement(using: &random)!)}"#),
            ("/v1/leases/\(active[0])/drain", #"{"reason":\#(Self.notStrings.randomElement(using: &random)!)}"#),
            ("/v1/frontends", #"{"name":\#(Self.notStrings.randomElement(using: &random)!),"manifestPath":"\#(manifestPath)"}"#),
            ("/v1/frontends", #"{"name":"fe-new","manifestPath":null}"#),
            ("/v1/frontends/fe-a/heartbeat", #"{"localInFlight":\#(Self.notInts.randomElement(using: &random)!)}"#),
            ("/v1/leases/\(active[1])/release", ["[]", "[1]", "1", #""s""#, "true", "null"].randomElement(using: &random)!),
        ]
        let (uri, body) = bodies.randomElement(using: &random)!
        return post("wrong type", uri, body, expected: [400])
    }

    static let unknownKeys = ["force", "Frontend", "FRONTEND", "front_end", "manifest_path", "Reason", "", "é", "lease", "id", "__proto__", "frontend "]

    /// A valid body plus a field the type does not have (not null: null fields are ignored),
    /// or one without a required field.
    func unknownOrMissingFields(_ random: inout SplitMix64) -> APIFuzzCase {
        if Bool.random(using: &random) {
            let route = bodyRoutes.randomElement(using: &random)!
            let key = Self.unknownKeys.randomElement(using: &random)!
            let value = (Self.notStrings + [#""x""#]).randomElement(using: &random)!
            let body = #"{"\#(key)":\#(value),"# + route.valid.dropFirst()
            return post("unknown field", route.uri, body, expected: [400])
        }
        let missing: [(String, String)] = [
            ("/v1/leases", "{}"), ("/v1/leases", #"{"reason":"x"}"#),
            ("/v1/frontends", #"{"name":"fe-new"}"#), ("/v1/frontends", #"{"manifestPath":"\#(manifestPath)"}"#), ("/v1/frontends", "{}"),
        ]
        let (uri, body) = missing.randomElement(using: &random)!
        return post("missing field", uri, body, expected: [400])
    }

    /// A body over 64 KiB (413), or arrays nested thousands deep within it (400).
    func oversizeOrDeep(_ random: inout SplitMix64) -> APIFuzzCase {
        let route = bodyRoutes.randomElement(using: &random)!
        if Bool.random(using: &random) {
            let padding = String(repeating: "x", count: Int.random(in: (BrokerAPI.maxBodyBytes + 1)...300_000, using: &random))
            return post("huge body", route.uri, #"{"reason":"\#(padding)"}"#, expected: [413])
        }
        let depth = Int.random(in: 1_000...60_000, using: &random)
        let body = Bool.random(using: &random) ? #"{"reason":"# + String(repeating: "[", count: depth) : String(repeating: "[", count: depth)
        return post("deep nesting", route.uri, body, expected: [400])
    }

    /// A change that would go through with the token, sent without it or with a wrong one.
    func badToken(_ random: inout SplitMix64) -> APIFuzzCase {
        var flipped = Array(token.utf8)
        flipped[Int.random(in: 0..<flipped.count, using: &random)] ^= 0x01
        let values: [String?] = [
            nil, "", "Bearer", "Bearer x", "Bearer \(token.dropLast())", "Bearer \(token)x", "Bearer \(String(decoding: flipped, as: UTF8.self))",
            "Bearer \(token.uppercased())", "Basic \(token)", token, "Bearer:\(token)", "Bearer\t\(token)", "Token \(token)",
            "Bearer \(token) extra", "Bearer x\(token)", "Bearer \(token.dropFirst())",
        ]
        let changes: [(String, String?)] = [
            ("/v1/leases", #"{"frontend":"fe-a"}"#), ("/v1/leases/\(active[0])/drain", "{}"), ("/v1/leases/\(active[0])/renew", nil),
            ("/v1/leases/\(active[1])/release", nil), ("/v1/hosts/c1/drain", nil), ("/v1/frontends/fe-a/heartbeat", nil),
            ("/v1/frontends", #"{"name":"fe-new","manifestPath":"\#(manifestPath)"}"#),
        ]
        let (uri, body) = changes.randomElement(using: &random)!
        var headers: HTTPFields = [.contentType: "application/json"]
        if let value = values.randomElement(using: &random)! { headers[.authorization] = value }
        return APIFuzzCase(kind: "bad token", method: .post, uri: uri, headers: headers, body: body.map { ByteBuffer(string: $0) }, expected: [401])
    }

    static let segments = [
        "v1", "v2", "V1", "leases", "lease", "Leases", "frontends", "hosts", "pool", "services", "events", "health", "explain",
        "renew", "drain", "cancel-drain", "release", "heartbeat", "L-000001", "L-999999", "fe-a", "c1", "..", ".", "%2e%2e",
        "%00", "%ff", "~", "a%20b", "x", "",
    ]
    static let otherMethods: [HTTPRequest.Method] = [.put, .delete, .patch, .options, HTTPRequest.Method("PURGE")!, HTTPRequest.Method("X-FUZZ")!]

    /// A random path under or beside `/v1` with a random method. Reads may succeed; a change
    /// never does: with the token a POST goes only to paths that are no change route.
    func randomRoute(_ random: inout SplitMix64) -> APIFuzzCase {
        var segments = (0..<Int.random(in: 0...5, using: &random)).map { _ in Self.segments.randomElement(using: &random)! }
        if Bool.random(using: &random) { segments.insert("v1", at: 0) }
        switch Int.random(in: 0..<4, using: &random) {
        case 0:
            return APIFuzzCase(kind: "random read", method: [.get, .head].randomElement(using: &random)!, uri: "/" + segments.joined(separator: "/"),
                               headers: [:], body: nil, expected: [200, 400, 404])
        case 1:
            if Self.isChangeRoute(segments) { segments.append("zz") }
            return APIFuzzCase(kind: "random change", method: .post, uri: "/" + segments.joined(separator: "/"),
                               headers: Self.authorized, body: ByteBuffer(string: "{}"), expected: [404, 405])
        case 2:
            let method = Self.otherMethods.randomElement(using: &random)!
            return APIFuzzCase(kind: "other method", method: method, uri: "/" + segments.joined(separator: "/"),
                               headers: Self.authorized, body: nil, expected: Self.isKnown(method) ? [404, 405] : [400])
        default:
            let method = Self.otherMethods.randomElement(using: &random)!
            return APIFuzzCase(kind: "other method, no token", method: method, uri: "/" + segments.joined(separator: "/"),
                               headers: [:], body: nil, expected: Self.isKnown(method) ? [401, 404, 405] : [400])
        }
    }

    /// Whether the HTTP parser knows `method`; it refuses others as malformed (400).
    static func isKnown(_ method: HTTPRequest.Method) -> Bool { method.rawValue != "X-FUZZ" }

    /// Whether `segments` (empty ones dropped, percent-decoded) name a route that changes something.
    static func isChangeRoute(_ segments: [String]) -> Bool {
        let path = segments.compactMap { $0.removingPercentEncoding ?? $0 }.filter { !$0.isEmpty }
        guard path.first == "v1" else { return false }
        let rest = Array(path.dropFirst())
        switch rest.count {
        case 1: return rest[0] == "leases" || rest[0] == "frontends"
        case 3: return (rest[0] == "leases" && ["renew", "drain", "cancel-drain", "release"].contains(rest[2]))
            || (rest[0] == "frontends" && rest[2] == "heartbeat") || (rest[0] == "hosts" && rest[2] == "drain")
        default: return false
        }
    }

    /// Real routes with a lease, front-end or host that does not exist (near misses included).
    func unknownNames(_ random: inout SplitMix64) -> APIFuzzCase {
        let leases = ["L-999999", "L-00001", "L-0000010", "l-000001", "L-000001x", "L-%C3%A9", "L-", "0", "%20L-000001", randomName(&random)]
        let frontends = ["fe-A", "fe-", "fe-b", "fe-a.", "FE-A", "fe%2Da%2D", randomName(&random)]
        let hosts = ["C1", "c2", "c1.", "c", "c1%00", randomName(&random)]
        let lease = leases.randomElement(using: &random)!
        let choices: [(HTTPRequest.Method, String, String?)] = [
            (.post, "/v1/leases/\(lease)/\(["renew", "drain", "cancel-drain", "release"].randomElement(using: &random)!)", nil),
            (.post, "/v1/frontends/\(frontends.randomElement(using: &random)!)/heartbeat", nil),
            (.post, "/v1/hosts/\(hosts.randomElement(using: &random)!)/drain", nil),
            (.post, "/v1/leases", #"{"frontend":"\#(frontends.randomElement(using: &random)!)"}"#),
            (.get, "/v1/leases/\(lease)", nil),
            (.get, "/v1/leases/\(lease)/explain", nil),
        ]
        let (method, uri, body) = choices.randomElement(using: &random)!
        return APIFuzzCase(kind: "unknown name", method: method, uri: uri, headers: Self.authorized, body: body.map { ByteBuffer(string: $0) }, expected: [404])
    }

    /// A name of unreserved characters and percent-encoded bytes.
    func randomName(_ random: inout SplitMix64) -> String {
        let unreserved = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~")
        return (0..<Int.random(in: 1...24, using: &random)).map { _ in
            Int.random(in: 0..<5, using: &random) == 0
                ? String(format: "%%%02X", Int.random(in: 0...255, using: &random))
                : String(unreserved.randomElement(using: &random)!)
        }.joined()
    }

    static let goodQuery: [String: [String]] = [
        "after": ["-1", "0", "1", "3", "999999"], "limit": ["1", "5", "100", "5000"], "wait": ["0", "0.0", "0.000"], "all": ["true", "false"],
    ]
    static let badQuery: [String: [String]] = [
        "after": ["-2", "abc", "", "1.5", "0x1", "99999999999999999999", "%00", "1e3", "%201", "-"],
        "limit": ["0", "-1", "x", "", "1.0", "%FF", "99999999999999999999"],
        "wait": ["-1", "nan", "inf", "-0.5", "x", "", "1e999", "%0A"],  // (Double takes "0x1": one second)
        "all": ["yes", "1", "TRUE", "", "True", "on", "%00"],
    ]

    /// Read queries with random values: 400 when any value is bad, else 200.
    func queryValues(_ random: inout SplitMix64) -> APIFuzzCase {
        let events = Bool.random(using: &random)
        let names = events ? ["after", "limit", "wait"] : ["all"]
        var parts: [String] = []
        var bad = false
        for name in names where Int.random(in: 0..<3, using: &random) > 0 {
            if Bool.random(using: &random) {
                parts.append("\(name)=\(Self.badQuery[name]!.randomElement(using: &random)!)")
                bad = true
            } else {
                parts.append("\(name)=\(Self.goodQuery[name]!.randomElement(using: &random)!)")
            }
        }
        if Bool.random(using: &random) { parts.append("unknown\(Int.random(in: 0...9, using: &random))=1") }
        parts.shuffle(using: &random)
        let uri = (events ? "/v1/events" : "/v1/leases") + (parts.isEmpty ? "" : "?" + parts.joined(separator: "&"))
        return APIFuzzCase(kind: "query", method: .get, uri: uri, headers: [:], body: nil, expected: bad ? [400] : [200])
    }

    /// Transitions the state forbids: cancelling the drain of an active lease, anything but a
    /// release of a final one.
    func refusedTransition(_ random: inout SplitMix64) -> APIFuzzCase {
        let choices = [
            "/v1/leases/\(active.randomElement(using: &random)!)/cancel-drain",
            "/v1/leases/\(final)/renew", "/v1/leases/\(final)/drain", "/v1/leases/\(final)/cancel-drain",
        ]
        let body = [nil, "{}", #"{"reason":"fuzz"}"#].randomElement(using: &random)!
        return APIFuzzCase(kind: "refused transition", method: .post, uri: choices.randomElement(using: &random)!,
                           headers: Self.authorized, body: body.map { ByteBuffer(string: $0) }, expected: [409])
    }
}
