import ShoalCore

/// What the broker hears from the pool: workers' reports and PVM's notices.
public enum LauncherEvent: Sendable, Hashable {
    /// The worker `task` serves: its service instance passed its health check.
    case ready(task: Int32, endpoint: String)
    /// Requests in progress and waiting at the worker.
    case load(task: Int32, inFlight: Int, queued: Int)
    /// The worker finished its drain: nothing is in flight there any more.
    case drained(task: Int32)
    /// The worker could not start its service.
    case failed(task: Int32, reason: String)
    /// The task exited or was killed (`pvm_notify` task exit).
    case exited(task: Int32)
    /// The host left the virtual machine or its pvmd died (`pvm_notify` host delete).
    case hostDown(host: String)
    /// The pool's pvmd is gone, and with it every worker (PVM has one master).
    case poolLost(reason: String)
    /// A new pvmd runs; its virtual machine has `hosts` (its own host at least).
    case poolRestarted(hosts: [String])
}

/// Starts and stops the workers that back leases. ``PVMLauncher`` does it through PVM; the
/// broker's unit tests use a fake.
public protocol BackendLauncher: Sendable {
    var events: AsyncStream<LauncherEvent> { get }
    /// The hosts of the virtual machine now (by the names PVM uses).
    func hostNames() async throws -> [String]
    /// Adds the hosts the virtual machine is missing; returns a sentence per host that failed.
    func add(hosts: [String]) async -> [String: String]
    /// Deletes the hosts from the virtual machine (a pvmd taken for dead, to be started anew
    /// by ``add(hosts:)``); returns a sentence per host that failed.
    func remove(hosts: [String]) async -> [String: String]
    /// Starts the worker for a lease on `host`; returns its task ids (watched for exit). With a
    /// `secret`, the worker serves only requests that present it.
    func launch(lease: LeaseID, secret: LeaseSecret?, manifestPath: String, on host: String) async throws -> [Int32]
    /// Orders the workers to drain: finish what is in flight, take nothing new, report drained.
    func drain(tasks: [Int32]) async
    /// Stops the tasks (SIGTERM; a worker finishes in-flight requests before it exits).
    func stop(tasks: [Int32]) async
    /// After a broker restart: of `tasks`, which still run. Those are watched again and told to
    /// report to this broker from now on.
    func adopt(tasks: [Int32]) async throws -> Set<Int32>
    /// Stops every worker task not in `owned` (a spawn the broker never recorded); returns them.
    func stopStrays(owned: Set<Int32>) async throws -> [Int32]
}
