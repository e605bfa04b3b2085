import Logging
import NIOCore
import NIOHTTP1

/// The answer's way out: the member's response relayed to the client, or the relay's own.
extension ClientRelayHandler {
    func upstreamResponseHead(_ head: ResponseReader.Head, from connection: UpstreamConnection) {
        guard let context else { return }
        switch machine.responseHead(head, from: connection, draining: shared.admission.isDraining, now: loop.now) {
        case .ignore:
            return
        case .workerRefused(let connection, let member, let code):
            // A back-end's worker answered with its own error: nothing was served, so an
            // idempotent request goes to another member instead; the worker sits out a while.
            connection.exchange = nil
            connection.close()
            memberFailed(member, reason: "its worker answered \(head.status) \(code)")
            let failure = RelayError(.memberUnreachable, "member \(member.name) answered \(head.status) (\(code))")
            carryOut(machine.retryOrFail(after: member, failure: failure, onlyIfReplayable: true, now: loop.now))
        case .relay(let http10, let keepAlive, let member):
            let memberHeader = configuration.memberHeader.flatMap { name in member.map { (name: name, value: $0.name) } }
            var out = context.channel.allocator.buffer(capacity: head.bytes.readableBytes + 64)
            head.write(into: &out, http10: http10, keepAlive: keepAlive, passesChunks: !http10,
                       via: configuration.via, memberHeader: memberHeader)
            context.write(wrapOutboundOut(out), promise: nil)
            clientNeedsFlush = true
        case .openTunnel(let member, let clientHalfClosed):
            member?.recordResponse(status: head.status, nanoseconds: NIODeadline.now().uptimeNanoseconds &- (machine.exchange?.startedAt ?? 0))
            var out = context.channel.allocator.buffer(capacity: head.bytes.readableBytes + 64)
            head.write(into: &out, http10: false, keepAlive: false, passesChunks: true, via: configuration.via, memberHeader: nil)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
            // Whatever the client sent after its request (it may not wait for the 101) goes on first.
            if let waiting = input {
                input = nil
                connection.sendBody(waiting)
                connection.flush()
            }
            if clientHalfClosed {
                connection.closeOutput()
                return
            }
            resumeReadsIfPossible()
        }
    }

    func upstreamResponseBody(_ body: ByteBuffer, from connection: UpstreamConnection) {
        guard let context, machine.responseBody(from: connection, now: loop.now) else { return }
        // Backpressure on the member's side follows from channelWritabilityChanged, which fires
        // inside this write when the client's buffer crosses its high-water mark.
        context.write(wrapOutboundOut(body), promise: nil)
        clientNeedsFlush = true
    }

    func upstreamReadComplete(from connection: UpstreamConnection) {
        guard clientNeedsFlush, machine.isCurrent(connection) else { return }
        clientNeedsFlush = false
        context?.flush()
    }

    func upstreamWritabilityChanged(from connection: UpstreamConnection) {
        guard machine.isCurrent(connection) else { return }
        resumeReadsIfPossible()
    }

    func upstreamResponseEnd(from connection: UpstreamConnection) {
        guard let context, let finished = machine.responseEnd(from: connection, now: loop.now) else { return }
        let exchange = finished.exchange
        exchange.member?.recordResponse(status: exchange.responseStatus,
                                        nanoseconds: NIODeadline.now().uptimeNanoseconds &- exchange.startedAt)
        if finished.connectionReusable {
            loop.pool.checkin(connection, now: loop.now)
        } else {
            // The member answered before taking the whole body: the connection is mid-request.
            connection.exchange = nil
            connection.close()
        }
        release(exchange)
        clientNeedsFlush = false
        // Flushed only now, after the request is uncounted: whoever has the answer sees it done.
        context.flush()
        carryOut(finished.after)
    }

    /// Carries out how a request that can't be relayed ends: the relay's own answer (the
    /// connection stays open when the machine says so), or a cut-short one.
    func carryOut(_ action: ClientConnectionStateMachine.FailAction) {
        switch action {
        case .none:
            return
        case .cutShort(let exchange):
            cutShort(exchange)
        case .answer(let answer, let exchange):
            guard let context else { return }
            var metadata = requestMetadata(exchange)
            metadata["code"] = "\(answer.error.code)"
            release(exchange)
            shared.statistics.countLocalResponse(answer.error.code)
            if answer.error.status.code >= 500 {
                logger.warning("\(answer.error)", metadata: metadata)
            } else {
                logger.notice("\(answer.error)", metadata: metadata)
            }
            let response = LocalResponse.bytes(for: answer.error, requestID: answer.requestID, http10: answer.http10,
                                               keepAlive: answer.keepAlive, includeBody: answer.includeBody,
                                               allocator: context.channel.allocator)
            context.writeAndFlush(wrapOutboundOut(response), promise: nil)
            carryOut(answer.after)
        }
    }
}
