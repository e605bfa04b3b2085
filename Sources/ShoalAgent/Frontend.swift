import Logging
import NIOCore
import ServiceLifecycle
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

        public init(manifest: ServiceManifest) {
            self.manifest = manifest
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

        let instanceDied = await firstOf([
            {
                _ = await instance.waitForExit()
                return true
            },
            {
                try? await gracefulShutdown()
                return false
            },
        ]) ?? false
        // In-flight requests finish before the instance goes.
        await relay.shutdown(gracePeriod: manifest.drainTimeout.timeAmount)
        await instance.stop()
        if instanceDied {
            throw InstanceError(service: manifest.name, reason: "local instance exited with status \(instance.exitStatus ?? -1)")
        }
    }
}

extension Duration {
    var timeAmount: TimeAmount { .milliseconds(wholeMilliseconds) }
}
