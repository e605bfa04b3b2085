@testable import ShoalBroker
import ShoalCore
import Synchronization

/// A ``BackendLauncher`` without PVM: records every call, hands out task ids (262145, 262146 …,
/// one per launch), and answers as configured. Tests push ``LauncherEvent``s into `events` with
/// ``push(_:)`` (or hand them to `Broker.handle(_:)` directly).
final class FakeLauncher: BackendLauncher {
    enum Call: Sendable, Hashable {
        case add(hosts: [String])
        case remove(hosts: [String])
        case launch(lease: LeaseID, manifestPath: String, host: String)
        case drain(tasks: [Int32])
        case stop(tasks: [Int32])
        case adopt(tasks: [Int32])
        case stopStrays(owned: Set<Int32>)
    }

    struct LaunchFailed: Error, CustomStringConvertible {
        var description: String { "pvm_spawn: no such file" }
    }

    private struct State {
        var calls: [Call] = []
        var nextTask: Int32 = 262_145
        var hostNames: [String]
        var addFailures: [String: String] = [:]
        var failLaunches = false
        /// Tasks `adopt` reports as still running; nil: every task asked about.
        var aliveTasks: Set<Int32>?
        var strays: [Int32] = []
        var secrets: [LeaseID: LeaseSecret] = [:]
    }

    private let state: Mutex<State>
    let events: AsyncStream<LauncherEvent>
    private let continuation: AsyncStream<LauncherEvent>.Continuation

    init(hostNames: [String] = []) {
        state = Mutex(State(hostNames: hostNames))
        (events, continuation) = AsyncStream.makeStream()
    }

    // MARK: Configuration

    /// Every following launch throws ``LaunchFailed``.
    func failLaunches(_ fail: Bool = true) { state.withLock { $0.failLaunches = fail } }
    /// Of the tasks `adopt` is asked about, only these still run.
    func setAlive(_ tasks: Set<Int32>) { state.withLock { $0.aliveTasks = tasks } }
    func setHostNames(_ names: [String]) { state.withLock { $0.hostNames = names } }
    func failAdding(_ failures: [String: String]) { state.withLock { $0.addFailures = failures } }

    func push(_ event: LauncherEvent) { continuation.yield(event) }

    // MARK: What was asked

    var calls: [Call] { state.withLock { $0.calls } }
    /// The secret each lease's worker was started with.
    var secrets: [LeaseID: LeaseSecret] { state.withLock { $0.secrets } }

    var launches: [(lease: LeaseID, manifestPath: String, host: String)] {
        calls.compactMap { if case .launch(let lease, let path, let host) = $0 { (lease, path, host) } else { nil } }
    }

    /// Every task id passed to `stop`, in order.
    var stopped: [Int32] {
        calls.flatMap { call -> [Int32] in if case .stop(let tasks) = call { tasks } else { [] } }
    }

    /// Every task id passed to `drain`, in order.
    var drained: [Int32] {
        calls.flatMap { call -> [Int32] in if case .drain(let tasks) = call { tasks } else { [] } }
    }

    // MARK: BackendLauncher

    func hostNames() async throws -> [String] { state.withLock { $0.hostNames } }

    func add(hosts: [String]) async -> [String: String] {
        state.withLock { state in
            state.calls.append(.add(hosts: hosts))
            let failures = state.addFailures.filter { hosts.contains($0.key) }
            state.hostNames += hosts.filter { failures[$0] == nil }
            return failures
        }
    }

    func remove(hosts: [String]) async -> [String: String] {
        state.withLock { state in
            state.calls.append(.remove(hosts: hosts))
            state.hostNames.removeAll { hosts.contains($0) }
            return [:]
        }
    }

    func launch(lease: LeaseID, secret: LeaseSecret?, manifestPath: String, on host: String) async throws -> [Int32] {
        try state.withLock { state in
            state.calls.append(.launch(lease: lease, manifestPath: manifestPath, host: host))
            state.secrets[lease] = secret
            if state.failLaunches { throw LaunchFailed() }
            defer { state.nextTask += 1 }
            return [state.nextTask]
        }
    }

    func drain(tasks: [Int32]) async { state.withLock { $0.calls.append(.drain(tasks: tasks)) } }

    func stop(tasks: [Int32]) async { state.withLock { $0.calls.append(.stop(tasks: tasks)) } }

    func adopt(tasks: [Int32]) async throws -> Set<Int32> {
        state.withLock { state in
            state.calls.append(.adopt(tasks: tasks))
            return Set(tasks).intersection(state.aliveTasks ?? Set(tasks))
        }
    }

    func stopStrays(owned: Set<Int32>) async throws -> [Int32] {
        state.withLock { state in
            state.calls.append(.stopStrays(owned: owned))
            return state.strays
        }
    }
}
