import Foundation
import Logging
import PVM
import ServiceLifecycle
import ShoalCore
import ShoalWorker
import Synchronization
import ShoalWorkerProtocol

/// Workers on PVM hosts: `pvm_spawn` of `shoal worker MANIFEST --pvm` on the lease's host,
/// `pvm_notify` for task exits and host deletions, and the worker protocol (``WorkerMessage``)
/// for ready, load, drain and drained.
///
/// A `Service`: ``run()`` is the pump that turns PVM's notices and the workers' messages into
/// ``events``; it runs in the broker's service group.
public final class PVMLauncher: BackendLauncher, Service {
    public let events: AsyncStream<LauncherEvent>
    private let sink: AsyncStream<LauncherEvent>.Continuation
    private let engine: PVMEngine
    /// The `shoal` binary the workers run; the same path must exist on every host.
    private let program: String
    private let workerArguments: [String]
    private let logger: Logger
    /// PVM reports a deleted host by id only, and it is no longer listed then: remember names.
    private let hostNamesByID = HostNames()

    /// - Parameters:
    ///   - program: the `shoal` executable to spawn (by default this process's own).
    ///   - workerArguments: extra arguments for `shoal worker` (e.g. `--log-level debug`).
    public init(engine: PVMEngine, program: String, workerArguments: [String] = [], logger: Logger) {
        (events, sink) = AsyncStream.makeStream(of: LauncherEvent.self)
        self.engine = engine
        self.program = program
        self.workerArguments = workerArguments
        self.logger = logger
    }

    /// Forwards notices and reports until the pvmd is gone or the broker stops.
    public func run() async {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await Self.forwardNotices(engine: self.engine, names: self.hostNamesByID, to: self.sink) }
                group.addTask { await Self.forwardReports(engine: self.engine, to: self.sink, logger: self.logger) }
            }
        }
        sink.finish()
    }

    public func hostNames() async throws -> [String] {
        let hosts = try await engine.hosts()
        hostNamesByID.remember(hosts)
        return hosts.map(\.name)
    }

    public func add(hosts: [String]) async -> [String: String] {
        guard !hosts.isEmpty else { return [:] }
        do {
            let outcomes = try await engine.addHosts(hosts)
            _ = try? await hostNames()
            return Dictionary(uniqueKeysWithValues: outcomes.compactMap { outcome in
                outcome.error.map { (outcome.name, $0.description) }
            })
        } catch {
            return Dictionary(uniqueKeysWithValues: hosts.map { ($0, "\(error)") })
        }
    }

    public func remove(hosts: [String]) async -> [String: String] {
        guard !hosts.isEmpty else { return [:] }
        do {
            let outcomes = try await engine.deleteHosts(hosts)
            return Dictionary(uniqueKeysWithValues: outcomes.compactMap { outcome in
                outcome.error.map { (outcome.name, $0.description) }
            })
        } catch {
            return Dictionary(uniqueKeysWithValues: hosts.map { ($0, "\(error)") })
        }
    }

    public func launch(lease: LeaseID, manifestPath: String, on host: String) async throws -> [Int32] {
        let task = try await engine.spawn(
            program, arguments: ["worker", manifestPath, "--pvm"] + workerArguments, on: host)
        logger.info("worker spawned", metadata: ["lease": "\(lease)", "host": "\(host)", "tid": "\(task)"])
        return [task.rawValue]
    }

    public func drain(tasks: [Int32]) async {
        for task in tasks {
            do {
                try await engine.send(WorkerMessage.drain.message, to: PVMTaskID(rawValue: task))
            } catch {
                logger.warning("could not order a drain", metadata: ["tid": "\(task)", "error": "\(error)"])
            }
        }
    }

    public func stop(tasks: [Int32]) async {
        for task in tasks {
            // Already gone is fine: that is what we wanted.
            try? await engine.kill(PVMTaskID(rawValue: task))
        }
    }

    public func adopt(tasks: [Int32]) async throws -> Set<Int32> {
        let running = Set(try await engine.tasks().map(\.id.rawValue))
        let alive = tasks.filter(running.contains)
        for task in alive {
            let id = PVMTaskID(rawValue: task)
            try await engine.watch(tasks: [id])
            try await engine.send(WorkerMessage.adopt.message, to: id)
        }
        return Set(alive)
    }

    public func stopStrays(owned: Set<Int32>) async throws -> [Int32] {
        let name = (program as NSString).lastPathComponent
        let strays = try await engine.tasks()
            .filter { $0.id != engine.tid && !owned.contains($0.id.rawValue) && ($0.name as NSString).lastPathComponent == name }
            .map(\.id.rawValue)
        await stop(tasks: strays)
        return strays
    }

    /// Task exits and host deletions, with host ids turned into names.
    private static func forwardNotices(engine: PVMEngine, names: HostNames, to sink: AsyncStream<LauncherEvent>.Continuation) async {
        for await event in engine.events {
            switch event {
            case .taskExited(let task):
                sink.yield(.exited(task: task.rawValue))
            case .hostDeleted(let host):
                sink.yield(.hostDown(host: names.name(of: host) ?? "\(host)"))
            case .hostsAdded:
                if let known = try? await engine.hosts() { names.remember(known) }
            case .disconnected(let error):
                sink.yield(.disconnected(reason: error.description))
                return
            }
        }
    }

    /// Workers' messages, by the task that sent them.
    private static func forwardReports(engine: PVMEngine, to sink: AsyncStream<LauncherEvent>.Continuation, logger: Logger) async {
        while !Task.isCancelled {
            let received: PVMReceivedMessage
            do {
                received = try await engine.receive()
            } catch {
                return
            }
            let task = received.source.rawValue
            switch WorkerMessage(tag: received.tag, fields: received.fields) {
            case .ready(let host, let port)?: sink.yield(.ready(task: task, endpoint: "\(host):\(port)"))
            case .load(let inFlight, let queued)?: sink.yield(.load(task: task, inFlight: inFlight, queued: queued))
            case .drained?: sink.yield(.drained(task: task))
            case .failed(let reason)?: sink.yield(.failed(task: task, reason: reason))
            default: logger.warning("ignored a PVM message", metadata: ["tid": "\(task)", "tag": "\(received.tag)"])
            }
        }
    }
}

/// Host names by PVM host id, as last listed.
private final class HostNames: Sendable {
    private let names = Mutex<[PVMHostID: String]>([:])

    func remember(_ hosts: [PVMHost]) {
        names.withLock { names in
            for host in hosts { names[host.id] = host.name }
        }
    }

    func name(of host: PVMHostID) -> String? {
        names.withLock { $0[host] }
    }
}
