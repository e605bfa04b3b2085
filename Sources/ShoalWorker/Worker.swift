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
        /// Where the lease's secret comes from: none (anyone who reaches the port is served, as
        /// a worker run by hand for a static back-end), given, or the parent's first message.
        public var leaseSecret: LeaseSecretSource = .none
        /// How long a worker told to wait for its secret waits for the parent's message.
        public var leaseSecretTimeout: Duration = .seconds(10)

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
        let secret: LeaseSecret?
        do {
            secret = try await leaseSecret(engine: engine, parent: parent)
        } catch {
            await engine?.close()
            throw error
        }
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
        relayConfiguration.leaseSecret = secret
        let relay = HTTPRelayServer.worker(
            upstream: try SocketAddress(ipAddress: instance.host, port: instance.port),
            limits: Admission.Limits(maxConcurrent: manifest.concurrency,
                                     maxQueued: configuration.maxQueued ?? manifest.concurrency * 16),
            configuration: relayConfiguration, logger: logger)
        let bound = try await relay.start()
        let host = configuration.advertisedHost ?? HostAddress.advertised()
        let port = bound.port ?? configuration.port
        announceReady("shoal worker \(manifest.name) listening on \(host):\(port) (service pid \(instance.pid) on \(instance.host):\(instance.port)"
            + "\(secret == nil ? "" : ", only for the front-end holding the lease"))")

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

extension Worker {
    /// Where a worker's lease secret comes from.
    public enum LeaseSecretSource: Sendable, Hashable {
        /// No secret: the worker serves anyone who reaches it.
        case none
        /// Given at start (`SHOAL_LEASE_SECRET`, for a worker started by hand).
        case given(LeaseSecret)
        /// The parent's ``ShoalWorkerProtocol/WorkerMessage/leaseSecret(_:)``, the broker's first
        /// message after the spawn: argv would show the secret to anyone on the host (`ps`).
        case fromParent
    }

    /// The secret the relay will require, waiting for the parent's message if told to. A worker
    /// told to wait that hears nothing does not start: serving without the secret would serve anyone.
    private func leaseSecret(engine: PVMEngine?, parent: PVMTaskID?) async throws -> LeaseSecret? {
        switch configuration.leaseSecret {
        case .none: return nil
        case .given(let secret): return secret
        case .fromParent:
            guard let engine, let parent else { throw WorkerError("--lease-secret-from-parent needs --pvm (a parent task to hear it from)") }
            let received: PVMReceivedMessage
            do {
                received = try await engine.receive(from: parent, tag: WorkerMessage.Tag.leaseSecret.rawValue,
                                                    timeout: configuration.leaseSecretTimeout)
            } catch {
                let reason = "no lease secret from the parent within \(configuration.leaseSecretTimeout): \(error)"
                try? await engine.send(WorkerMessage.failed(reason: reason).message, to: parent)
                throw WorkerError(reason)
            }
            guard case .leaseSecret(let text)? = WorkerMessage(tag: received.tag, fields: received.fields),
                  let secret = LeaseSecret(text) else {
                let reason = "the parent's lease secret is malformed (43 base64url characters expected)"
                try? await engine.send(WorkerMessage.failed(reason: reason).message, to: parent)
                throw WorkerError(reason)
            }
            return secret
        }
    }
}

/// A worker that cannot start, with a sentence that says why.
struct WorkerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
