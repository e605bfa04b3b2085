import Logging
import PVM
import ServiceLifecycle
import ShoalProxy
import Synchronization
import ShoalWorkerProtocol

/// The worker's side of the paper's protocol with the task that spawned it (the broker): load
/// reports every half second, and the parent's orders. On `drain` the relay stops taking
/// requests, every in-flight one finishes — the reports go on meanwhile, so the broker knows the
/// worker is alive through a drain as long as `drain_timeout` — and `drained` is sent; then the
/// link ends, and with it the worker. On `stop`, or when the pvmd is gone, it ends at once.
final class ParentLink: Service {
    private let engine: PVMEngine
    private let parent: Parent
    private let relay: HTTPRelayServer
    /// Sent again to a parent that adopts the worker, so it learns where the worker listens.
    private let ready: WorkerMessage
    private let loadReportInterval: Duration
    private let logger: Logger

    init(engine: PVMEngine, parent: PVMTaskID, relay: HTTPRelayServer, ready: WorkerMessage,
         loadReportInterval: Duration, logger: Logger) {
        self.engine = engine
        self.parent = Parent(parent)
        self.relay = relay
        self.ready = ready
        self.loadReportInterval = loadReportInterval
        self.logger = logger
    }

    private enum Order { case drain, stop }

    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.reportLoad() }
            let order = await cancelWhenGracefulShutdown { await self.obeyParent() }
            if order == .drain {
                try? await relay.drain()
                try? await engine.send(WorkerMessage.drained.message, to: parent.task)
            }
            group.cancelAll()
        }
    }

    /// Waits for the parent's orders. A restarted broker adopts the worker and hears `ready`
    /// again. `nil`: cancelled, or the pvmd is gone.
    private func obeyParent() async -> Order? {
        while !Task.isCancelled {
            guard let received = try? await engine.receive() else { return nil }
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
                return .drain
            case .stop?:
                return .stop
            default:
                logger.warning("ignored a message from the parent", metadata: ["tag": "\(received.tag)"])
            }
        }
        return nil
    }

    /// Reports load periodically until cancelled. A failed send (the broker is restarting) is
    /// not fatal: the worker keeps serving its front-end and the next broker adopts it.
    private func reportLoad() async {
        while (try? await Task.sleep(for: loadReportInterval)) != nil {
            guard await engine.isAttached else { return }
            let report = WorkerMessage.load(inFlight: relay.admission.inFlight, queued: relay.admission.queued)
            try? await engine.send(report.message, to: parent.task)
        }
    }

    /// The task the worker reports to: the broker that spawned it, or one that adopted it after
    /// a restart.
    private final class Parent: Sendable {
        private let current: Mutex<PVMTaskID>
        init(_ task: PVMTaskID) { current = Mutex(task) }
        var task: PVMTaskID { current.withLock { $0 } }
        func adopt(_ task: PVMTaskID) { current.withLock { $0 = task } }
    }
}
