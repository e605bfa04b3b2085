import Foundation
import Logging
import PVM
import ShoalTesting
import Testing

/// Every suite that enrols this process with a pvmd lives inside this one: libpvm3 allows one
/// enrolment per process, so they must never run at the same time.
@Suite(.serialized)
struct PVMIntegrationTests {}

/// A logger for the engine under test: stderr, `notice` and up unless `SHOAL_TEST_LOG` says
/// otherwise (`debug`, `info`, …).
func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
    logger.logLevel = ProcessInfo.processInfo.environment["SHOAL_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .notice
    return logger
}

/// The `shoal-pvm-echo` built beside the test binary.
func echoProgram() throws -> String {
    try ProcessRunner.builtProduct("shoal-pvm-echo").path
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    let after: Duration
    var description: String { "\(what): nothing after \(after)" }
}

/// Runs `body`, failing with `TimedOut` after `limit`: every await of the tests is bounded.
func within<T: Sendable>(
    _ limit: Duration,
    _ what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimedOut(what: what, after: limit) }
        return value
    }
}

struct EventStreamEnded: Error {}

/// The next event of `engine` that satisfies `predicate`, within `limit`.
func nextEvent(
    of engine: PVMEngine,
    within limit: Duration = .seconds(15),
    _ what: String,
    where predicate: @escaping @Sendable (PVMEvent) -> Bool
) async throws -> PVMEvent {
    try await within(limit, "event: \(what)") {
        for await event in engine.events where predicate(event) {
            return event
        }
        throw EventStreamEnded()
    }
}

/// Waits for the echo task `task` to say hello; returns the host name it reported.
func hello(from task: PVMTaskID, on engine: PVMEngine) async throws -> String {
    let message = try await engine.receive(from: task, tag: PVMEchoProtocol.hello, timeout: .seconds(15))
    return try #require(message.fields.first?.stringValue)
}

/// Starts a pvmd of its own, attaches, runs `body`, then closes the engine and stops the pvmd
/// whatever happens, and checks that nothing of it is left.
func withLocalPVM<R: Sendable>(
    _ body: (PVMDaemon, PVMEngine) async throws -> R
) async throws -> R {
    let logger = testLogger("pvm-test")
    let daemon = try await PVMDaemon.start(logger: logger)
    let result: Result<R, any Error>
    do {
        result = .success(try await PVMEnrolmentLock.shared.withLock {
            try await PVMEngine.withAttached(socketPath: daemon.socketPath, logger: logger) { engine in
                try await body(daemon, engine)
            }
        })
    } catch {
        result = .failure(error)
    }
    try await daemon.stop()
    #expect(!daemon.isRunning)
    #expect(kill(daemon.pid, 0) != 0, "pvmd \(daemon.pid) still exists")
    #expect(!FileManager.default.fileExists(atPath: daemon.temporaryDirectory))
    return try result.get()
}
