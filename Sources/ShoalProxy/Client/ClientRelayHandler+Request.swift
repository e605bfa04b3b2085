import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The request's way in: admission, member choice, connection, streaming the body, retries.
extension ClientRelayHandler {
    func requestHead(_ clientHead: RequestReader.Head) {
        guard phase == .idle else {
            // channelRead queues requests that arrive early; anything else is a bug we won't relay.
            closeNow()
            return
        }
        generation &+= 1
        requestStartedAt = NIODeadline.now().uptimeNanoseconds
        sawRequestBytes = false
        request = clientHead
        expectsContinue = clientHead.expectsContinue
        requestEnded = false
        requestSent = false
        responseStarted = false
        retriesLeft = 2
        staleRetryUsed = false
        forceFreshConnection = false

        // A request id made here is passed on, so the member's logs and ours name the same request.
        requestID = clientHead.usableRequestID ?? loop.nextRequestID()
        var upstreamHead = context?.channel.allocator.buffer(capacity: clientHead.bytes.readableBytes + 128) ?? ByteBuffer()
        ForwardedHeaders.writeRequestHead(clientHead, requestID: requestID, clientAddress: clientAddress,
                                          configuration: configuration, into: &upstreamHead)
        self.upstreamHead = upstreamHead
        isReplayable = configuration.retryIdempotentRequests && !clientHead.hasBody && clientHead.method != .other

        if let length = clientHead.contentLength, length > configuration.maxRequestBodyBytes {
            fail(RelayError(.bodyTooLarge, "request body of \(length) bytes exceeds the limit of \(configuration.maxRequestBodyBytes)"))
            return
        }
        guard let context else { return }
        switch shared.admission.admit(on: context.eventLoop) {
        case .admitted:
            holdsAdmission = true
            route(excluding: nil)
        case .queued(let ticket):
            phase = .awaitingAdmission
            admissionTicket = ticket
            deadline = loop.now + (shared.admission.limits?.queueTimeout ?? configuration.responseHeadTimeout)
            let generation = self.generation
            ticket.futureResult.assumeIsolated().whenComplete { [self] result in
                guard case .success = result else { return }  // Cancelled by us.
                admissionGranted(generation: generation)
            }
        case .queueFull:
            let limits = shared.admission.limits
            fail(RelayError(.queueFull, "\(limits?.maxConcurrent ?? 0) requests running and \(limits?.maxQueued ?? 0) waiting; try again later"))
        case .draining:
            closeAfterResponse = true
            fail(RelayError(.draining, "this relay is draining and takes no new requests"))
        }
    }

    func requestBody(_ body: ByteBuffer) {
        if reader.bodyBytes > configuration.maxRequestBodyBytes {
            requestBodyTooLarge()
            return
        }
        deadline = loop.now + configuration.requestBodyIdleTimeout
        switch phase {
        case .exchanging:
            upstream?.sendBody(body)
            upstreamNeedsFlush = true
        case .awaitingAdmission, .connecting:
            buffered.append(body)
        case .discarding, .idle, .closed:
            break
        }
    }

    func requestEnd() {
        requestEnded = true
        switch phase {
        case .exchanging:
            guard let upstream else { return }
            if upstreamNeedsFlush {
                upstreamNeedsFlush = false
                upstream.flush()
            }
            requestSent = true
            if !responseStarted { deadline = loop.now + configuration.responseHeadTimeout }
        case .awaitingAdmission, .connecting:
            break  // `attach` sends what is buffered, and knows the request ended.
        case .discarding:
            becomeIdle()
        case .idle, .closed:
            break
        }
    }

    private func admissionGranted(generation: Int) {
        guard generation == self.generation, phase == .awaitingAdmission else {
            // The client left (or timed out) just as its turn came: give the turn back.
            shared.admission.release()
            return
        }
        admissionTicket = nil
        holdsAdmission = true
        route(excluding: nil)
    }

    /// Chooses a member and gets a connection to it: from the pool at once, or a new one.
    /// `failed` is a member that just failed this request, and `failure` what to answer if
    /// there is no other member to try.
    func route(excluding failed: Member?, failure: RelayError? = nil) {
        guard let member = loop.router.choose(now: loop.now, excluding: failed) else {
            fail(failure ?? RelayError(.noMember, "no member to send the request to"))
            return
        }
        send(to: member)
    }

    /// Sends the request to `member`, already counted against it.
    private func send(to member: Member) {
        self.member = member
        if !forceFreshConnection, let connection = loop.pool.checkout(member) {
            attach(connection)
            return
        }
        forceFreshConnection = false
        phase = .connecting
        deadline = .distantFuture  // The bootstrap's connect timeout covers this phase.
        let generation = self.generation
        loop.pool.connect(to: member) { [self] result in
            connectCompleted(result, member: member, generation: generation)
        }
    }

    private func connectCompleted(_ result: Result<UpstreamConnection, any Error>, member: Member, generation: Int) {
        guard generation == self.generation, phase == .connecting else {
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
            retryOrFail(after: member, failure: failure)
        }
    }

    /// Starts the request on `connection`: head, whatever body arrived meanwhile, and the end if it came.
    private func attach(_ connection: UpstreamConnection) {
        guard let head = upstreamHead, let context else { return }
        upstream = connection
        connection.exchange = self
        connection.requestsStarted += 1
        if clientWritable { connection.resumeReads() } else { connection.pauseReads() }
        phase = .exchanging
        requestSent = false
        if expectsContinue, !requestEnded {
            context.writeAndFlush(wrapOutboundOut(LocalResponse.continue(http10: clientIsHTTP10)), promise: nil)
            expectsContinue = false
        }
        connection.sendHead(head, toHEAD: requestIsHEAD, dechunkResponse: clientIsHTTP10)
        // The body goes on as it came (chunk framing included), so its end needs no bytes of its own.
        while let body = buffered.popFirst() { connection.sendBody(body) }
        requestSent = requestEnded
        connection.flush()
        upstreamNeedsFlush = false
        deadline = loop.now + (requestSent ? configuration.responseHeadTimeout : configuration.requestBodyIdleTimeout)
        resumeReadsIfPossible()
    }

    /// The member's connection closed or failed before the answer was complete.
    func upstreamClosed(_ connection: UpstreamConnection, error: (any Error)?) {
        guard connection === upstream else { return }
        upstream = nil
        let reason = member?.isAbandoned == true ? "it was removed as gone"
            : error.map { Self.describe($0) } ?? "connection closed"
        guard let member else {
            fail(RelayError(.memberUnreachable, "the member closed the connection before answering (\(reason))"))
            return
        }
        if responseStarted {
            // Part of the answer is out; the only honest signal left is closing the connection.
            var metadata = requestMetadata(member: member)
            metadata["reason"] = "\(reason)"
            logger.warning("member closed the connection mid-response; closing the client connection", metadata: metadata)
            phase = .closed
            abandonExchange()
            context?.flush()  // What was relayed goes out; the close then tells the answer is cut short.
            closeNow()
            return
        }
        if isReplayable, connection.wasReused, !staleRetryUsed, !member.isAbandoned {
            // Most likely the member closed the idle connection just as we reused it.
            staleRetryUsed = true
            forceFreshConnection = true
            endMemberRequest()
            route(excluding: nil)
            return
        }
        if !connection.wasReused, !member.isAbandoned { memberFailed(member, reason: reason) }
        let failure = RelayError(.memberUnreachable, "member \(member.name) closed the connection before answering (\(reason))")
        guard isReplayable else { return fail(failure) }
        retryOrFail(after: member, failure: failure)
    }

    /// `failed` did not answer a request that may go elsewhere. The first retry goes to another
    /// member; the last to the local instance, if a back-end failed and the front-end has one:
    /// when a pool's back-ends vanish together (their host or the pool's pvmd died), the front-end's
    /// own instance still serves, so no such request becomes an error.
    func retryOrFail(after failed: Member, failure: RelayError) {
        guard retriesLeft > 0 else { return fail(failure) }
        retriesLeft -= 1
        endMemberRequest()
        shared.statistics.retryCount.add(1, ordering: .relaxed)
        let lastResort = retriesLeft == 0 && failed.role == .backend ? loop.router.chooseLocal() : nil
        var metadata = requestMetadata(member: failed)
        metadata["error"] = "\(failure.code)"
        logger.notice(lastResort == nil ? "retrying on another member" : "retrying on the local instance", metadata: metadata)
        if let lastResort { return send(to: lastResort) }
        route(excluding: failed, failure: failure)
    }

    func memberFailed(_ member: Member, reason: String) {
        if member.isHealthy(at: loop.now) {
            var metadata = requestMetadata(member: member)
            metadata["address"] = "\(member.address)"
            metadata["reason"] = "\(reason)"
            logger.warning("member unreachable; out of rotation for a while", metadata: metadata)
        }
        member.markFailed(now: loop.now, backoff: configuration.unhealthyBackoff, reason: reason)
    }

    private func requestBodyTooLarge() {
        let error = RelayError(.bodyTooLarge, "request body exceeds the limit of \(configuration.maxRequestBodyBytes) bytes")
        if responseStarted {
            logger.notice("request body too large mid-response; closing", metadata: ["client": "\(clientAddress)"])
            phase = .closed
            abandonExchange()
            closeNow()
        } else {
            closeAfterResponse = true
            fail(error)
        }
    }

    /// The request could not be read (malformed, over a limit, cut short): answer and close.
    func requestUnparsable(_ relayError: RelayError) {
        logger.notice("bad request", metadata: ["client": "\(clientAddress)", "error": "\(relayError)"])
        let wasAnswering = responseStarted && phase != .idle
        phase = .closed
        abandonExchange()
        if wasAnswering {
            closeNow()
        } else {
            shared.statistics.countLocalResponse(relayError.code)
            closeGracefully(writing: LocalResponse.raw(for: relayError, allocator: context?.channel.allocator ?? ByteBufferAllocator()))
        }
    }

    // MARK: Book-keeping

    /// For log lines about the current request: its id, method and target, the client, and the
    /// member (with its lease, for a back-end). Built only when a line is written.
    func requestMetadata(member: Member?) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["request": "\(requestID)", "client": "\(clientAddress)"]
        if let request {
            metadata["method"] = "\(request.methodName)"
            metadata["uri"] = "\(request.target)"
        }
        if let member {
            metadata["member"] = "\(member.name)"
            if member.role == .backend { metadata["lease"] = "\(member.name)" }
        }
        return metadata
    }

    func endMemberRequest() {
        if let member {
            self.member = nil
            member.endRequest()
        }
    }

    /// The request is over (answered or abandoned): uncount it everywhere.
    func finishRequest() {
        endMemberRequest()
        if holdsAdmission {
            holdsAdmission = false
            shared.admission.release()
        }
    }

    /// Drops the request in progress: the member connection (closed, not reusable mid-exchange),
    /// buffered parts, counts, and any queue place.
    func abandonExchange() {
        generation &+= 1
        if let connection = upstream {
            upstream = nil
            connection.exchange = nil
            connection.close()
        }
        buffered.removeAll()
        finishRequest()
        if let ticket = admissionTicket {
            admissionTicket = nil
            // If cancelling fails the turn was granted meanwhile; the grant callback sees the
            // stale generation and releases it.
            _ = shared.admission.cancel(ticket)
        }
    }

    func becomeIdle() {
        phase = .idle
        sawRequestBytes = false
        deadline = loop.now + configuration.clientIdleTimeout
        upstreamHead = nil
        request = nil
        if closeAfterResponse {
            closeGracefully()
            return
        }
        processInput()
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        if let error = error as? NIOConnectionError {
            return error.connectionErrors.first.map { "\($0.error)" } ?? "\(error)"
        }
        return "\(error)"
    }
}
