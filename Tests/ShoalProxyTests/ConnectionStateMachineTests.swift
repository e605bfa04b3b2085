import NIOCore
@testable import ShoalProxy
import Testing

/// ``ClientConnectionStateMachine`` driven directly, event by event, with a manual clock.
@Suite struct ConnectionStateMachine {
    typealias Machine = ClientConnectionStateMachine

    let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    let table = MemberTable(local: try! SocketAddress(ipAddress: "127.0.0.1", port: 9))

    func machine(_ change: (inout RelayConfiguration) -> Void = { _ in }, limits: Admission.Limits? = nil) -> Machine {
        var configuration = RelayConfiguration()
        change(&configuration)
        return Machine(settings: .init(configuration, admissionLimits: limits), now: start)
    }

    func head(_ text: String) -> RequestReader.Head {
        try! RequestReader.parse(ByteBuffer(string: text), maxHeaderCount: 100)
    }

    func response(_ text: String, toHEAD: Bool = false) -> ResponseReader.Head {
        try! ResponseReader.parse(ByteBuffer(string: text), requestIsHEAD: toHEAD)
    }

    /// A request admitted and on a member connection, its whole request sent.
    func relaying(_ machine: inout Machine, _ text: String = "GET / HTTP/1.1\r\n\r\n", member: Member? = nil,
                  connection: UpstreamConnection? = nil) -> UpstreamConnection {
        let member = member ?? table.local!
        guard case .admit = machine.requestHead(head(text), requestID: "r", upstreamHead: ByteBuffer(), startedAt: 0, now: start),
              case .route = machine.admissionDecided(.admitted, now: start)
        else { Issue.record("not admitted"); return UpstreamConnection(member: member) }
        #expect(member.beginRequest())
        _ = machine.memberChosen(member)
        let connection = connection ?? UpstreamConnection(member: member)
        connection.requestsStarted += 1
        _ = machine.attached(connection, now: start)
        return connection
    }

    @Test func idleTimesOutSilentlyButAStartedHeadGets408() {
        var idle = machine { $0.clientIdleTimeout = .seconds(60) }
        guard case .none = idle.timerFired(now: start + .seconds(59)) else { Issue.record("early"); return }
        guard case .closeSilently = idle.timerFired(now: start + .seconds(60)) else { Issue.record("not closed"); return }
        #expect(idle.isClosed)

        var slow = machine { $0.requestHeadTimeout = .seconds(10) }
        let after = slow.inputExhausted(midRequest: true, now: start + .seconds(5))
        #expect(after == .readOn)
        #expect(slow.deadline == start + .seconds(15))
        // More bytes of the same head don't restart it.
        _ = slow.inputExhausted(midRequest: true, now: start + .seconds(8))
        #expect(slow.deadline == start + .seconds(15))
        guard case .answerHeadTimeout = slow.timerFired(now: start + .seconds(15)) else { Issue.record("no 408"); return }
    }

    @Test func aFullExchangeEndsIdleWithTheIdleTimeoutFromTheAnswer() {
        var machine = machine { $0.clientIdleTimeout = .seconds(30) }
        let connection = relaying(&machine)
        guard case .flush(let flushed) = machine.requestEnd(now: start) else { Issue.record("no flush"); return }
        #expect(flushed === connection)
        #expect(machine.deadline == start + RelayConfiguration().responseHeadTimeout)
        guard case .relay(http10: false, keepAlive: true, _) = machine.responseHead(
            response("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), from: connection, draining: false, now: start)
        else { Issue.record("not relayed"); return }
        let later = start + .seconds(2)
        guard let finished = machine.responseEnd(from: connection, now: later) else { Issue.record("no end"); return }
        #expect(finished.connectionReusable)
        #expect(finished.after == .readOn)
        #expect(finished.exchange.holdsAdmission)
        #expect(machine.isIdle)
        #expect(machine.deadline == later + .seconds(30))
    }

    @Test func anAnswerBeforeTheBodyEndsLeavesTheRestToDiscard() {
        var machine = machine()
        let connection = relaying(&machine, "POST / HTTP/1.1\r\ncontent-length: 5\r\n\r\n")
        _ = machine.responseHead(response("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), from: connection, draining: false, now: start)
        let finished = machine.responseEnd(from: connection, now: start)
        #expect(finished?.connectionReusable == false)
        #expect(machine.isTakingCurrentRequest)
        guard case .drop = machine.requestBody(ByteBuffer(string: "12345"), bodyBytes: 5, now: start) else { Issue.record("kept"); return }
        guard case .afterAnswer(.readOn) = machine.requestEnd(now: start) else { Issue.record("not idle"); return }
        #expect(machine.isIdle)
    }

    @Test func oversizedContentLengthIsAnswered413AndCloses() {
        var machine = machine { $0.maxRequestBodyBytes = 10 }
        guard case .fail(.answer(let answer, _)) = machine.requestHead(
            head("POST / HTTP/1.1\r\ncontent-length: 11\r\n\r\n"), requestID: "r", upstreamHead: ByteBuffer(), startedAt: 0, now: start)
        else { Issue.record("not refused"); return }
        #expect(answer.error.code == .bodyTooLarge)
        #expect(answer.after == .close)  // The unread body is in the way.
        #expect(!answer.keepAlive)
    }

    @Test func drainingRefusesAndCloses() {
        var machine = machine()
        _ = machine.requestHead(head("GET / HTTP/1.1\r\n\r\n"), requestID: "r", upstreamHead: ByteBuffer(), startedAt: 0, now: start)
        guard case .fail(.answer(let answer, _)) = machine.admissionDecided(.draining, now: start) else { Issue.record("admitted"); return }
        #expect(answer.error.code == .draining)
        #expect(answer.after == .close)
        #expect(machine.isClosed)
    }

    @Test func quiescingClosesIdleAtOnceAndBusyAfterTheAnswer() {
        var idle = machine()
        let closesAtOnce = idle.quiesce()
        #expect(closesAtOnce)
        var busy = machine()
        let connection = relaying(&busy)
        let busyClosesAtOnce = busy.quiesce()
        #expect(!busyClosesAtOnce)
        _ = busy.requestEnd(now: start)
        guard case .relay(_, keepAlive: false, _) = busy.responseHead(
            response("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), from: connection, draining: false, now: start)
        else { Issue.record("kept alive"); return }
        let busyEnd = busy.responseEnd(from: connection, now: start)
        #expect(busyEnd?.after == .close)
    }

    @Test func aStaleReusedConnectionGetsOneFreshConnection() {
        var machine = machine()
        let member = table.local!
        let connection = UpstreamConnection(member: member)
        connection.requestsStarted = 1  // Reused: relaying() counts the second request.
        _ = relaying(&machine, member: member, connection: connection)
        guard case .retryOnFreshConnection(let again) = machine.upstreamClosed(connection, memberAbandoned: false) else {
            Issue.record("no fresh retry"); return
        }
        again.endRequest()
        #expect(member.beginRequest())
        let send = machine.memberChosen(member)
        #expect(send == .new)
        // A second stale close is a failure like any other.
        let fresh = UpstreamConnection(member: member)
        fresh.requestsStarted = 1
        _ = machine.attached(fresh, now: start)
        guard case .memberFailed(_, countsAsFailure: true) = machine.upstreamClosed(fresh, memberAbandoned: false) else {
            Issue.record("not failed"); return
        }
        member.endRequest()
    }

    @Test func retriesGoToAnotherMemberThenToTheLocalInstanceThenFail() throws {
        var machine = machine()
        let backend = try table.addBackend(name: "b1", address: SocketAddress(ipAddress: "127.0.0.1", port: 10))
        _ = relaying(&machine, member: backend)
        let failure = RelayError(.memberUnreachable, "gone")
        guard case .retry(_, onLocal: false, _) = machine.retryOrFail(after: backend, failure: failure, onlyIfReplayable: true, now: start)
        else { Issue.record("no first retry"); return }
        guard case .retry(_, onLocal: true, _) = machine.retryOrFail(after: backend, failure: failure, onlyIfReplayable: true, now: start)
        else { Issue.record("no local retry"); return }
        guard case .fail(.answer(let answer, _)) = machine.retryOrFail(after: backend, failure: failure, onlyIfReplayable: true, now: start)
        else { Issue.record("retried a third time"); return }
        #expect(answer.error.code == .memberUnreachable)
        backend.endRequest()
    }

    @Test func aPostIsRetriedOnlyWhenNothingReachedTheMember() {
        var machine = machine()
        let member = table.local!
        _ = relaying(&machine, "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n", member: member)
        let failure = RelayError(.memberUnreachable, "gone")
        guard case .fail = machine.retryOrFail(after: member, failure: failure, onlyIfReplayable: true, now: start)
        else { Issue.record("replayed a POST"); return }
        var connectFailed = self.machine()
        _ = relaying(&connectFailed, "POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n", member: member)
        guard case .retry = connectFailed.retryOrFail(after: member, failure: failure, onlyIfReplayable: false, now: start)
        else { Issue.record("not retried"); return }
        member.endRequest()
        member.endRequest()
    }

    @Test func halfCloseMakesTheCurrentAnswerTheLast() {
        var machine = machine()
        let connection = relaying(&machine)
        _ = machine.requestEnd(now: start)
        guard case .none = machine.clientClosedInput(midRequest: false) else { Issue.record("closed early"); return }
        guard case .relay(_, keepAlive: false, _) = machine.responseHead(
            response("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), from: connection, draining: false, now: start)
        else { Issue.record("kept alive"); return }
        let end = machine.responseEnd(from: connection, now: start)
        #expect(end?.after == .close)
    }

    @Test func halfCloseWithPipelinedRequestsWaitingKeepsTheConnection() {
        var machine = machine()
        let connection = relaying(&machine)
        _ = machine.requestEnd(now: start)
        machine.hasWaitingInput = true
        _ = machine.clientClosedInput(midRequest: false)
        guard case .relay(_, keepAlive: true, _) = machine.responseHead(
            response("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), from: connection, draining: false, now: start)
        else { Issue.record("closed with requests waiting"); return }
        let end = machine.responseEnd(from: connection, now: start)
        #expect(end?.after == .readOn)
        machine.hasWaitingInput = false
        let last = machine.inputExhausted(midRequest: false, now: start)
        #expect(last == .close)
    }

    @Test func readsAreHeldUntilAMemberConnectionIsReadyAndWhileRequestsWait() {
        var machine = machine()
        #expect(!machine.readsPaused)
        _ = machine.requestHead(head("POST / HTTP/1.1\r\ncontent-length: 9\r\n\r\n"), requestID: "r", upstreamHead: ByteBuffer(),
                                startedAt: 0, now: start)
        #expect(machine.readsPaused)
        _ = machine.admissionDecided(.admitted, now: start)
        _ = machine.memberChosen(table.local!)
        machine.connecting()
        #expect(machine.readsPaused)
        guard case .buffered = machine.requestBody(ByteBuffer(string: "early"), bodyBytes: 5, now: start) else { Issue.record("not buffered"); return }
        let plan = machine.attached(UpstreamConnection(member: table.local!), now: start)
        #expect(plan?.buffered.count == 1)
        #expect(!machine.readsPaused)
        machine.hasWaitingInput = true
        #expect(machine.readsPaused)
    }

    @Test func aWorkerRefusalOfAnIdempotentRequestIsRetried() throws {
        var machine = machine()
        let backend = try table.addBackend(name: "b2", address: SocketAddress(ipAddress: "127.0.0.1", port: 11))
        let connection = relaying(&machine, member: backend)
        _ = machine.requestEnd(now: start)
        let refusal = response("HTTP/1.1 503 Service Unavailable\r\nx-shoal-error: draining\r\ncontent-length: 0\r\n\r\n")
        guard case .workerRefused(let refused, _, code: "draining") = machine.responseHead(refusal, from: connection, draining: false, now: start)
        else { Issue.record("relayed the refusal"); return }
        #expect(refused === connection)
        #expect(!machine.isCurrent(connection))
        backend.endRequest()
    }

    @Test func lateCallbacksOfAGoneRequestAreRecognised() {
        var machine = machine()
        _ = machine.requestHead(head("GET / HTTP/1.1\r\n\r\n"), requestID: "r", upstreamHead: ByteBuffer(), startedAt: 0, now: start)
        _ = machine.admissionDecided(.admitted, now: start)
        _ = machine.memberChosen(table.local!)
        machine.connecting()
        let generation = machine.generation
        #expect(machine.isAwaitingConnection(generation: generation))
        let abandoned = machine.connectionClosed()
        #expect(abandoned != nil)
        #expect(!machine.isAwaitingConnection(generation: generation))
        let turnTaken = machine.turnCame(generation: generation)
        #expect(!turnTaken)
    }
}
