import Foundation
import Logging
import ShoalAPI
@testable import ShoalBroker
import ShoalCore
import Synchronization
import Testing

let brokerT0 = Timestamp(milliseconds: 1_700_000_000_000)

/// The broker's clock in tests: stands still until the test moves it.
final class TestClock: Sendable {
    private let value: Mutex<Timestamp>

    init(_ start: Timestamp = brokerT0) { value = Mutex(start) }

    var now: Timestamp { value.withLock { $0 } }
    func advance(by duration: Duration) { value.withLock { $0 = $0 + duration } }
}

/// A ``Broker`` on a real lease store (SQLite in a temporary directory), a ``FakeLauncher`` and a
/// ``TestClock``, with helpers to write manifests and bring leases to a state.
struct BrokerHarness {
    let directory: TemporaryStateDirectory
    let store: LeaseStore
    let launcher: FakeLauncher
    let clock: TestClock
    let broker: Broker

    static let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    init(directory: TemporaryStateDirectory, hosts: [PoolHost], configure: (inout Broker.Configuration) -> Void = { _ in }) throws {
        var configuration = Broker.Configuration(hosts: hosts)
        configure(&configuration)
        let clock = TestClock()
        self.directory = directory
        self.clock = clock
        store = try directory.open()
        launcher = FakeLauncher(hostNames: hosts.map(\.name))
        broker = Broker(configuration: configuration, store: store, launcher: launcher, clock: { clock.now },
                        logger: Self.quietLogger)
    }

    /// Writes `NAME.yaml` into the temporary directory; returns its absolute path.
    func writeManifest(
        _ name: String, priority: Int = 0, min: Int = 0, max: Int = 3, weight: Int = 1, drainTimeout: String = "30s"
    ) throws -> String {
        let path = (directory.path as NSString).appendingPathComponent("\(name).yaml")
        let port = 8000 + Int(name.unicodeScalars.first!.value)
        let yaml = """
            name: \(name)
            frontend: fe-\(name)
            command: shoal-webserver
            args: ["--port", "{port}"]
            port: \(port)
            concurrency: 4
            thresholds: {low: 2, high: 6}
            backends: {min: \(min), max: \(max)}
            priority: \(priority)
            weight: \(weight)
            drain_timeout: \(drainTimeout)

            """
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Writes service `name`'s manifest and registers front-end `fe-NAME` for it; returns the path.
    @discardableResult
    func register(
        _ name: String, priority: Int = 0, min: Int = 0, max: Int = 3, drainTimeout: String = "30s"
    ) async throws -> String {
        let path = try writeManifest(name, priority: priority, min: min, max: max, drainTimeout: drainTimeout)
        _ = try await broker.register(FrontendRegistration(name: "fe-\(name)", manifestPath: path))
        return path
    }

    func acquire(_ service: String) async throws -> LeaseView {
        try await broker.acquire(AcquireRequest(frontend: "fe-\(service)"))
    }

    func lease(_ id: String) async throws -> StoredLease {
        try #require(try await store.lease(LeaseID(id)))
    }

    /// Waits until the granted lease's worker was started (its `spawn` is recorded, or the lease
    /// ended): until the broker's handed-off work is done. Returns its tasks.
    @discardableResult
    func waitForSpawn(_ id: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [Int32] {
        await broker.work.idle()
        return try await lease(id).lease.tasks
    }

    /// Acquires a lease for `service`, waits for its worker and reports it ready: an active lease.
    func activeLease(_ service: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> (id: String, task: Int32) {
        let view = try await acquire(service)
        let tasks = try await waitForSpawn(view.id, sourceLocation: sourceLocation)
        let task = try #require(tasks.first, sourceLocation: sourceLocation)
        try await broker.handle(.ready(task: task, endpoint: "\(view.host ?? "?"):\(9000 + task % 1000)"))
        #expect(try await lease(view.id).lease.state == .active, sourceLocation: sourceLocation)
        return (view.id, task)
    }

    /// Moves the clock on, with the workers of `tasks` reporting their load at the new time, as
    /// serving workers do every half second (a silent worker is taken for lost).
    func advance(by duration: Duration, reportingFrom tasks: [Int32]) async throws {
        clock.advance(by: duration)
        for task in tasks { try await broker.handle(.load(task: task, inFlight: 0, queued: 0)) }
    }

    /// Waits (at most 2 s) until a long poll of the event log is waiting for news.
    func waitForLongPoll(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let deadline = ContinuousClock.now + .seconds(2)
        while await broker.eventWaiters.isEmpty {
            if ContinuousClock.now >= deadline {
                Issue.record("no long poll is waiting after 2 s", sourceLocation: sourceLocation)
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    func events(of id: String) async throws -> [BrokerEvent] {
        try await store.events(forLease: LeaseID(id))
    }
}

/// Runs `body` with a fresh harness in a temporary directory, deleted afterwards.
func withBroker<T>(
    hosts: [PoolHost], configure: (inout Broker.Configuration) -> Void = { _ in }, runningWork: Bool = true,
    _ body: (BrokerHarness) async throws -> T
) async throws -> T {
    try await withStateDirectory { directory in
        try await withBroker(in: directory, hosts: hosts, configure: configure, runningWork: runningWork, body)
    }
}

/// Runs `body` with a harness on `directory`'s store (a broker restart is a second call), its
/// handed-off work (spawns, rejoins) running beside the test as under `run()` — unless
/// `runningWork` is false: a test that runs the broker's own `run()` runs it there. The store is
/// closed afterwards.
func withBroker<T>(
    in directory: TemporaryStateDirectory, hosts: [PoolHost], configure: (inout Broker.Configuration) -> Void = { _ in },
    runningWork: Bool = true, _ body: (BrokerHarness) async throws -> T
) async throws -> T {
    let harness = try BrokerHarness(directory: directory, hosts: hosts, configure: configure)
    let result = try await withThrowingTaskGroup(of: Void.self) { group in
        if runningWork { group.addTask { await harness.broker.work.run() } }
        defer { group.cancelAll() }
        return try await body(harness)
    }
    try harness.store.close()
    return result
}
