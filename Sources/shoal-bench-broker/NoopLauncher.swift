import ShoalBroker
import ShoalCore
import Synchronization

/// A launcher that starts nothing: `launch` hands out a fresh task id at once and no event ever
/// comes. Grants then cost only the broker's own work — "excluding the spawn".
final class NoopLauncher: BackendLauncher {
    private let names: [String]
    private let nextTask = Mutex<Int32>(1)

    /// Finished at once: the broker's follower of pool events simply ends.
    let events = AsyncStream<LauncherEvent> { $0.finish() }

    init(hostNames: [String]) {
        names = hostNames
    }

    func hostNames() async throws -> [String] { names }
    func add(hosts: [String]) async -> [String: String] { [:] }

    func remove(hosts: [String]) async -> [String: String] { [:] }

    func launch(lease: LeaseID, secret: LeaseSecret?, manifestPath: String, on host: String) async throws -> [Int32] {
        nextTask.withLock { next in
            defer { next += 1 }
            return [next]
        }
    }

    func drain(tasks: [Int32]) async {}
    func stop(tasks: [Int32]) async {}
    func adopt(tasks: [Int32]) async throws -> Set<Int32> { Set(tasks) }
    func stopStrays(owned: Set<Int32>) async throws -> [Int32] { [] }
}
