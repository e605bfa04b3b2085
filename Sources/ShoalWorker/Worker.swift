import Logging
import NIOCore
import PVM
import ServiceLifecycle
import ShoalCore
import ShoalInstance
import ShoalProxy
import Synchronization

/// The paper's work processor, on one back-end: starts the service instance from its manifest,
/// relays requests to it with the manifest's concurrency limit and a bounded queue, reports its
/// load, and on a drain order stops taking requests, finishes every in-flight one and reports
/// that it is drained.
///
/// Spawned through PVM it talks to its parent with ``WorkerMessage``s; run by hand it simply
/// serves until SIGTERM, then drains.
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
        let parent = engine?.parent.map { Parent($0) }
        let instance: ServiceInstance
        do {
            instance = try await ServiceInstance.start(manifest, logger: logger)
        } catch {
            if let engine, let parent { try? await engine.send(WorkerMessage.failed(reason: error.description).message, to: parent.task) }
            await engine?.close()
            throw error
        }

        var relayConfiguration = RelayConfiguration()
        relayConfiguration.host = configuration.listenHost
        relayConfiguration.port = configuration.port
        let relay = HTTPRelayServer.worker(
            upstream: try SocketAddress(ipAddress: instance.host, port: instance.port),
            limits: Admission.Limits(maxConcurrent: manifest.concurrency,
                                     maxQueued: configuration.maxQueued ?? manifest.concurrency * 16),
            configuration: relayConfiguration, logger: logger)
        let bound = try await relay.start()
        let host = configuration.advertisedHost ?? HostAddress.advertised()
        let port = bound.port ?? configuration.port
        announceReady("shoal worker \(manifest.name) listening on \(host):\(port) (service pid \(instance.pid) on \(instance.host):\(instance.port))")
        let ready = WorkerMessage.ready(host: host, port: port)
        if let engine, let parent { try await engine.send(ready.message, to: parent.task) }

        let outcome = await serve(instance: instance, relay: relay, engine: engine, parent: parent, ready: ready)
        // Whatever ended it, nothing in flight is dropped: drain, then stop.
        try? await relay.drain()
        if outcome == .drainOrdered, let engine, let parent { try? await engine.send(WorkerMessage.drained.message, to: parent.task) }
        await relay.shutdown(gracePeriod: .seconds(5))
        await instance.stop()
        await engine?.close()
        if outcome == .instanceExited {
            throw InstanceError(service: manifest.name, reason: "exited with status \(instance.exitStatus ?? -1) while serving")
        }
    }

    private enum Outcome: Sendable { case instanceExited, drainOrdered, stopOrdered, shutdown }

    /// The task the worker reports to: the broker that spawned it, or one that adopted it after
    /// a restart.
    private final class Parent: Sendable {
        private let current: Mutex<PVMTaskID>
        init(_ task: PVMTaskID) { current = Mutex(task) }
        var task: PVMTaskID { current.withLock { $0 } }
        func adopt(_ task: PVMTaskID) { current.withLock { $0 = task } }
    }

    private func serve(
        instance: ServiceInstance, relay: HTTPRelayServer, engine: PVMEngine?, parent: Parent?, ready: WorkerMessage
    ) async -> Outcome {
        var operations: [@Sendable () async -> Outcome] = [
            {
                _ = await instance.waitForExit()
                return .instanceExited
            },
            {
                try? await gracefulShutdown()
                return .shutdown
            },
        ]
        if let engine, let parent {
            operations.append { await self.obeyParent(engine: engine, parent: parent, relay: relay, ready: ready) }
            operations.append { await self.reportLoad(engine: engine, parent: parent, relay: relay) }
        }
        return await firstOf(operations) ?? .shutdown
    }

    /// Waits for the parent's orders: a drain is carried out and acknowledged here. A restarted
    /// broker adopts the worker; it hears `ready` again so it knows where the worker listens.
    private func obeyParent(engine: PVMEngine, parent: Parent, relay: HTTPRelayServer, ready: WorkerMessage) async -> Outcome {
        while !Task.isCancelled {
            guard let received = try? await engine.receive() else { return .shutdown }
            let message = WorkerMessage(tag: received.tag, fields: received.fields)
            if message == .adopt {
                logger.notice("adopted by a new parent", metadata: ["parent": "\(received.source)"])
                parent.adopt(received.source)
                try? await engine.send(ready.message, to: received.source)
                continue
            }
            guard received.source == parent.task else {
                logger.warning("ignored a message from a task that is not the parent", metadata: ["source": "\(received.source)"])
                continue
            }
            switch message {
            case .drain?:
                logger.info("drain ordered", metadata: ["in_flight": "\(relay.admission.inFlight)"])
                relay.admission.beginDrain()
                return .drainOrdered
            case .stop?:
                return .stopOrdered
            default:
                logger.warning("ignored a message from the parent", metadata: ["tag": "\(received.tag)"])
            }
        }
        return .shutdown
    }

    /// Reports load periodically. A failed send (the broker is restarting) is not fatal: the
    /// worker keeps serving its front-end and the next broker adopts it.
    private func reportLoad(engine: PVMEngine, parent: Parent, relay: HTTPRelayServer) async -> Outcome {
        while (try? await Task.sleep(for: configuration.loadReportInterval)) != nil {
            guard await engine.isAttached else { return .shutdown }
            let report = WorkerMessage.load(inFlight: relay.admission.inFlight, queued: relay.admission.queued)
            try? await engine.send(report.message, to: parent.task)
        }
        return .shutdown
    }
}
