import Logging
import NIOCore
import ServiceLifecycle
import ShoalAPI
import ShoalCore
import ShoalInstance
import ShoalProxy
import ShoalClient

/// A front-end agent: the service's public port (the service manager, a reverse proxy) in front
/// of the local service instance and of the back-ends it holds. With no back-end it serves
/// locally, as in the paper.
public final class Frontend: Service {
    public struct Configuration: Sendable {
        public var manifest: ServiceManifest
        /// Where the service manager listens; the manifest's port unless overridden.
        public var listenHost = "127.0.0.1"
        public var port: Int?
        public var policy: Dispatcher.Policy = .paper
        /// Back-ends given by hand (`--backend NAME=HOST:PORT`), before any broker.
        public var staticBackends: [(name: String, host: String, port: Int)] = []
        /// The secret the static back-ends want (workers started by hand with `SHOAL_LEASE_SECRET`).
        public var staticBackendSecret: LeaseSecret?
        /// Name the answering member in this response header (tests, debugging).
        public var memberHeader: String?
        /// The broker to lease back-ends from; nil serves with the local instance (and static
        /// back-ends) only.
        public var broker: BrokerConnection?
        /// Where the admin listener (`GET /metrics`) listens.
        public var metricsHost = "127.0.0.1"
        /// Its port (0: any free port). `nil`: the service's port + 10000 if that is free, else
        /// any free port (and any free port when the service's port is 0).
        public var metricsPort: Int?
        /// Serve the public port over TLS with these files (the manifest's `tls` unless overridden).
        public var tls: TLSFiles?

        public init(manifest: ServiceManifest) {
            self.manifest = manifest
            self.tls = manifest.tls
        }
    }

    /// How the load manager reaches the broker.
    public struct BrokerConnection: Sendable {
        public var url: String
        public var token: String
        /// This front-end's name, the owner of its leases.
        public var name: String
        /// The manifest's absolute path (the broker and the workers read it).
        public var manifestPath: String
        public var holdTime: Duration = .seconds(5)
        /// Which rule decides the number of back-ends (`--scaling`), and a reference policy's
        /// target in requests in flight per member (nil: the High threshold).
        public var scaling: ScalingRule = .shoal
        public var scalingTarget: Double?
        /// For an `https://` broker: the CA to trust its certificate with (else `$SHOAL_CA_FILE`,
        /// else the system's roots).
        public var caFile: String?

        public init(url: String, token: String, name: String, manifestPath: String) {
            self.url = url
            self.token = token
            self.name = name
            self.manifestPath = manifestPath
        }
    }

    private let configuration: Configuration
    private let logger: Logger

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "service"] = "\(configuration.manifest.name)"
        self.logger = logger
    }

    public func run() async throws {
        let manifest = configuration.manifest
        let instance = try await ServiceInstance.start(manifest, logger: logger)
        var relayConfiguration = RelayConfiguration()
        relayConfiguration.host = configuration.listenHost
        relayConfiguration.port = configuration.port ?? manifest.port
        relayConfiguration.memberHeader = configuration.memberHeader
        relayConfiguration.shutdownGracePeriod = manifest.drainTimeout.timeAmount
        relayConfiguration.serviceProtocol = manifest.serviceProtocol
        if let tls = configuration.tls {
            // TLS ends here; members hear plain HTTP, told the client's scheme.
            relayConfiguration.tls = tls
            relayConfiguration.forwardedProto = "https"
        }
        let relay = HTTPRelayServer.serviceManager(
            local: try SocketAddress(ipAddress: instance.host, port: instance.port),
            dispatcher: Dispatcher(policy: configuration.policy, thresholds: manifest.thresholds, local: manifest.local),
            configuration: relayConfiguration, logger: logger)
        for backend in configuration.staticBackends {
            try relay.members.addBackend(name: backend.name, address: try SocketAddress.makeAddressResolvingHost(backend.host, port: backend.port),
                                         leaseSecret: configuration.staticBackendSecret)
        }
        let metrics = FrontendMetrics(service: manifest.name, relay: relay)
        let bound: SocketAddress
        let admin: AdminServer
        do {
            bound = try await relay.start()
            admin = try await startAdmin(metrics: metrics, servicePort: relayConfiguration.port)
        } catch {
            await relay.shutdown(gracePeriod: .zero)
            await instance.stop()
            throw error
        }
        let metricsURL = "http://\(configuration.metricsHost):\(admin.localAddress?.port ?? 0)/metrics"
        logger.info("metrics listening", metadata: ["url": "\(metricsURL)"])
        if let tls = configuration.tls {
            logger.info("public port serves TLS", metadata: ["certificate": "\(tls.certificatePath)"])
        }
        announceReady("shoal frontend \(manifest.name) listening on \(configuration.listenHost):\(bound.port ?? relayConfiguration.port)"
            + " (local instance pid \(instance.pid) on \(instance.host):\(instance.port), \(configuration.staticBackends.count) back-ends,"
            + " metrics \(metricsURL))")

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            // The instance dying on its own stops the front-end, gracefully: what is in flight elsewhere finishes.
            .init(service: instance, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
            .init(service: admin),
        ]
        if let broker = configuration.broker {
            var loadConfiguration = LoadManager.Configuration(frontend: broker.name, manifest: manifest, manifestPath: broker.manifestPath)
            loadConfiguration.holdTime = broker.holdTime
            loadConfiguration.scaling = broker.scaling
            loadConfiguration.scalingTarget = broker.scalingTarget
            services.append(.init(service: LoadManager(
                configuration: loadConfiguration, members: relay.members,
                // Every call of these is quick at a live broker; 2 s is long enough, and short when
                // the active broker's host is gone and a standby must be found.
                commands: try BrokerClient(baseURL: broker.url, token: broker.token, timeout: .seconds(2), caFile: broker.caFile),
                eventFeed: try BrokerClient(baseURL: broker.url, token: broker.token, caFile: broker.caFile), metrics: metrics, logger: logger)))
        }
        // The group stops its services in reverse order: the relay lets in-flight requests
        // finish first (for up to drain_timeout), then the leases go back, then the admin
        // listener and the instance stop.
        services.append(.init(service: relay))
        try await ServiceGroup(configuration: .init(services: services, logger: logger)).run()
    }
}

extension Frontend {
    /// The admin listener, on ``Configuration/metricsPort`` or its default.
    private func startAdmin(metrics: FrontendMetrics, servicePort: Int) async throws -> AdminServer {
        let exposition: @Sendable () -> String = { metrics.exposition() }
        if let port = configuration.metricsPort {
            return try await AdminServer.start(host: configuration.metricsHost, port: port, metrics: exposition)
        }
        let preferred = servicePort > 0 && servicePort + 10000 <= 65535 ? servicePort + 10000 : 0
        do {
            return try await AdminServer.start(host: configuration.metricsHost, port: preferred, metrics: exposition)
        } catch where preferred != 0 {
            logger.warning("default metrics port taken; using any free port", metadata: ["port": "\(preferred)", "error": "\(error)"])
            return try await AdminServer.start(host: configuration.metricsHost, port: 0, metrics: exposition)
        }
    }
}
