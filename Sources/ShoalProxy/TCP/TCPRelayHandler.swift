import Logging
import NIOCore
import NIOPosix
import Synchronization

/// One client connection of a relay in TCP mode (the manifest's `protocol: tcp`): a member is
/// chosen for the connection, and bytes go both ways as they come, with backpressure, until
/// either side closes. The connection is what is counted (admitted, and in flight on its
/// member), so a member's load is its connections in progress, and a drain waits for them.
final class TCPRelayHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        /// Not admitted yet: the connection waits in the admission queue until `deadline`
        /// (the queue timeout HTTP requests have), then is closed.
        case waitingForTurn(EventLoopPromise<Void>, deadline: NIODeadline)
        /// Admitted; a connection to `member` is being opened.
        case connecting(Member)
        case relaying(Member, TCPMemberHandler)
        case closed
    }

    private let loop: RelayLoop
    private var context: ChannelHandlerContext?
    private var state: State?
    private var holdsAdmission = false
    /// Client bytes that arrived before the member connection was up.
    private var early: [ByteBuffer] = []
    private var readPending = false
    private var memberNeedsFlush = false
    private var retriesLeft = 1
    var registryIndex = -1

    init(loop: RelayLoop) {
        self.loop = loop
    }

    private var logger: Logger { loop.shared.logger }

    private var member: TCPMemberHandler? {
        if case .relaying(_, let member) = state { return member }
        return nil
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        loop.register(self)
        if context.channel.isActive { admit() }
    }

    func channelActive(context: ChannelHandlerContext) {
        if state == nil { admit() }
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        end()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        if let member {
            member.write(bytes)
            memberNeedsFlush = true
        } else {
            early.append(bytes)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if memberNeedsFlush {
            memberNeedsFlush = false
            member?.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        member?.clientWritabilityChanged(context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            // Passed on: the member sees the client's end of input and may still answer.
            if let member { member.closeOutput() } else { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        // Held while there is no member connection, or it can't take more.
        if let member, member.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func resumeReads() {
        guard readPending, let context, let member, member.isWritable else { return }
        readPending = false
        context.read()
    }

    // MARK: The connection's way in

    private func admit() {
        guard let context else { return }
        switch loop.shared.admission.admit(on: context.eventLoop) {
        case .admitted:
            holdsAdmission = true
            route(excluding: nil)
        case .queued(let ticket):
            let waitLimit = loop.shared.admission.limits?.queueTimeout ?? loop.shared.configuration.responseHeadTimeout
            state = .waitingForTurn(ticket, deadline: loop.now + waitLimit)
            ticket.futureResult.assumeIsolated().whenComplete { [self] result in
                guard case .success = result else { return }  // Cancelled by us.
                guard case .waitingForTurn = state else {
                    loop.shared.admission.release()  // Closed just as its turn came.
                    return
                }
                holdsAdmission = true
                route(excluding: nil)
            }
        case .queueFull, .draining:
            // Nothing to answer in a protocol the relay does not know: the close says it.
            state = .closed
            context.close(promise: nil)
        }
    }

    private func route(excluding failed: Member?) {
        guard let context, let chosen = loop.router.choose(now: loop.now, excluding: failed) else {
            context?.close(promise: nil)
            return
        }
        state = .connecting(chosen)
        loop.shared.statistics.upstreamConnections.add(1, ordering: .relaxed)
        ClientBootstrap(group: context.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connectTimeout(loop.shared.configuration.connectTimeout)
            .connect(to: chosen.address)
            .assumeIsolated()
            .whenComplete { [self] result in connected(result, to: chosen) }
    }

    private func connected(_ result: Result<any Channel, any Error>, to chosen: Member) {
        guard case .connecting(let current) = state, current === chosen else {
            if case .success(let channel) = result { channel.close(promise: nil) }
            chosen.endRequest()  // The client left meanwhile.
            return
        }
        switch result {
        case .success(let channel):
            let member = TCPMemberHandler(client: self, clientWritable: context?.channel.isWritable ?? true)
            do {
                try channel.pipeline.syncOperations.addHandler(member)
            } catch {
                channel.close(promise: nil)
                return failed(chosen, reason: "\(error)")
            }
            state = .relaying(chosen, member)
            if let preamble = chosen.secretPreamble { member.write(preamble) }
            for bytes in early { member.write(bytes) }
            early = []
            member.flush()
            resumeReads()
        case .failure(let error):
            failed(chosen, reason: ClientRelayHandler.describe(error))
        }
    }

    /// Nothing reached `chosen`: another member gets the connection once; then it closes.
    private func failed(_ chosen: Member, reason: String) {
        chosen.markFailed(now: loop.now, backoff: loop.shared.configuration.unhealthyBackoff, reason: reason)
        chosen.endRequest()
        logger.warning("member unreachable; out of rotation for a while", metadata: ["member": "\(chosen.name)", "reason": "\(reason)"])
        state = nil
        guard retriesLeft > 0 else {
            context?.close(promise: nil)
            return
        }
        retriesLeft -= 1
        route(excluding: chosen)
    }

    // MARK: The member's side

    func memberRead(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    func memberReadComplete() {
        context?.flush()
    }

    func memberInputClosed() {
        // The member is done sending: so is the client's side, once what came is out.
        context?.flush()
        context?.close(mode: .output, promise: nil)
    }

    func memberClosed() {
        context?.flush()
        context?.close(promise: nil)
    }

    // MARK: The end

    /// The client connection is gone: close the member's, uncount everything, once.
    private func end() {
        switch state {
        case .waitingForTurn(let ticket, _):
            _ = loop.shared.admission.cancel(ticket)
        case .connecting(let member):
            _ = member  // Uncounted by `connected`, which sees the state gone.
            state = .closed
            releaseAdmission()
            loop.unregister(self)
            return
        case .relaying(let chosen, let member):
            member.close()
            chosen.endRequest()
        case .closed, nil:
            break
        }
        state = .closed
        releaseAdmission()
        loop.unregister(self)
    }

    private func releaseAdmission() {
        if holdsAdmission {
            holdsAdmission = false
            loop.shared.admission.release()
        }
    }
}

extension TCPRelayHandler: RelayedConnection {
    var isTunnel: Bool { true }

    /// Only a wait for a turn has a deadline: once relaying, a TCP connection ends when either
    /// side closes it. Past the deadline the client is closed unanswered (its protocol is not
    /// the relay's to speak), as when the queue is full.
    func checkDeadline(now: NIODeadline) {
        guard case .waitingForTurn(let ticket, let deadline) = state, now >= deadline else { return }
        // Its turn may have come in the same instant: then it is admitted and relayed after all.
        guard loop.shared.admission.cancel(ticket) else { return }
        state = .closed
        logger.info("a TCP connection waited too long for a turn; closed", metadata: [
            "client": "\(context?.channel.remoteAddress?.description ?? "?")",
        ])
        context?.close(promise: nil)
    }

    func quiesce() -> EventLoopFuture<Void>? {
        context?.channel.closeFuture  // Open connections finish; a drain stops new ones.
    }

    func closeNow() {
        context?.close(promise: nil)
    }
}

/// The member's side of a TCP-mode connection: its bytes go to the client as they come; its
/// reads are held while the client can't take more.
final class TCPMemberHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private weak var client: TCPRelayHandler?
    private var context: ChannelHandlerContext?
    private var clientWritable: Bool
    private var readPending = false
    private(set) var isWritable = true

    init(client: TCPRelayHandler, clientWritable: Bool) {
        self.client = client
        self.clientWritable = clientWritable
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        isWritable = context.channel.isWritable
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func write(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func close() {
        context?.close(promise: nil)
    }

    func closeOutput() {
        context?.flush()
        context?.close(mode: .output, promise: nil)
    }

    func clientWritabilityChanged(_ writable: Bool) {
        clientWritable = writable
        if writable, readPending, let context {
            readPending = false
            context.read()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        client?.memberRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        client?.memberReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        if isWritable { client?.resumeReads() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            client?.memberInputClosed()
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        client?.memberClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if clientWritable {
            context.read()
        } else {
            readPending = true
        }
    }
}
