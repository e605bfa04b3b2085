import Logging
import NIOCore
import NIOPosix
import ShoalCore
import Synchronization

/// The request's way in: admission, member choice, connection, streaming the body, retries.
extension ClientRelayHandler {
    func requestHead(_ clientHead: RequestReader.Head) {
        // A request id made here is passed on, so the member's logs and ours name the same request.
        let requestID = clientHead.usableRequestID ?? loop.nextRequestID()
        var upstreamHead = context?.channel.allocator.buffer(capacity: clientHead.bytes.readableBytes + 128) ?? ByteBuffer()
        ForwardedHeaders.writeRequestHead(clientHead, requestID: requestID, clientAddress: clientAddress,
                                          configuration: configuration, into: &upstreamHead)
        switch machine.requestHead(clientHead, requestID: requestID, upstreamHead: upstreamHead,
                                   startedAt: NIODeadline.now().uptimeNanoseconds,
                                   authorized: Self.presentsLeaseSecret(clientHead, configuration.leaseSecret), now: loop.now) {
        case .admit:
            guard let context else { return }
            admissionDecided(shared.admission.admit(on: context.eventLoop))
        case .fail(let action):
            carryOut(action)
        case .closeNow:
            // channelRead queues requests that arrive early; anything else is a bug we won't relay.
            closeNow()
        }
    }

    /// Whether the head carries the secret the relay requires (always, when it requires none).
    @inline(__always)
    static func presentsLeaseSecret(_ head: RequestReader.Head, _ required: LeaseSecret?) -> Bool {
        guard let required else { return true }
        guard let range = head.leaseSecret else { return false }
        return head.bytes.withUnsafeReadableBytes { required.matches(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    private func admissionDecided(_ decision: Admission.Decision) {
        switch machine.admissionDecided(decision, now: loop.now) {
        case .route:
            route(excluding: nil)
        case .wait:
            guard case .queued(let ticket) = decision else { return }
            let generation = machine.generation
            ticket.futureResult.assumeIsolated().whenComplete { [self] result in
                guard case .success = result else { return }  // Cancelled by us.
                if machine.turnCame(generation: generation) {
                    route(excluding: nil)
                } else {
                    // The client left (or timed out) just as its turn came: give the turn back.
                    shared.admission.release()
                }
            }
        case .fail(let action):
            carryOut(action)
        }
    }

    func requestBody(_ body: ByteBuffer) {
        switch machine.requestBody(body, bodyBytes: reader.bodyBytes, now: loop.now) {
        case .forward(let upstream):
            upstream.sendBody(body)
            upstreamNeedsFlush = true
        case .buffered, .drop:
            break
        case .fail(let action):
            if case .cutShort = action {
                logger.notice("request body too large mid-response; closing", metadata: ["client": "\(clientAddress)"])
            }
            carryOut(action)
        }
    }

    func requestEnd() {
        switch machine.requestEnd(now: loop.now) {
        case .none:
            break
        case .flush(let upstream):
            if upstreamNeedsFlush {
                upstreamNeedsFlush = false
                upstream.flush()
            }
        case .afterAnswer(let after):
            carryOut(after)
        }
    }

    /// Chooses a member and gets a connection to it: from the pool at once, or a new one.
    /// `failed` is a member that just failed this request, and `failure` what to answer if
    /// there is no other member to try.
    func route(excluding failed: Member?, failure: RelayError? = nil) {
        guard let member = loop.router.choose(now: loop.now, excluding: failed) else {
            carryOut(machine.fail(failure ?? RelayError(.noMember, "no member to send the request to"), now: loop.now))
            return
        }
        send(to: member)
    }

    /// Sends the request to `member`, already counted against it.
    private func send(to member: Member) {
        if machine.memberChosen(member) == .pooledOrNew, let connection = loop.pool.checkout(member) {
            attach(connection)
            return
        }
        machine.connecting()
        let generation = machine.generation
        loop.pool.connect(to: member) { [self] result in
            connectCompleted(result, member: member, generation: generation)
        }
    }

    private func connectCompleted(_ result: Result<UpstreamConnection, any Error>, member: Member, generation: Int) {
        guard machine.isAwaitingConnection(generation: generation) else {
            // The request is gone; a fresh connection is still worth keeping.
            if case .success(let connection) = result { loop.pool.checkin(connection, now: loop.now) }
            return
        }
        switch result {
        case .success(let connection):
            attach(connection)
        case .failure(let error):
            let timedOut: Bool
            if case ChannelError.connectTimeout = error { timedOut = true } else { timedOut = false }
            let reason = timedOut ? "connect timed out" : "connect failed: \(Self.describe(error))"
            memberFailed(member, reason: reason)
            let failure = RelayError(timedOut ? .memberTimeout : .memberUnreachable, "member \(member.name) is unreachable (\(reason))")
            // Nothing reached the member, so any request may go elsewhere, body or not.
            carryOut(machine.retryOrFail(after: member, failure: failure, onlyIfReplayable: false, now: loop.now))
        }
    }

    /// Starts the request on `connection`: head, whatever body arrived meanwhile, and the end if it came.
    private func attach(_ connection: UpstreamConnection) {
        guard let context, let plan = machine.attached(connection, now: loop.now) else { return }
        connection.exchange = self
        connection.requestsStarted += 1
        if clientWritable { connection.resumeReads() } else { connection.pauseReads() }
        if plan.sendContinue {
            context.writeAndFlush(wrapOutboundOut(LocalResponse.continue(http10: plan.http10)), promise: nil)
        }
        connection.sendHead(plan.head, toHEAD: plan.toHEAD, dechunkResponse: plan.dechunkResponse, upgrade: plan.upgrade)
        for body in plan.buffered { connection.sendBody(body) }
        connection.flush()
        upstreamNeedsFlush = false
        resumeReadsIfPossible()
    }

    /// The member's connection closed or failed before the answer was complete.
    func upstreamClosed(_ connection: UpstreamConnection, error: (any Error)?) {
        let memberAbandoned = connection.member.isAbandoned
        switch machine.upstreamClosed(connection, memberAbandoned: memberAbandoned) {
        case .ignore:
            return
        case .tunnelClosed(let exchange):
            release(exchange)
            closeGracefully()
        case .cutShort(let exchange):
            var metadata = requestMetadata(exchange)
            metadata["reason"] = "\(Self.closeReason(error, memberAbandoned: memberAbandoned))"
            logger.warning("member closed the connection mid-response; closing the client connection", metadata: metadata)
            cutShort(exchange)
        case .retryOnFreshConnection(let member):
            // Most likely the member closed the idle connection just as we reused it.
            member.endRequest()
            route(excluding: nil)
        case .memberFailed(let member, let countsAsFailure):
            let reason = Self.closeReason(error, memberAbandoned: memberAbandoned)
            guard let member else {
                carryOut(machine.fail(RelayError(.memberUnreachable, "the member closed the connection before answering (\(reason))"), now: loop.now))
                return
            }
            if countsAsFailure { memberFailed(member, reason: reason) }
            let failure = RelayError(.memberUnreachable, "member \(member.name) closed the connection before answering (\(reason))")
            carryOut(machine.retryOrFail(after: member, failure: failure, onlyIfReplayable: true, now: loop.now))
        }
    }

    private static func closeReason(_ error: (any Error)?, memberAbandoned: Bool) -> String {
        memberAbandoned ? "it was removed as gone" : error.map { describe($0) } ?? "connection closed"
    }

    func carryOut(_ action: ClientConnectionStateMachine.RetryAction) {
        switch action {
        case .retry(let failed, let onLocal, let failure):
            let metadata = machine.exchange.map { requestMetadata($0, member: failed) } ?? [:]
            failed.endRequest()
            shared.statistics.retryCount.add(1, ordering: .relaxed)
            let lastResort = onLocal ? loop.router.chooseLocal() : nil
            var logMetadata = metadata
            logMetadata["error"] = "\(failure.code)"
            logger.notice(lastResort == nil ? "retrying on another member" : "retrying on the local instance", metadata: logMetadata)
            if let lastResort { return send(to: lastResort) }
            route(excluding: failed, failure: failure)
        case .fail(let action):
            carryOut(action)
        }
    }

    func memberFailed(_ member: Member, reason: String) {
        if member.isHealthy(at: loop.now) {
            var metadata = machine.exchange.map { requestMetadata($0, member: member) } ?? ["client": "\(clientAddress)"]
            metadata["address"] = "\(member.address)"
            metadata["reason"] = "\(reason)"
            logger.warning("member unreachable; out of rotation for a while", metadata: metadata)
        }
        member.markFailed(now: loop.now, backoff: configuration.unhealthyBackoff, reason: reason)
    }

    /// The request could not be read (malformed, over a limit, cut short): answer and close.
    func requestUnreadable(_ relayError: RelayError) {
        logger.notice("bad request", metadata: ["client": "\(clientAddress)", "error": "\(relayError)"])
        switch machine.requestUnreadable() {
        case .cutShort(let exchange):
            if let exchange { release(exchange) }
            closeNow()
        case .answerAndClose(let exchange):
            if let exchange { release(exchange) }
            shared.statistics.countLocalResponse(relayError.code)
            closeGracefully(writing: LocalResponse.raw(for: relayError, allocator: context?.channel.allocator ?? ByteBufferAllocator()))
        }
    }

    // MARK: Book-keeping

    /// For log lines about a request: its id, method and target, the client, and the member
    /// (with its lease, for a back-end). Built only when a line is written.
    func requestMetadata(_ exchange: Exchange, member: Member? = nil) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["request": "\(exchange.requestID)", "client": "\(clientAddress)"]
        metadata["method"] = "\(exchange.request.methodName)"
        metadata["uri"] = "\(exchange.request.target)"
        if let member = member ?? exchange.member {
            metadata["member"] = "\(member.name)"
            if member.role == .backend { metadata["lease"] = "\(member.name)" }
        }
        return metadata
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        if let error = error as? NIOConnectionError {
            return error.connectionErrors.first.map { "\($0.error)" } ?? "\(error)"
        }
        return "\(error)"
    }
}
