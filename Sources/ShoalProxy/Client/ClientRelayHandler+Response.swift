import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The answer's way out: the member's response relayed to the client, or the relay's own.
extension ClientRelayHandler {
    func upstreamResponseHead(_ head: ResponseReader.Head, from connection: UpstreamConnection) {
        guard connection === upstream, !responseStarted, let context else { return }
        if let member, retryAfterWorkerRefusal(head, from: connection, member: member) { return }
        responseStarted = true
        responseStatus = head.status
        let http10 = clientIsHTTP10
        if !clientKeepAlive || clientSentItsLast || shared.admission.isDraining
            || !ForwardedHeaders.responseCanBeFramed(head.framing, http10: http10)
        {
            // A draining relay closes connections as their answers finish, so a front-end's pool
            // lets go of a worker that is about to stop.
            closeAfterResponse = true
        }
        let memberHeader = configuration.memberHeader.flatMap { name in member.map { (name: name, value: $0.name) } }
        var out = context.channel.allocator.buffer(capacity: head.bytes.readableBytes + 64)
        head.write(into: &out, http10: http10, keepAlive: !closeAfterResponse, passesChunks: !http10,
                   via: configuration.via, memberHeader: memberHeader)
        context.write(wrapOutboundOut(out), promise: nil)
        clientNeedsFlush = true
        deadline = loop.now + configuration.responseBodyIdleTimeout
    }

    /// A back-end's worker answered with its own error (`X-Shoal-Error`: its service died, it
    /// is draining or full) — nothing was served. An idempotent request goes to another member
    /// instead, as if the worker had been unreachable; the worker sits out a while.
    private func retryAfterWorkerRefusal(_ head: ResponseReader.Head, from connection: UpstreamConnection, member: Member) -> Bool {
        // 502, 503, 504 first: every other answer leaves after one integer comparison.
        guard (502...504).contains(head.status), member.role == .backend, isReplayable, retriesLeft > 0,
              let code = head.shoalError else { return false }
        upstream = nil
        connection.exchange = nil
        connection.close()
        memberFailed(member, reason: "its worker answered \(head.status) \(code)")
        retryOrFail(after: member, failure: RelayError(.memberUnreachable, "member \(member.name) answered \(head.status) (\(code))"))
        return true
    }

    func upstreamResponseBody(_ body: ByteBuffer, from connection: UpstreamConnection) {
        guard connection === upstream, let context else { return }
        // Backpressure on the member's side follows from channelWritabilityChanged, which fires
        // inside this write when the client's buffer crosses its high-water mark.
        context.write(wrapOutboundOut(body), promise: nil)
        clientNeedsFlush = true
        deadline = loop.now + configuration.responseBodyIdleTimeout
    }

    func upstreamReadComplete(from connection: UpstreamConnection) {
        guard connection === upstream, clientNeedsFlush else { return }
        clientNeedsFlush = false
        context?.flush()
    }

    func upstreamWritabilityChanged(from connection: UpstreamConnection) {
        guard connection === upstream else { return }
        resumeReadsIfPossible()
    }

    func upstreamResponseEnd(from connection: UpstreamConnection) {
        guard connection === upstream, let context else { return }
        upstream = nil
        member?.recordResponse(status: responseStatus, nanoseconds: NIODeadline.now().uptimeNanoseconds &- requestStartedAt)
        if requestSent {
            loop.pool.checkin(connection, now: loop.now)
        } else {
            // The member answered before taking the whole body: the connection is mid-request.
            connection.exchange = nil
            connection.close()
        }
        finishRequest()
        clientNeedsFlush = false
        let close = closeAfterResponse || clientSentItsLast
        if close {
            phase = .closed
        } else if requestEnded {
            phase = .idle
            sawRequestBytes = false
            upstreamHead = nil
            request = nil
            deadline = loop.now + configuration.clientIdleTimeout
        } else {
            phase = .discarding
            deadline = loop.now + configuration.requestBodyIdleTimeout
        }
        // Flushed only now, after the request is uncounted: whoever has the answer sees it done.
        context.flush()
        if close {
            closeGracefully()
        } else {
            processInput()
        }
    }

    /// Answers the current request with the relay's own error response. The connection stays
    /// open when the client allows it and no unread request body is in the way.
    func fail(_ error: RelayError) {
        guard let context, phase != .closed, !responseStarted else {
            if responseStarted { closeNow() }
            return
        }
        var metadata = requestMetadata(member: member)
        metadata["code"] = "\(error.code)"
        abandonExchange()
        shared.statistics.countLocalResponse(error.code)
        if error.status.code >= 500 {
            logger.warning("\(error)", metadata: metadata)
        } else {
            logger.notice("\(error)", metadata: metadata)
        }

        responseStarted = true
        let close = closeAfterResponse || clientSentItsLast || !clientKeepAlive
            || (!requestEnded && requestHasBody)
        let response = LocalResponse.bytes(for: error, requestID: requestID, http10: clientIsHTTP10, keepAlive: !close,
                                           includeBody: !requestIsHEAD, allocator: context.channel.allocator)
        if close {
            phase = .closed
        } else if requestEnded {
            phase = .idle
            sawRequestBytes = false
            deadline = loop.now + configuration.clientIdleTimeout
        } else {
            phase = .discarding
            deadline = loop.now + configuration.requestBodyIdleTimeout
        }
        upstreamHead = nil
        context.writeAndFlush(wrapOutboundOut(response), promise: nil)
        if close {
            closeGracefully()
        } else {
            processInput()
        }
    }
}
