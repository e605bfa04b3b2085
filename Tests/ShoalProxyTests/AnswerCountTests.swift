import NIOCore
import ShoalCore
@testable import ShoalProxy
import Testing

/// The front-end's count of requests served (for its service's efficiency): every answer of
/// every member the table has had, a removed one's too, also those it finishes after removal.
@Suite struct AnswerCountTests {
    func answer(_ member: Member) {
        #expect(member.beginRequest())
        member.recordResponse(status: 200, nanoseconds: 1000)
        member.endRequest()
    }

    @Test func answersOfRemovedMembersStillCount() throws {
        let table = MemberTable(local: try SocketAddress(ipAddress: "127.0.0.1", port: 9))
        let backend = try table.addBackend(name: "b1", address: SocketAddress(ipAddress: "127.0.0.1", port: 10))
        answer(try #require(table.local))
        answer(backend)
        #expect(backend.beginRequest())  // In flight when it is removed.
        #expect(table.requestsAnswered == 2)

        table.removeBackend(named: "b1")
        #expect(table.requestsAnswered == 2)
        backend.recordResponse(status: 200, nanoseconds: 1000)
        backend.endRequest()
        #expect(table.requestsAnswered == 3, "answered after its removal")
        table.setLocal(try SocketAddress(ipAddress: "127.0.0.1", port: 11))
        #expect(table.requestsAnswered == 3, "a replaced local member's answers stay counted")
        answer(try #require(table.local))
        #expect(table.requestsAnswered == 4)
    }
}
