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
/// ``events``; it runs in the broker's service group. It also keeps the pool alive: when the
/// pvmd dies it reports ``LauncherEvent/poolLost(reason:)``, attaches again (`attach` starts a
/// new pvmd when the broker owns it) until that works, and reports
/// ``LauncherEvent/poolRestarted(hosts:)``.
public final class PVMLauncher: BackendLauncher, Service {
    /// Attaches to the pool's pvmd, starting one first when the broker owns it.
    public typealias Attach = @Sendable () async throws -> PVMEngine

    public let events: AsyncStream<LauncherEvent>
    private let sink: AsyncStream<LauncherEvent>.Continuation
    private let attach: Attach
    /// The engine attached to the pool's pvmd; `nil` while a new one is being attached.
    private let current: Mutex<PVMEngine?>
    /// The `shoal` binary the workers run; the same path must exist on every host.
    private let program: String
    private let workerArguments: [String]
    /// Every broker's API, passed to workers so they can tell when their lease no longer stands.
    private let brokerURLs = Mutex<[String]>([])
    private let logger: Logger
    /// PVM reports a deleted host by id only, and it is no longer listed then: remember names.
    private let hostNamesByID = HostNames()
    /// The pool's pvmd log (`PVM_TMP/pvml.UID.VMID`), where PVM says why a host's pvmd did not start.
    private let poolLog: String?

    /// - Parameters:
    ///   - engine: attached to the pool's pvmd (by `attach`, once, before the broker recovers).
    ///   - attach: how to attach again when that pvmd dies.
    ///   - program: the `shoal` executable to spawn (by default this process's own).
    ///   - workerArguments: extra arguments for `shoal worker` (e.g. `--log-level debug`).
    ///   - poolLog: the pool's pvmd log, when the broker knows it (it started that pvmd).
    public init(engine: PVMEngine, attach: @escaping Attach, program: String, workerArguments: [String] = [],
                poolLog: String? = nil, logger: Logger) {
        self.poolLog = poolLog
        (events, sink) = AsyncStream.makeStream(of: LauncherEvent.self)
        self.current = Mutex(engine)
        self.attach = attach
        self.program = program
        self.workerArguments = workerArguments
        self.logger = logger
    }

    /// Forwards notices and reports until the broker stops; when the pvmd dies, attaches again.
    public func run() async {
        await cancelWhenGracefulShutdown {
            while let engine = self.current.withLock({ $0 }), let lost = await self.follow(engine) {
                self.current.withLock { $0 = nil }
                self.sink.yield(.poolLost(reason: lost))
                guard let next = await self.attachAgain() else { break }
                self.current.withLock { $0 = next }
                self.hostNamesByID.forgetAll()
                self.sink.yield(.poolRestarted(hosts: (try? await self.hostNames()) ?? []))
            }
        }
        sink.finish()
    }

    /// Tells workers started from now on where to ask about their lease (``LeaseWatch``).
    public func setBrokerURLs(_ urls: [String]) {
        brokerURLs.withLock { $0 = urls }
    }

    /// Leaves the pool's virtual machine (its pvmd and workers keep running for the next broker).
    public func close() async {
        await current.withLock { $0 }?.close()
    }

    /// The attached engine, or an error saying the pool is being started again.
    private func attached() throws -> PVMEngine {
        guard let engine = current.withLock({ $0 }) else {
            throw PVMError(.notAttached, operation: "use the pool", detail: "the pool's pvmd died; a new one is being started")
        }
        return engine
    }

    /// Notices and reports of `engine` until its pvmd is gone (returns why) or cancelled (`nil`).
    private func follow(_ engine: PVMEngine) async -> String? {
        await withTaskGroup(of: String?.self) { group in
            group.addTask { await Self.forwardNotices(engine: engine, names: self.hostNamesByID, to: self.sink) }
            group.addTask { await Self.forwardReports(engine: engine, to: self.sink, logger: self.logger); return nil }
            var lost: String?
            for await reason in group { lost = lost ?? reason }
            return lost
        }
    }

    /// Attaches again, a little longer apart after each failure, until it works or the broker stops.
    private func attachAgain() async -> PVMEngine? {
        var delay = Duration.milliseconds(200)
        while !Task.isCancelled {
            do {
                let engine = try await attach()
                logger.notice("the pool runs again on a new pvmd", metadata: ["tid": "\(engine.tid)"])
                return engine
            } catch {
                logger.error("could not start the pool again; trying again", metadata: ["error": "\(error)", "in": "\(delay)"])
            }
            guard (try? await Task.sleep(for: delay)) != nil else { return nil }
            delay = min(delay * 2, .seconds(5))
        }
        return nil
    }

    public func hostNames() async throws -> [String] {
        let hosts = try await attached().hosts()
        hostNamesByID.remember(hosts)
        return hosts.map(\.name)
    }

    public func add(hosts: [String]) async -> [String: String] {
        guard !hosts.isEmpty else { return [:] }
        let logStart = poolLog.flatMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int } ?? 0
        do {
            let outcomes = try await attached().addHosts(hosts)
            _ = try? await hostNames()
            let pvmSaid = poolLog.map { Self.linesWritten(to: $0, since: logStart) } ?? []
            return Dictionary(uniqueKeysWithValues: outcomes.compactMap { outcome in
                outcome.error.map { (outcome.name, Self.joinFailure($0, host: outcome.name, poolLog: poolLog, pvmSaid: pvmSaid)) }
            })
        } catch {
            return Dictionary(uniqueKeysWithValues: hosts.map { ($0, "\(error)") })
        }
    }

    /// Why `host` did not join, with what to do and where to look: PVM tells only "can't start
    /// pvmd"; the reason (e.g. "PVM is being run as user root") is in the pool's pvmd log.
    static func joinFailure(_ error: PVMError, host: String, poolLog: String?, pvmSaid: [String]) -> String {
        guard error.code == .cantStart else { return error.description }
        // Its lines about this host, without PVM's "[tid] date time " prefix.
        let said = pvmSaid.filter { $0.contains(host) }
            .map { line in line.hasPrefix("[t") ? String(line.split(separator: " ", maxSplits: 3).last ?? "") : line }
            .filter { !$0.isEmpty }.suffix(3).joined(separator: " / ")
        return error.description
            + (said.isEmpty ? "" : "; PVM says: \(said.prefix(400))")
            + ". Check that `PVM_RSH` (ssh) reaches \(host) without a password and that `pvmd` is installed there;"
            + " as root, its pvmd needs PVM_ALLOW_ROOT=1 in its environment (sshd's SetEnv, see docs/operations.md)"
            + ", and hosts sharing a filesystem each their own PVM_TMP"
            + (poolLog.map { ". PVM's own account: \($0)" } ?? "")
    }

    /// The lines appended to `path` after its first `offset` bytes.
    private static func linesWritten(to path: String, since offset: Int) -> [String] {
        guard let file = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? file.close() }
        try? file.seek(toOffset: UInt64(offset))
        let data = (try? file.readToEnd()) ?? Data()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    public func remove(hosts: [String]) async -> [String: String] {
        guard !hosts.isEmpty else { return [:] }
        do {
            let outcomes = try await attached().deleteHosts(hosts)
            return Dictionary(uniqueKeysWithValues: outcomes.compactMap { outcome in
                outcome.error.map { (outcome.name, $0.description) }
            })
        } catch {
            return Dictionary(uniqueKeysWithValues: hosts.map { ($0, "\(error)") })
        }
    }

    public func launch(lease: LeaseID, secret: LeaseSecret?, manifestPath: String, on host: String) async throws -> [Int32] {
        let urls = brokerURLs.withLock { $0 }
        let watch = urls.isEmpty ? [] : ["--lease", lease.rawValue, "--broker", urls.joined(separator: ",")]
        let waitsForSecret = secret == nil ? [] : ["--lease-secret-from-parent"]
        let engine = try attached()
        let task = try await engine.spawn(
            program, arguments: ["worker", manifestPath, "--pvm"] + watch + waitsForSecret + workerArguments, on: host)
        if let secret {
            // Not in argv or the environment (`ps` and /proc show those on the host): the first
            // message, which the pvmd keeps for the task until it reads it.
            do {
                try await engine.send(WorkerMessage.leaseSecret(secret.text).message, to: task)
            } catch {
                try? await engine.kill(task)
                throw error
            }
        }
        logger.info("worker spawned", metadata: ["lease": "\(lease)", "host": "\(host)", "tid": "\(task)"])
        return [task.rawValue]
    }

    public func drain(tasks: [Int32]) async {
        for task in tasks {
            do {
                try await attached().send(WorkerMessage.drain.message, to: PVMTaskID(rawValue: task))
            } catch {
                logger.warning("could not order a drain", metadata: ["tid": "\(task)", "error": "\(error)"])
            }
        }
    }

    public func stop(tasks: [Int32]) async {
        for task in tasks {
            // Already gone is fine: that is what we wanted.
            try? await attached().kill(PVMTaskID(rawValue: task))
        }
    }

    public func adopt(tasks: [Int32]) async throws -> Set<Int32> {
        let engine = try attached()
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
        let engine = try attached()
        let strays = try await engine.tasks()
            .filter { $0.id != engine.tid && !owned.contains($0.id.rawValue) && ($0.name as NSString).lastPathComponent == name }
            .map(\.id.rawValue)
        await stop(tasks: strays)
        return strays
    }

    /// Task exits and host deletions, with host ids turned into names, until the pvmd is gone
    /// (returns why) or the engine closes.
    private static func forwardNotices(engine: PVMEngine, names: HostNames, to sink: AsyncStream<LauncherEvent>.Continuation) async -> String? {
        for await event in engine.events {
            switch event {
            case .taskExited(let task):
                sink.yield(.exited(task: task.rawValue))
            case .hostDeleted(let host):
                sink.yield(.hostDown(host: names.name(of: host) ?? "\(host)"))
            case .hostsAdded:
                if let known = try? await engine.hosts() { names.remember(known) }
            case .disconnected(let error):
                return error.description
            }
        }
        return nil
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

    func forgetAll() {
        names.withLock { $0 = [:] }
    }

    func name(of host: PVMHostID) -> String? {
        names.withLock { $0[host] }
    }
}
