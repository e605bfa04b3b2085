import ShoalCore

/// The broker's HTTP/JSON API, version 1: the bodies it takes and gives.
///
/// Times are milliseconds since the Unix epoch (`Timestamp` encodes as `{"milliseconds": N}`
/// nowhere here: views carry plain `Int64`s so the JSON reads well in `curl`).
public enum BrokerAPI {
    /// Every path starts with this.
    public static let prefix = "/v1"
    /// The default listening address: loopback only.
    public static let defaultHost = "127.0.0.1"
    public static let defaultPort = 7070
    /// The token file in the state directory (mode 0600).
    public static let tokenFileName = "token"
    /// Request bodies above this get 413.
    public static let maxBodyBytes = 64 * 1024
}

// MARK: Leases

/// One lease as `GET /v1/leases` shows it.
public struct LeaseView: Codable, Sendable, Hashable {
    public var id: String
    public var service: String
    public var frontend: String
    public var host: String?
    public var state: LeaseState
    /// `host:port` of the worker, once the lease is active: where the front-end routes.
    public var endpoint: String?
    /// In-flight and queued requests at the worker, from its last load report.
    public var inFlight: Int?
    public var queued: Int?
    public var requestedAt: Int64
    public var expiresAt: Int64
    public var drainReason: Drain.Reason?
    public var drainDeadline: Int64?
    public var revocation: RevocationReason?
    /// The lease's secret, which the front-end presents to the worker on every request. Only in
    /// the answers to the holding front-end's own calls (acquire, register, heartbeat, renew,
    /// drain, cancel-drain): never in `GET` views, the status page or the event log.
    public var secret: String?

    public init(
        id: String, service: String, frontend: String, host: String? = nil, state: LeaseState,
        endpoint: String? = nil, inFlight: Int? = nil, queued: Int? = nil, requestedAt: Int64, expiresAt: Int64,
        drainReason: Drain.Reason? = nil, drainDeadline: Int64? = nil, revocation: RevocationReason? = nil,
        secret: String? = nil
    ) {
        self.secret = secret
        self.id = id
        self.service = service
        self.frontend = frontend
        self.host = host
        self.state = state
        self.endpoint = endpoint
        self.inFlight = inFlight
        self.queued = queued
        self.requestedAt = requestedAt
        self.expiresAt = expiresAt
        self.drainReason = drainReason
        self.drainDeadline = drainDeadline
        self.revocation = revocation
    }
}

/// `POST /v1/leases`: a front-end asks for one more back-end.
public struct AcquireRequest: Codable, Sendable, Hashable {
    public var frontend: String
    /// Why, in the load manager's words (levels and figures); recorded with the request.
    public var reason: String?

    public init(frontend: String, reason: String? = nil) {
        self.frontend = frontend
        self.reason = reason
    }
}

/// `POST /v1/leases/{id}/drain`, `/cancel-drain`, `/release`: why, for the event log.
public struct LeaseChangeRequest: Codable, Sendable, Hashable {
    public var reason: String?

    public init(reason: String? = nil) {
        self.reason = reason
    }
}

// MARK: Front-ends

/// `POST /v1/frontends`: a front-end agent introduces itself and its service.
public struct FrontendRegistration: Codable, Sendable, Hashable {
    /// Unique per front-end, e.g. `a@host` — the owner recorded on its leases.
    public var name: String
    /// The absolute path of its manifest; the broker reads it (and starts workers with it), so
    /// it must be readable at the same path on the broker's and the back-ends' hosts.
    public var manifestPath: String

    public init(name: String, manifestPath: String) {
        self.name = name
        self.manifestPath = manifestPath
    }
}

/// The answer to a registration or a heartbeat: the front-end's live leases as the broker sees
/// them, and how often to renew.
public struct FrontendStatus: Codable, Sendable, Hashable {
    public var name: String
    public var service: String
    public var leaseTTLMilliseconds: Int64
    public var leases: [LeaseView]

    public init(name: String, service: String, leaseTTLMilliseconds: Int64, leases: [LeaseView]) {
        self.name = name
        self.service = service
        self.leaseTTLMilliseconds = leaseTTLMilliseconds
        self.leases = leases
    }
}

/// `POST /v1/frontends/{name}/heartbeat`: renews every lease of the front-end.
/// Its body is empty (`{}` or nothing): the heartbeat itself is the news.
public struct Heartbeat: Codable, Sendable, Hashable {
    /// Requests the front-end has answered since it started (its own instance and its
    /// back-ends), for the service's efficiency; older front-ends leave it out.
    public var requestsServed: Int?

    public init(requestsServed: Int? = nil) {
        self.requestsServed = requestsServed
    }
}

// MARK: Pool, services, events

/// `GET /v1/pool`.
public struct PoolView: Codable, Sendable, Hashable {
    public struct Host: Codable, Sendable, Hashable {
        public var name: String
        public var slots: Int
        public var used: Int
        /// An operator drained it (`shoal drain HOST`): no new grants.
        public var cordoned: Bool
        /// PVM reports it gone.
        public var down: Bool
        public var leases: [String]

        public init(name: String, slots: Int, used: Int, cordoned: Bool = false, down: Bool = false, leases: [String]) {
            self.name = name
            self.slots = slots
            self.used = used
            self.cordoned = cordoned
            self.down = down
            self.leases = leases
        }

        public var free: Int { down || cordoned ? 0 : max(0, slots - used) }
    }

    public var hosts: [Host]

    public init(hosts: [Host]) {
        self.hosts = hosts
    }
}

/// `GET /v1/services`: each registered service, its claim on the pool and what it holds.
public struct ServiceView: Codable, Sendable, Hashable {
    public var name: String
    public var frontends: [String]
    public var minBackends: Int
    public var maxBackends: Int
    public var priority: Int
    public var weight: Int
    /// Slots held (granted, active, draining) and requests waiting.
    public var held: Int
    public var waiting: Int
    /// Its weighted max-min fair share of the pool now.
    public var fairShare: Int
    /// Since the broker started: slot-seconds it held, and requests its front-ends answered.
    public var backendSeconds: Double
    public var requestsServed: Int
    /// Back-end-seconds per 1 000 requests served; `nil` before the first request.
    public var backendSecondsPerThousandRequests: Double?

    public init(
        name: String, frontends: [String], minBackends: Int, maxBackends: Int, priority: Int, weight: Int,
        held: Int, waiting: Int, fairShare: Int, backendSeconds: Double = 0, requestsServed: Int = 0,
        backendSecondsPerThousandRequests: Double? = nil
    ) {
        self.backendSeconds = backendSeconds
        self.requestsServed = requestsServed
        self.backendSecondsPerThousandRequests = backendSecondsPerThousandRequests
        self.name = name
        self.frontends = frontends
        self.minBackends = minBackends
        self.maxBackends = maxBackends
        self.priority = priority
        self.weight = weight
        self.held = held
        self.waiting = waiting
        self.fairShare = fairShare
    }
}

/// One entry of the event log (`GET /v1/events`).
public struct EventView: Codable, Sendable, Hashable {
    public var id: Int64
    public var time: Int64
    /// request, grant, deny, queue, spawn, ready, drain, preempt, resume, release, revoke …
    public var kind: String
    public var lease: String?
    public var service: String?
    public var host: String?
    public var fromState: LeaseState?
    public var toState: LeaseState?
    public var reason: String
    /// The figures behind the reason, as a JSON object in text.
    public var details: String?

    public init(
        id: Int64, time: Int64, kind: String, lease: String? = nil, service: String? = nil, host: String? = nil,
        fromState: LeaseState? = nil, toState: LeaseState? = nil, reason: String, details: String? = nil
    ) {
        self.id = id
        self.time = time
        self.kind = kind
        self.lease = lease
        self.service = service
        self.host = host
        self.fromState = fromState
        self.toState = toState
        self.reason = reason
        self.details = details
    }
}

/// `GET /v1/events?after=ID&limit=N&wait=SECONDS`: events after `after`, oldest first. With
/// `wait`, the call is a long poll: it answers as soon as there is one, or empty after `wait`.
/// Follow the log by passing `next` back as `after`.
public struct EventPage: Codable, Sendable, Hashable {
    public var events: [EventView]
    public var next: Int64

    public init(events: [EventView], next: Int64) {
        self.events = events
        self.next = next
    }
}

/// `GET /v1/leases/{id}/explain`: the lease and every event of its life.
public struct LeaseExplanation: Codable, Sendable, Hashable {
    public var lease: LeaseView
    public var events: [EventView]

    public init(lease: LeaseView, events: [EventView]) {
        self.lease = lease
        self.events = events
    }
}

/// `POST /v1/hosts/{name}/drain`: the leases being drained for maintenance.
public struct HostDrainResult: Codable, Sendable, Hashable {
    public var host: String
    public var draining: [String]

    public init(host: String, draining: [String]) {
        self.host = host
        self.draining = draining
    }
}

/// Every error answer: `{"error": "..."}` with a sentence that says what to do.
public struct ErrorBody: Codable, Sendable, Hashable {
    public var error: String

    public init(error: String) {
        self.error = error
    }
}
