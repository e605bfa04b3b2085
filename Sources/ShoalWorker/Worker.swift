import Logging
import NIOCore
import PVM
import ServiceLifecycle
import ShoalAPI
import ShoalCore
import ShoalInstance
import ShoalProxy
import ShoalWorkerProtocol

/// The paper's work processor, on one back-end: starts the service instance from its manifest,
/// relays requests to it with the manifest's concurrency limit and a bounded queue, reports its
/// load, and on a drain order stops taking requests, finishes every in-flight one and reports
/// that it is drained.
///
/// Spawned through PVM it talks to its parent with ``WorkerMessage``s (``ParentLink``); run by
/// hand it simply serves until SIGTERM, then drains. Either way it runs as a `ServiceGroup` of
/// the instance, the parent link and the relay.
public final class Worker: Service {
    public struct Configuration: Sendable {
        public var manifest: ServiceManifest
        /// Where the relay listens; `0.0.0.0` so front-ends on other hosts reach it.
        public var listenHost = "0.0.0.0"
        /// 0: any free port (reported in the ready line and message).
        public var port = 0
        /// The address front-ends should use; by default this host's own address.
        public var advertisedHost: String?
        /// Requests that may wait beyond the concurrency limit before `503`; default 16 × concurrency.
        public var maxQueued: Int?
        /// Talk to the parent PVM task (the broker).
        public var reportsToParent = false
        public var loadReportInterval: Duration = .milliseconds(500)
        /// The lease the worker serves and every broker's API: the worker stops once its lease
        /// no longer stands (``LeaseWatch``).
        public var lease: (id: String, brokerURLs: [String])?
        public var leaseCheckInterval: Duration = .seconds(1)
        /// For `https://` brokers: the CA to trust their certificate with.
        public var brokerCAFile: String?

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
        let engine = configuration.reportsToParent ? try await PVMEngine.attach(logger: logger) : nil
        let parent = engine?.parent
        let instance: ServiceInstance
        do {
            instance = try await ServiceInstance.start(manifest, logger: logger)
        } catch {
            if let engine, let parent { try? await engine.send(WorkerMessage.failed(reason: error.description).message, to: parent) }
            await engine?.close()
            throw error
        }

        var relayConfiguration = RelayConfiguration()
        relayConfiguration.host = configuration.listenHost
        relayConfiguration.port = configuration.port
        relayConfiguration.shutdownGracePeriod = manifest.drainTimeout.timeAmount
        relayConfiguration.serviceProtocol = manifest.serviceProtocol
        let relay = HTTPRelayServer.worker(
            upstream: try SocketAddress(ipAddress: instance.host, port: instance.port),
            limits: Admission.Limits(maxConcurrent: manifest.concurrency,
                                     maxQueued: configuration.maxQueued ?? manifest.concurrency * 16),
            configuration: relayConfiguration, logger: logger)
        let bound = try await relay.start()
        let host = configuration.advertisedHost ?? HostAddress.advertised()
        let port = bound.port ?? configuration.port
        announceReady("shoal worker \(manifest.name) listening on \(host):\(port) (service pid \(instance.pid) on \(instance.host):\(instance.port))")

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: instance, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
        ]
        if let engine, let parent {
            let ready = WorkerMessage.ready(host: host, port: port)
            try await engine.send(ready.message, to: parent)
            let link = ParentLink(engine: engine, parent: parent, relay: relay, ready: ready,
                                  loadReportInterval: configuration.loadReportInterval, logger: logger)
            // Its end — drained, or told to stop — ends the worker.
            services.append(.init(service: link, successTerminationBehavior: .gracefullyShutdownGroup))
        }
        if let lease = configuration.lease, !lease.brokerURLs.isEmpty {
            let watch = try LeaseWatch(lease: lease.id, brokerURLs: lease.brokerURLs, caFile: configuration.brokerCAFile,
                                       interval: configuration.leaseCheckInterval, logger: logger)
            services.append(.init(service: watch, successTerminationBehavior: .gracefullyShutdownGroup))
        }
        // Stopped first (the group stops in reverse order): in-flight requests finish while the
        // instance still runs and the parent still hears the load reports.
        services.append(.init(service: relay))
        do {
            try await ServiceGroup(configuration: .init(services: services, logger: logger)).run()
        } catch {
            await engine?.close()
            throw error
        }
        await engine?.close()
    }
}
