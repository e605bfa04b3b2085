import NIOCore

/// Where one client connection of the relay stands, and every decision about it: the request in
/// progress and how far it got, when the current state times out, whether the client's reads are
/// held, whether a failed request is retried, and what happens after each answer. Each event is a
/// `mutating func` returning what ``ClientRelayHandler`` must do; the handler does the I/O and
/// decides nothing. The clock is passed in (`now`), so tests drive every timeout by hand.
///
/// ```
///            head                admitted / turn came         member connection
///  idle ───────────► exchanging: waitingForTurn ─► connecting ─► relaying ──┐
///   ▲                                                                       │ answer complete
///   │        request ended                        request not ended         │ (relayed or the
///   ├────────────────────────── after the answer ◄──────────────────────────┘  relay's own)
///   │                                  │
///   └────── body read ── discarding ◄──┘          closing: ─► closed
///
///  relaying ── 101 Switching Protocols ──► tunneling ── either side closes ──► closed
/// ```
/// "After the answer" is one transition (``afterAnswer(requestEnded:closes:now:)``) for a relayed
/// answer, the relay's own answer and the end of a body read after its answer.
struct ClientConnectionStateMachine {
    enum State {
        /// Waiting for a request head. The idle timeout runs, or, once part of a head is in
        /// (`headStarted`), the head timeout: a slow head is told from an idle keep-alive connection.
        case idle(deadline: NIODeadline, headStarted: Bool)
        /// A request is in progress.
        case exchanging(Exchange)
        /// The member switched protocols (`101`): bytes go both ways as they come, until either
        /// side closes. The request stays counted (member, admission) all along.
        case tunneling(Exchange)
        /// The answer is complete; the rest of the request body is read and dropped.
        case discarding(deadline: NIODeadline)
        /// The connection is closing; nothing more happens.
        case closed
    }

    /// The timeouts and limits the decisions need, copied from the relay's configuration.
    struct Settings {
        var clientIdleTimeout: TimeAmount
        var requestHeadTimeout: TimeAmount
        var requestBodyIdleTimeout: TimeAmount
        var responseHeadTimeout: TimeAmount
        var responseBodyIdleTimeout: TimeAmount
        var maxRequestBodyBytes: Int
        var retryIdempotentRequests: Bool
        var admissionLimits: Admission.Limits?

        init(_ configuration: RelayConfiguration, admissionLimits: Admission.Limits?) {
            clientIdleTimeout = configuration.clientIdleTimeout
            requestHeadTimeout = configuration.requestHeadTimeout
            requestBodyIdleTimeout = configuration.requestBodyIdleTimeout
            responseHeadTimeout = configuration.responseHeadTimeout
            responseBodyIdleTimeout = configuration.responseBodyIdleTimeout
            maxRequestBodyBytes = configuration.maxRequestBodyBytes
            retryIdempotentRequests = configuration.retryIdempotentRequests
            self.admissionLimits = admissionLimits
        }

        /// How long a request may wait for an admission turn.
        var queueTimeout: TimeAmount { admissionLimits?.queueTimeout ?? responseHeadTimeout }
    }

    private(set) var state: State
    /// Close once the current answer is out: the relay drains or stops, or the request can't be
    /// read to its end.
    private(set) var closesAfterAnswer = false
    /// The client half-closed: answer what it asked, then close.
    private(set) var inputClosed = false
    /// Client bytes wait, unread, for the request in progress to be answered (a pipelined
    /// request): kept up to date by the handler.
    var hasWaitingInput = false
    /// The last request's exchange, once the handler has released it: the next request's, so a
    /// connection allocates one, not one per request.
    private var spare: Exchange?
    /// Moves on with every request, so late callbacks (connect, admission) can tell theirs is gone.
    private(set) var generation = 0
    let settings: Settings

    init(settings: Settings, now: NIODeadline) {
        self.settings = settings
        self.state = .idle(deadline: now + settings.clientIdleTimeout, headStarted: false)
    }

    // MARK: Actions

    /// What follows an answer.
    enum AfterAnswer: Equatable {
        /// Close gracefully (after what was written).
        case close
        /// Go on reading: the next request, or the rest of this one's body to drop.
        case readOn
    }

    /// The relay's own answer to write (`4xx`/`5xx`).
    struct LocalAnswer {
        var error: RelayError
        var requestID: String
        var http10: Bool
        var keepAlive: Bool
        var includeBody: Bool
        var after: AfterAnswer
    }

    /// How a request that can't be relayed ends.
    enum FailAction {
        /// Nothing to do (no request in progress).
        case none
        /// Part of the answer is out: release the exchange, close at once (the client sees a
        /// cut-short answer as one).
        case cutShort(Exchange?)
        /// Release the exchange, then write the relay's own answer.
        case answer(LocalAnswer, released: Exchange)
    }

    enum RequestHeadAction {
        /// Ask ``Admission`` and report with ``admissionDecided(_:now:)``.
        case admit
        case fail(FailAction)
        /// A head while another request is in progress: a bug, not to be relayed.
        case closeNow
    }

    enum AdmissionAction {
        /// Choose a member (``memberChosen(_:)``).
        case route
        /// Wait for the turn (``turnCame(generation:)``).
        case wait
        case fail(FailAction)
    }

    enum RetryAction {
        /// End `failed`'s request, then send this one elsewhere: to the local instance if
        /// `onLocal`, else to another member than `failed` (or answer `failure` if there is none).
        case retry(after: Member, onLocal: Bool, failure: RelayError)
        case fail(FailAction)
    }

    /// Where the request goes once its member is chosen.
    enum SendAction {
        /// A pooled connection if one is idle (``attached(_:now:)``), else a new one (``connecting()``).
        case pooledOrNew
        /// A new connection: the last one failed in a way that suggests pooled ones are stale.
        case new
    }

    /// What ``attached(_:now:)`` asks the handler to send.
    struct AttachPlan {
        var head: ByteBuffer
        var toHEAD: Bool
        var dechunkResponse: Bool
        var sendContinue: Bool
        var http10: Bool
        /// The request asks to switch protocols: a `101` opens a tunnel.
        var upgrade: Bool
        var buffered: [ByteBuffer]
    }

    enum BodyAction {
        case forward(UpstreamConnection)
        /// Kept until a member connection is ready.
        case buffered
        /// Read after the answer; dropped.
        case drop
        case fail(FailAction)
    }

    enum RequestEndAction {
        case none
        /// Flush what went to the member: the request is complete.
        case flush(UpstreamConnection)
        case afterAnswer(AfterAnswer)
    }

    enum ResponseHeadAction {
        /// Not the current connection's, or already answered.
        case ignore
        /// A back-end's worker refused (its own `5xx`): close `connection`, count the member
        /// failed, then ``retryOrFail(after:failure:onlyIfReplayable:now:)``.
        case workerRefused(UpstreamConnection, Member, code: String)
        /// Write the head to the client.
        case relay(http10: Bool, keepAlive: Bool, member: Member?)
        /// Write the `101` head to the client; from now on bytes go both ways unread (the
        /// client's waiting ones first). `clientHalfClosed`: the client already sent its last
        /// byte, so the member's side is half-closed at once.
        case openTunnel(member: Member?, clientHalfClosed: Bool)
    }

    /// An answer relayed in full.
    struct FinishedAnswer {
        /// Released by the handler (its connection is no longer in it).
        var exchange: Exchange
        var connection: UpstreamConnection
        /// The whole request went out, so the connection may carry the next one.
        var connectionReusable: Bool
        var after: AfterAnswer
    }

    enum UpstreamClosedAction {
        case ignore
        /// The member closed a tunnel: release, close the client's side after what was relayed.
        case tunnelClosed(Exchange)
        case cutShort(Exchange)
        /// The connection was reused and most likely closed by the member as we reused it: end
        /// `member`'s request and route again (a fresh connection, not counted as a retry).
        case retryOnFreshConnection(Member)
        /// Nothing of the answer came: count `member` failed (`countsAsFailure`), then
        /// ``retryOrFail(after:failure:onlyIfReplayable:now:)`` (or fail if `member` is `nil`).
        case memberFailed(Member?, countsAsFailure: Bool)
    }

    enum TimeoutAction {
        case none
        /// An idle connection, or one reading a body after its answer: close silently.
        case closeSilently
        /// The head did not complete in time: `408`, then close.
        case answerHeadTimeout
        /// The member was removed as gone: close its connection, which retries the request.
        case closeUpstream(UpstreamConnection)
        /// The answer stalled midway.
        case cutShort(Exchange)
        case fail(FailAction)
    }

    enum InputClosedAction {
        case none
        case close
        /// The request in progress will never be complete: answer `400`.
        case requestCutShort
        /// Pass the half-close on through the tunnel.
        case halfCloseTunnel(UpstreamConnection)
    }

    enum UnreadableAction {
        /// Part of an answer is out: release, close at once.
        case cutShort(Exchange?)
        /// Release, answer with the error, close.
        case answerAndClose(Exchange?)
    }
}

// MARK: Queries

extension ClientConnectionStateMachine {
    /// Whether bytes arriving now belong to the request in progress (or start the next).
    var isTakingCurrentRequest: Bool {
        switch state {
        case .idle, .discarding: true
        case .exchanging(let exchange): !exchange.requestEnded
        case .tunneling, .closed: false
        }
    }

    var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    /// The request in progress (or the tunnel it became), if any.
    var exchange: Exchange? {
        switch state {
        case .exchanging(let exchange), .tunneling(let exchange): exchange
        case .idle, .discarding, .closed: nil
        }
    }

    /// The member connection of an open tunnel.
    var tunnel: UpstreamConnection? {
        if case .tunneling(let exchange) = state { return exchange.upstream }
        return nil
    }

    /// Whether `connection` carries the request in progress (or its tunnel).
    @inline(__always)
    func isCurrent(_ connection: UpstreamConnection) -> Bool {
        switch state {
        case .exchanging(let exchange), .tunneling(let exchange):
            if case .relaying(let current) = exchange.stage { return current === connection }
            return false
        case .idle, .discarding, .closed:
            return false
        }
    }

    /// Hold the client back while there is nowhere to put its bytes yet, the member's channel is
    /// full, or a pipelined request waits. (Reads are *not* held just because an answer is in
    /// progress: holding and releasing them costs two `epoll_ctl` calls per request.)
    var readsPaused: Bool {
        if hasWaitingInput { return true }
        if let tunnel { return !tunnel.isWritable }
        guard case .exchanging(let exchange) = state else { return false }
        if case .relaying(let connection) = exchange.stage { return !connection.isWritable }
        return true
    }

    /// When the current state times out.
    var deadline: NIODeadline {
        switch state {
        case .idle(let deadline, _), .discarding(let deadline): deadline
        case .exchanging(let exchange): exchange.deadline
        case .tunneling, .closed: .distantFuture  // A tunnel ends when either side closes it.
        }
    }

    @inline(__always)
    private func withExchange<Result>(_ body: (Exchange) -> Result) -> Result? {
        guard case .exchanging(let exchange) = state else { return nil }
        return body(exchange)
    }
}

// MARK: The request's way in

extension ClientConnectionStateMachine {
    /// Client bytes were read, all of them taken, and no request is in progress: part of a head
    /// starts the head timeout; a half-closed client with nothing left to send is done.
    mutating func inputExhausted(midRequest: Bool, now: NIODeadline) -> AfterAnswer {
        guard case .idle(_, let headStarted) = state else { return .readOn }
        if inputClosed {
            state = .closed
            return .close
        }
        if midRequest, !headStarted { state = .idle(deadline: now + settings.requestHeadTimeout, headStarted: true) }
        return .readOn
    }

    /// A request head arrived. `authorized`: it presented the lease secret the relay requires
    /// (or none is required); else it is answered `403` and the connection closes.
    mutating func requestHead(_ head: RequestReader.Head, requestID: String, upstreamHead: ByteBuffer,
                              startedAt: UInt64, authorized: Bool = true, now: NIODeadline) -> RequestHeadAction {
        guard case .idle = state else { return .closeNow }
        generation &+= 1
        let isReplayable = settings.retryIdempotentRequests && !head.hasBody && head.method != .other
        if let spare {
            self.spare = nil
            spare.restart(request: head, requestID: requestID, upstreamHead: upstreamHead, startedAt: startedAt, isReplayable: isReplayable)
            state = .exchanging(spare)
        } else {
            state = .exchanging(Exchange(request: head, requestID: requestID, upstreamHead: upstreamHead, startedAt: startedAt,
                                         isReplayable: isReplayable, deadline: .distantFuture))
        }
        guard authorized else {
            closesAfterAnswer = true  // Nothing more from a caller that does not hold the lease.
            return .fail(fail(RelayError(.forbidden, "this worker serves only the front-end that holds its lease"), now: now))
        }
        if let length = head.contentLength, length > settings.maxRequestBodyBytes {
            let limit = settings.maxRequestBodyBytes
            return .fail(fail(RelayError(.bodyTooLarge, "request body of \(length) bytes exceeds the limit of \(limit)"),
                              now: now))
        }
        return .admit
    }

    mutating func admissionDecided(_ decision: Admission.Decision, now: NIODeadline) -> AdmissionAction {
        switch decision {
        case .admitted:
            withExchange { $0.holdsAdmission = true }
            return .route
        case .queued(let ticket):
            let deadline = now + settings.queueTimeout
            withExchange { exchange in
                exchange.stage = .waitingForTurn(ticket)
                exchange.deadline = deadline
            }
            return .wait
        case .queueFull:
            let limits = settings.admissionLimits
            let error = RelayError(.queueFull, "\(limits?.maxConcurrent ?? 0) requests running and \(limits?.maxQueued ?? 0) waiting; try again later")
            return .fail(fail(error, now: now))
        case .draining:
            closesAfterAnswer = true
            return .fail(fail(RelayError(.draining, "this relay is draining and takes no new requests"), now: now))
        }
    }

    /// A queued request's turn came. `false`: its request is gone, so the turn goes back.
    mutating func turnCame(generation: Int) -> Bool {
        guard generation == self.generation, exchange?.admissionTicket != nil else { return false }
        withExchange { exchange in
            exchange.stage = .choosingMember
            exchange.holdsAdmission = true
        }
        return true
    }

    /// `member` takes the request (already counted against it).
    mutating func memberChosen(_ member: Member) -> SendAction {
        withExchange { exchange in
            exchange.member = member
            exchange.stage = .choosingMember
            // An upgrade goes on a fresh connection: some servers (NIO's among them) switch
            // protocols only on a connection's first request.
            guard exchange.forceFreshConnection || exchange.request.upgrade != nil else { return .pooledOrNew }
            exchange.forceFreshConnection = false
            return .new
        } ?? .new
    }

    mutating func connecting() {
        withExchange { exchange in
            exchange.stage = .connecting
            exchange.deadline = .distantFuture  // The bootstrap's connect timeout covers this stage.
        }
    }

    /// Whether a connect that just completed is still wanted by the request that started it.
    func isAwaitingConnection(generation: Int) -> Bool {
        guard generation == self.generation, let exchange, case .connecting = exchange.stage else { return false }
        return true
    }

    /// The request starts on `connection`: head, whatever body arrived meanwhile, and its end if it came.
    mutating func attached(_ connection: UpstreamConnection, now: NIODeadline) -> AttachPlan? {
        let settings = settings
        return withExchange { exchange in
            exchange.stage = .relaying(connection)
            // The body goes on as it came (chunk framing included), so its end needs no bytes of its own.
            exchange.requestSent = exchange.requestEnded
            let sendContinue = exchange.expectsContinue && !exchange.requestEnded
            if sendContinue { exchange.expectsContinue = false }
            let buffered = exchange.buffered
            exchange.buffered = []
            exchange.deadline = now + (exchange.requestSent ? settings.responseHeadTimeout : settings.requestBodyIdleTimeout)
            return AttachPlan(head: exchange.upstreamHead, toHEAD: exchange.request.method == .head,
                              dechunkResponse: exchange.request.isHTTP10, sendContinue: sendContinue,
                              http10: exchange.request.isHTTP10, upgrade: exchange.request.upgrade != nil, buffered: buffered)
        }
    }

    /// Body bytes; `bodyBytes` is the request's body so far, without chunk framing.
    mutating func requestBody(_ body: ByteBuffer, bodyBytes: Int, now: NIODeadline) -> BodyAction {
        if bodyBytes > settings.maxRequestBodyBytes { return .fail(requestBodyTooLarge(now: now)) }
        switch state {
        case .exchanging:
            let settings = settings
            return withExchange { exchange in
                switch exchange.stage {
                case .relaying(let connection):
                    exchange.deadline = now + settings.requestBodyIdleTimeout
                    return .forward(connection)
                case .choosingMember, .waitingForTurn, .connecting:
                    exchange.buffered.append(body)
                    return .buffered
                }
            } ?? .drop
        case .discarding:
            state = .discarding(deadline: now + settings.requestBodyIdleTimeout)
            return .drop
        case .idle, .tunneling, .closed:
            return .drop
        }
    }

    mutating func requestEnd(now: NIODeadline) -> RequestEndAction {
        switch state {
        case .exchanging:
            let settings = settings
            return withExchange { exchange in
                exchange.requestEnded = true
                guard case .relaying(let connection) = exchange.stage else { return .none }  // `attached` sends it.
                exchange.requestSent = true
                if !exchange.responseStarted { exchange.deadline = now + settings.responseHeadTimeout }
                return .flush(connection)
            } ?? .none
        case .discarding:
            return .afterAnswer(afterAnswer(requestEnded: true, closes: false, now: now))
        case .idle, .tunneling, .closed:
            return .none
        }
    }

    private mutating func requestBodyTooLarge(now: NIODeadline) -> FailAction {
        let error = RelayError(.bodyTooLarge, "request body exceeds the limit of \(settings.maxRequestBodyBytes) bytes")
        switch state {
        case .exchanging(let exchange) where !exchange.responseStarted:
            closesAfterAnswer = true
            return fail(error, now: now)
        case .exchanging(let exchange):
            state = .closed
            return .cutShort(exchange)
        case .discarding:
            state = .closed
            return .cutShort(nil)
        case .idle, .tunneling, .closed:
            return .none
        }
    }

    /// The client half-closed. `midRequest`: part of a request was read.
    mutating func clientClosedInput(midRequest: Bool) -> InputClosedAction {
        inputClosed = true
        if let tunnel { return .halfCloseTunnel(tunnel) }
        if isTakingCurrentRequest, midRequest { return .requestCutShort }
        if isIdle, !hasWaitingInput {
            state = .closed
            return .close
        }
        return .none
    }

    /// The request could not be read (malformed, over a limit, cut short): it ends the connection.
    mutating func requestUnreadable() -> UnreadableAction {
        let previous = state
        state = .closed
        switch previous {
        case .exchanging(let exchange): return exchange.responseStarted ? .cutShort(exchange) : .answerAndClose(exchange)
        case .tunneling(let exchange): return .cutShort(exchange)
        case .discarding: return .cutShort(nil)
        case .idle, .closed: return .answerAndClose(nil)
        }
    }
}

// MARK: The answer's way out

extension ClientConnectionStateMachine {
    mutating func responseHead(_ head: ResponseReader.Head, from connection: UpstreamConnection,
                               draining: Bool, now: NIODeadline) -> ResponseHeadAction {
        guard isCurrent(connection), let current = exchange, !current.responseStarted else { return .ignore }
        if let member = current.member, let code = head.shoalError, Self.isWorkerRefusal(head.status, member: member, exchange: current) {
            withExchange { $0.stage = .choosingMember }
            return .workerRefused(connection, member, code: code)
        }
        if head.framing == .tunnel, case .exchanging(let exchange) = state {
            exchange.responseStarted = true
            exchange.responseStatus = head.status
            state = .tunneling(exchange)
            return .openTunnel(member: exchange.member, clientHalfClosed: inputClosed)
        }
        let clientSentItsLast = inputClosed && !hasWaitingInput
        let closesAfterAnswer = closesAfterAnswer
        let settings = settings
        return withExchange { exchange in
            exchange.responseStarted = true
            exchange.responseStatus = head.status
            let request = exchange.request
            // A draining relay closes connections as their answers finish, so a front-end's pool
            // lets go of a worker that is about to stop.
            exchange.closesConnection = !request.keepAlive || clientSentItsLast || draining
                || !ForwardedHeaders.responseCanBeFramed(head.framing, http10: request.isHTTP10)
            exchange.deadline = now + settings.responseBodyIdleTimeout
            return .relay(http10: request.isHTTP10, keepAlive: !exchange.closesConnection && !closesAfterAnswer,
                          member: exchange.member)
        } ?? .ignore
    }

    /// A back-end's worker answered with its own error (`X-Shoal-Error`: its service died, it is
    /// draining or full): nothing was served, so an idempotent request goes elsewhere.
    private static func isWorkerRefusal(_ status: UInt, member: Member, exchange: Exchange) -> Bool {
        (502...504).contains(status) && member.role == .backend && exchange.isReplayable && exchange.retriesLeft > 0
    }

    /// Part of the answer's body arrived; `false` if it is not for the request in progress.
    mutating func responseBody(from connection: UpstreamConnection, now: NIODeadline) -> Bool {
        guard isCurrent(connection) else { return false }
        let timeout = settings.responseBodyIdleTimeout
        withExchange { $0.deadline = now + timeout }
        return true
    }

    mutating func responseEnd(from connection: UpstreamConnection, now: NIODeadline) -> FinishedAnswer? {
        guard isCurrent(connection), case .exchanging(let exchange) = state else { return nil }
        exchange.stage = .choosingMember  // The connection is the handler's now, to pool or close.
        let closes = exchange.closesConnection || (inputClosed && !hasWaitingInput)
        let after = afterAnswer(requestEnded: exchange.requestEnded, closes: closes, now: now)
        // A connection that carried an upgrade request is not reused even when the member
        // declined: some servers stop parsing HTTP on a connection that asked to switch.
        let reusable = exchange.requestSent && exchange.request.upgrade == nil
        // The handler releases it before it reads on, so before the next request can start.
        spare = exchange
        return FinishedAnswer(exchange: exchange, connection: connection, connectionReusable: reusable, after: after)
    }

    /// The member's connection closed or failed before the answer was complete.
    mutating func upstreamClosed(_ connection: UpstreamConnection, memberAbandoned: Bool) -> UpstreamClosedAction {
        guard isCurrent(connection) else { return .ignore }
        if case .tunneling(let exchange) = state {
            state = .closed
            return .tunnelClosed(exchange)
        }
        guard case .exchanging(let exchange) = state else { return .ignore }
        exchange.stage = .choosingMember
        guard let member = exchange.member else {
            state = .exchanging(exchange)
            return .memberFailed(nil, countsAsFailure: false)
        }
        if exchange.responseStarted {
            state = .closed
            return .cutShort(exchange)
        }
        if exchange.isReplayable, connection.wasReused, !exchange.staleRetryUsed, !memberAbandoned {
            exchange.staleRetryUsed = true
            exchange.forceFreshConnection = true
            exchange.member = nil
            state = .exchanging(exchange)
            return .retryOnFreshConnection(member)
        }
        state = .exchanging(exchange)
        return .memberFailed(member, countsAsFailure: !connection.wasReused && !memberAbandoned)
    }

    /// `failed` did not answer a request that may go elsewhere (`onlyIfReplayable`: if it is
    /// replayable; a request that never reached a member may always go). The first retry goes to
    /// another member; the last to the local instance if a back-end failed: when a pool's
    /// back-ends vanish together, the front-end's own instance still serves.
    mutating func retryOrFail(after failed: Member, failure: RelayError, onlyIfReplayable: Bool, now: NIODeadline) -> RetryAction {
        guard let current = exchange, current.retriesLeft > 0, !onlyIfReplayable || current.isReplayable else {
            return .fail(fail(failure, now: now))
        }
        let onLocal = withExchange { exchange in
            exchange.retriesLeft -= 1
            exchange.member = nil
            exchange.stage = .choosingMember
            return exchange.retriesLeft == 0 && failed.role == .backend
        } ?? false
        return .retry(after: failed, onLocal: onLocal, failure: failure)
    }

    /// The request can't be relayed: the relay answers it itself. The connection stays open when
    /// the client allows it and no unread request body is in the way.
    mutating func fail(_ error: RelayError, now: NIODeadline) -> FailAction {
        guard case .exchanging(let exchange) = state else { return .none }
        if exchange.responseStarted {
            state = .closed
            return .cutShort(exchange)
        }
        let request = exchange.request
        let closes = (inputClosed && !hasWaitingInput) || !request.keepAlive || (!exchange.requestEnded && request.hasBody)
        let after = afterAnswer(requestEnded: exchange.requestEnded, closes: closes, now: now)
        let answer = LocalAnswer(error: error, requestID: exchange.requestID, http10: request.isHTTP10, keepAlive: after == .readOn,
                                 includeBody: request.method != .head, after: after)
        return .answer(answer, released: exchange)
    }

    /// The one transition after an answer: close, take the next request, or drop the rest of
    /// this one's body first.
    private mutating func afterAnswer(requestEnded: Bool, closes: Bool, now: NIODeadline) -> AfterAnswer {
        if closes || closesAfterAnswer {
            state = .closed
            return .close
        }
        if requestEnded {
            state = .idle(deadline: now + settings.clientIdleTimeout, headStarted: false)
        } else {
            state = .discarding(deadline: now + settings.requestBodyIdleTimeout)
        }
        return .readOn
    }
}

// MARK: Time and the connection's end

extension ClientConnectionStateMachine {
    /// The loop's timer ticked at `now`.
    mutating func timerFired(now: NIODeadline) -> TimeoutAction {
        if case .exchanging(let exchange) = state, !exchange.responseStarted, case .relaying(let connection) = exchange.stage,
           exchange.member?.isAbandoned == true
        {
            // Its member is gone: closing the connection sends the request down the path of a
            // member that failed before answering (retried if it may be, else 502).
            return .closeUpstream(connection)
        }
        guard deadline <= now else { return .none }
        switch state {
        case .idle(_, let headStarted):
            state = .closed
            return headStarted ? .answerHeadTimeout : .closeSilently
        case .discarding:
            state = .closed
            return .closeSilently
        case .exchanging(let exchange):
            return exchangeTimedOut(exchange, now: now)
        case .tunneling, .closed:
            return .none
        }
    }

    private mutating func exchangeTimedOut(_ exchange: Exchange, now: NIODeadline) -> TimeoutAction {
        let memberName = exchange.member?.name ?? "?"
        switch exchange.stage {
        case .waitingForTurn:
            let waited = Self.seconds(settings.admissionLimits?.queueTimeout)
            return .fail(fail(RelayError(.queueTimeout, "waited \(waited) for a turn; try again later"), now: now))
        case .choosingMember, .connecting:
            return .none  // The bootstrap's connect timeout ends this stage.
        case .relaying(let connection):
            if exchange.responseStarted {
                state = .closed
                return .cutShort(exchange)
            }
            if !exchange.requestSent {
                closesAfterAnswer = true
                let error = connection.isWritable
                    // We were reading: the client stopped sending its body.
                    ? RelayError(.requestTimeout, "request body stalled for \(Self.seconds(settings.requestBodyIdleTimeout))")
                    // We had stopped reading: the member stopped taking the body.
                    : RelayError(.memberTimeout, "member \(memberName) stopped taking the request body")
                return .fail(fail(error, now: now))
            }
            let error = RelayError(.memberTimeout, "member \(memberName) did not answer within \(Self.seconds(settings.responseHeadTimeout))")
            return .fail(fail(error, now: now))
        }
    }

    /// For shutdown and drains: finish the current request, then close. `true`: close now
    /// (nothing in progress).
    mutating func quiesce() -> Bool {
        closesAfterAnswer = true
        guard isIdle, !hasWaitingInput else { return false }
        state = .closed
        return true
    }

    /// The client connection is gone: whatever was in progress is to be released.
    mutating func connectionClosed() -> Exchange? {
        let previous = state
        state = .closed
        switch previous {
        case .exchanging(let exchange), .tunneling(let exchange): return exchange
        case .idle, .discarding, .closed: return nil
        }
    }

    static func seconds(_ amount: TimeAmount?) -> String {
        guard let amount else { return "?" }
        let seconds = Double(amount.nanoseconds) / 1e9
        return seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}
