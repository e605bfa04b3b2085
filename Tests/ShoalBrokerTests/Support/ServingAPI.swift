import Hummingbird
import Logging
import ServiceLifecycle
import ShoalBroker
import Testing

/// Serves `operations`' API on a real socket (any free port) for the duration of `body`, which
/// gets the port. `alongside` are services to run in the same group (e.g. the broker itself, for
/// its tick and its history's sampling).
func servingAPI<T: Sendable>(
    _ operations: some BrokerOperations,
    token: String,
    logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
    alongside: [any Service] = [],
    _ body: @Sendable (Int) async throws -> T
) async throws -> T {
    let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
    let server = try BrokerHTTPServer(operations: operations, token: token, port: 0, logger: logger) { portSink.yield($0) }
    let group = ServiceGroup(services: alongside + [server], logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    return try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        let result: T
        do {
            result = try await body(port)
        } catch {
            await group.triggerGracefulShutdown()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
        return result
    }
}
