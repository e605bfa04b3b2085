import NIOCore
import ShoalCore
@testable import ShoalProxy
import Testing

/// The manifest's `local`: whether the front-end's own instance serves beside its back-ends.
@Suite struct LocalRoleTests {
    /// Members chosen for `count` requests in a row (none answered meanwhile), by name.
    func choices(_ local: LocalRole, count: Int) throws -> [String] {
        let table = MemberTable(local: try SocketAddress(ipAddress: "127.0.0.1", port: 9),
                                dispatcher: Dispatcher(thresholds: LoadThresholds(low: 2, high: 6), local: local))
        try table.addBackend(name: "b1", address: SocketAddress(ipAddress: "127.0.0.1", port: 10))
        let router = LoopRouter(table: table)
        return (0..<count).compactMap { _ in router.choose(now: .now())?.name }
    }

    @Test func standbyLeavesEveryRequestToTheBackEnds() throws {
        #expect(try choices(.standby, count: 4) == ["b1", "b1", "b1", "b1"])
    }

    @Test func serveMakesTheLocalInstanceTheFirstMember() throws {
        // The paper's rule on [local, b1]: the first Low member until it is Medium (2 in flight).
        #expect(try choices(.serve, count: 4) == ["local", "local", "b1", "b1"])
    }
}
