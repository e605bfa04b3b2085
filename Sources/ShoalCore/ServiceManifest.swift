/// One service, as declared by a YAML manifest in `services.d/`.
///
/// A service is an ordinary, unmodified TCP/HTTP server binary. Its front-end agent runs one
/// instance locally and, under load, more instances on leased back-ends; each instance is told
/// its port through `{port}` in ``arguments`` and the `PORT` environment variable.
public struct ServiceManifest: Sendable, Hashable, Codable {
    /// Unique service name: lower-case letters, digits and `-`, at most 32 characters.
    public var name: String
    /// The front-end host that serves this service (the paper's FE application server).
    public var frontend: String
    /// The executable: an absolute path, or a bare name looked up beside `shoal`, then on `PATH`.
    /// Executed directly with ``arguments``, never through a shell.
    public var command: String
    /// Arguments; every `{port}` is replaced by the instance's listen port.
    public var arguments: [String]
    /// Extra environment for every instance.
    public var environment: [String: String]
    /// The public port the front-end's service manager listens on.
    public var port: Int
    /// Health-check path; an instance is ready when a GET on it answers 2xx.
    public var healthCheckPath: String
    /// Requests one instance may have in progress; more wait in the worker's queue.
    public var concurrency: Int
    /// The two thresholds of the paper's three-level policy.
    public var thresholds: LoadThresholds
    /// How many back-ends this service may lease.
    public var backends: BackendRange
    /// Higher priority is served first when slots are scarce.
    public var priority: Int
    /// Share of the pool relative to other services of the same priority.
    public var weight: Int
    /// How long a drain may take before the remaining requests are cut off.
    public var drainTimeout: Duration
    /// What the service speaks, so what the front-end and the worker relay.
    public var serviceProtocol: ServiceProtocol
    /// Whether the front-end's own instance keeps serving beside its leased back-ends.
    public var local: LocalRole
    /// The public port's certificate and key, or nil for plain TCP. Only the front-end uses
    /// them: it terminates TLS and speaks plain to its members.
    public var tls: TLSFiles?

    public init(
        name: String,
        frontend: String = ServiceManifest.defaultFrontend,
        command: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        port: Int,
        healthCheckPath: String = "/health",
        concurrency: Int = 8,
        thresholds: LoadThresholds = LoadThresholds(),
        backends: BackendRange = BackendRange(),
        priority: Int = 0,
        weight: Int = 1,
        drainTimeout: Duration = .seconds(30),
        serviceProtocol: ServiceProtocol = .http,
        local: LocalRole = .serve,
        tls: TLSFiles? = nil
    ) {
        self.local = local
        self.name = name
        self.frontend = frontend
        self.command = command
        self.arguments = arguments
        self.environment = environment
        self.port = port
        self.healthCheckPath = healthCheckPath
        self.concurrency = concurrency
        self.thresholds = thresholds
        self.backends = backends
        self.priority = priority
        self.weight = weight
        self.drainTimeout = drainTimeout
        self.serviceProtocol = serviceProtocol
        self.tls = tls
    }

    public static let defaultFrontend = "localhost"

    /// The argument vector for an instance listening on `port`.
    public func arguments(forPort port: Int) -> [String] {
        arguments.map { $0.replacing("{port}", with: String(port)) }
    }
}

/// The manifest's `protocol`.
public enum ServiceProtocol: String, Sendable, Hashable, Codable, CaseIterable {
    /// HTTP/1.1 (and upgrades such as WebSocket): relayed request by request; load is requests
    /// in progress.
    case http
    /// Any TCP protocol (a database, a cache, a line protocol): relayed as bytes, connection by
    /// connection; load is connections in progress.
    case tcp
}

/// The manifest's `local`: what the front-end's own instance does while back-ends are leased.
/// The default is `serve`: in the policy comparison (docs/thresholds.md) it answered more
/// requests, sooner, for the same back-end-seconds.
public enum LocalRole: String, Sendable, Hashable, Codable, CaseIterable {
    /// The paper's rule: it stands by, taking requests only when no back-end can (none leased,
    /// or every one out of rotation or failed).
    case standby
    /// It keeps serving as one more member, first in the list, so the front-end's own capacity
    /// is not left idle (the default).
    case serve
}

/// The manifest's `tls`: the PEM files a front-end serves its public port with.
public struct TLSFiles: Sendable, Hashable, Codable {
    /// The certificate chain, leaf first (PEM).
    public var certificatePath: String
    /// The certificate's private key (PEM, unencrypted).
    public var keyPath: String

    public init(certificatePath: String, keyPath: String) {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
    }
}

/// The paper's two thresholds, in requests in progress on one member.
/// Below `low` a member is Low; at or above `high` it is High; in between, Medium.
public struct LoadThresholds: Sendable, Hashable, Codable {
    public var low: Int
    public var high: Int

    public init(low: Int = 2, high: Int = 6) {
        self.low = low
        self.high = high
    }
}

/// The number of back-ends a service may lease, `min...max`.
public struct BackendRange: Sendable, Hashable, Codable {
    public var min: Int
    public var max: Int

    public init(min: Int = 0, max: Int = 3) {
        self.min = min
        self.max = max
    }
}
