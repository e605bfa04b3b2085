import Logging
import NIOCore
import ServiceLifecycle
import ShoalAPI
import ShoalCore
import ShoalInstance
import ShoalProxy

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
        /// Name the answering member in this response header (tests, debugging).
        public var memberHeader: String?
        /// The broker to lease back-ends from; nil serves with the local instance (and static
        /// back-ends) only.
        public var broker: BrokerConnection?

        public init(manifest: ServiceManifest) {
            self.manifest = manifest
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
        self.logger = logger
    }

    public func run() async throws {
        let manifest = configuration.manifest
        let instance = try await ServiceInstance.start(manifest, logger: logger)
        var relayConfiguration = RelayConfiguration()
        relayConfiguration.host = configuration.listenHost
        relayConfiguration.port = configuration.port ?? manifest.port
        relayConfiguration.memberHeader = configuration.memberHeader
        let relay = HTTPRelayServer.serviceManager(
            local: try SocketAddress(ipAddress: instance.host, port: instance.port),
            dispatcher: Dispatcher(policy: configuration.policy, thresholds: manifest.thresholds),
            configuration: relayConfiguration, logger: logger)
        for backend in configuration.staticBackends {
            try relay.members.addBackend(name: backend.name, address: try SocketAddress.makeAddressResolvingHost(backend.host, port: backend.port))
        }
        let bound: SocketAddress
        do {
            bound = try await relay.start()
        } catch {
            await instance.stop()
            throw error
        }
        announceReady("shoal frontend \(manifest.name) listening on \(configuration.listenHost):\(bound.port ?? relayConfiguration.port)"
            + " (local instance pid \(instance.pid) on \(instance.host):\(instance.port), \(configuration.staticBackends.count) back-ends)")

        var operations: [@Sendable () async -> Bool] = [
            {
                _ = await instance.waitForExit()
                return true
            },
            {
                try? await gracefulShutdown()
                return false
            },
        ]
        var manager: LoadManager?
        if let broker = configuration.broker {
            var loadConfiguration = LoadManager.Configuration(frontend: broker.name, manifest: manifest, manifestPath: broker.manifestPath)
            loadConfiguration.holdTime = broker.holdTime
            let loadManager = LoadManager(
                configuration: loadConfiguration, members: relay.members,
                commands: try BrokerClient(baseURL: broker.url, token: broker.token),
                eventFeed: try BrokerClient(baseURL: broker.url, token: broker.token), logger: logger)
            operations.append {
                await loadManager.run()
                return false
            }
            manager = loadManager
        }
        let instanceDied = await firstOf(operations) ?? false
        // In-flight requests finish before the instance goes, and the leases go back.
        await relay.shutdown(gracePeriod: manifest.drainTimeout.timeAmount)
        await manager?.giveBackAll()
        await instance.stop()
        if instanceDied {
            throw InstanceError(service: manifest.name, reason: "local instance exited with status \(instance.exitStatus ?? -1)")
        }
    }
}

extension Duration {
    var timeAmount: TimeAmount { .milliseconds(wholeMilliseconds) }
}
