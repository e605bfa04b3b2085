import HTTPTypes
import Hummingbird
import ShoalAPI

/// One route per ``BrokerOperations`` method: parse the request, call, answer JSON.
struct BrokerRoutes<Operations: BrokerOperations>: Sendable {
    let operations: Operations

    func add(to router: Router<BasicRequestContext>) {
        let v1 = BrokerAPI.prefix
        let operations = operations

        router.get("\(v1)/health") { _, _ in
            try JSONResponse.make(["status": "ok"])
        }

        // Reads.
        router.get("\(v1)/pool") { _, _ in
            try JSONResponse.make(await operations.pool())
        }
        router.get("\(v1)/services") { _, _ in
            try JSONResponse.make(await operations.services())
        }
        router.get("\(v1)/leases") { request, _ in
            let all = try QueryValue.bool("all", in: request.uri.queryParameters) ?? false
            return try JSONResponse.make(await operations.leases(includingFinal: all))
        }
        router.get("\(v1)/leases/:id") { _, context in
            let id = try context.parameters.require("id")
            return try JSONResponse.make(await operations.explain(lease: id).lease)
        }
        router.get("\(v1)/leases/:id/worker") { _, context in
            let id = try context.parameters.require("id")
            return try JSONResponse.make(await operations.workerAsked(lease: id))
        }
        router.get("\(v1)/leases/:id/explain") { _, context in
            let id = try context.parameters.require("id")
            return try JSONResponse.make(await operations.explain(lease: id))
        }
        router.get("\(v1)/events") { request, _ in
            let query = try EventQuery(request.uri.queryParameters)
            guard query.wait > .zero else {
                return try JSONResponse.make(await operations.events(after: query.after, limit: query.limit, wait: .zero))
            }
            // A long poll whose client went away ends then, not at its wait's end. Hummingbird
            // closes the connection after such a response: say so, so the client does not reuse it.
            let page: EventPage
            do {
                page = try await request.body.consumeWithCancellationOnInboundClose { _ in
                    try await operations.events(after: query.after, limit: query.limit, wait: query.wait)
                }
            } catch is CancellationError {
                // Its client went away, or the broker is stopping: nothing came, and nothing failed.
                page = EventPage(events: [], next: query.after)
            }
            var response = try JSONResponse.make(page)
            response.headers[.connection] = "close"
            return response
        }

        // Changes (the token middleware has already checked the caller).
        router.post("\(v1)/leases") { request, _ in
            let body = try await StrictJSON.decode(AcquireRequest.self, from: request)
            return try JSONResponse.make(await operations.acquire(body), status: .created)
        }
        router.post("\(v1)/leases/:id/renew") { _, context in
            let id = try context.parameters.require("id")
            return try JSONResponse.make(await operations.renew(lease: id))
        }
        router.post("\(v1)/leases/:id/drain") { request, context in
            let id = try context.parameters.require("id")
            let body = try await StrictJSON.decode(LeaseChangeRequest.self, from: request, ifEmpty: LeaseChangeRequest())
            return try JSONResponse.make(await operations.drain(lease: id, body))
        }
        router.post("\(v1)/leases/:id/cancel-drain") { request, context in
            let id = try context.parameters.require("id")
            let body = try await StrictJSON.decode(LeaseChangeRequest.self, from: request, ifEmpty: LeaseChangeRequest())
            return try JSONResponse.make(await operations.cancelDrain(lease: id, body))
        }
        router.post("\(v1)/leases/:id/release") { request, context in
            let id = try context.parameters.require("id")
            let body = try await StrictJSON.decode(LeaseChangeRequest.self, from: request, ifEmpty: LeaseChangeRequest())
            return try JSONResponse.make(await operations.release(lease: id, body))
        }
        router.post("\(v1)/frontends") { request, _ in
            let body = try await StrictJSON.decode(FrontendRegistration.self, from: request)
            return try JSONResponse.make(await operations.register(body))
        }
        router.post("\(v1)/frontends/:name/heartbeat") { request, context in
            let name = try context.parameters.require("name")
            let body = try await StrictJSON.decode(Heartbeat.self, from: request, ifEmpty: Heartbeat())
            return try JSONResponse.make(await operations.heartbeat(frontend: name, body))
        }
        router.post("\(v1)/hosts/:name/drain") { _, context in
            let name = try context.parameters.require("name")
            return try JSONResponse.make(await operations.drainHost(name))
        }
        router.post("\(v1)/hosts/:name/undrain") { _, context in
            let name = try context.parameters.require("name")
            return try JSONResponse.make(await operations.undrainHost(name))
        }
    }
}

/// `GET /v1/events`'s query: where to start, how many, and how long to wait for the first.
struct EventQuery: Sendable, Equatable {
    static let defaultLimit = 100
    static let maxLimit = 1000
    /// Long polls are capped so a forgotten client cannot hold a request open for ever.
    static let maxWaitSeconds = 60.0

    var after: Int64
    var limit: Int
    var wait: Duration

    init(after: Int64 = 0, limit: Int = EventQuery.defaultLimit, wait: Duration = .zero) {
        self.after = after
        self.limit = limit
        self.wait = wait
    }

    /// Too-large `limit` and `wait` are capped, not refused: the client just gets less.
    /// `after=-1` means "from now": only events still to come (a follower's start).
    init(_ query: Parameters) throws {
        let after = try QueryValue.parse("after", in: query, as: "a whole number, -1 (from now) or more") { Int64($0).flatMap { $0 >= -1 ? $0 : nil } }
        let limit = try QueryValue.parse("limit", in: query, as: "a whole number, 1 or more") { Int($0).flatMap { $0 >= 1 ? $0 : nil } }
        let seconds = try QueryValue.parse("wait", in: query, as: "seconds, 0 or more") { Double($0).flatMap { $0.isFinite && $0 >= 0 ? $0 : nil } }
        self.init(
            after: after ?? 0,
            limit: min(limit ?? Self.defaultLimit, Self.maxLimit),
            wait: .milliseconds(Int64((min(seconds ?? 0, Self.maxWaitSeconds) * 1000).rounded()))
        )
    }
}

/// Query-string values, each refused with a 400 that names it when it does not parse.
enum QueryValue {
    static func parse<Value>(
        _ name: String, in query: Parameters, as expected: String, _ convert: (String) -> Value?
    ) throws -> Value? {
        guard let text = query.get(name) else { return nil }
        guard let value = convert(text) else {
            throw HTTPError(.badRequest, message: "query parameter `\(name)` must be \(expected), not \"\(text)\"")
        }
        return value
    }

    static func bool(_ name: String, in query: Parameters) throws -> Bool? {
        try parse(name, in: query, as: "true or false") { ["true": true, "false": false][$0] }
    }
}
