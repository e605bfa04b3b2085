import Logging
import NIOCore

/// One client connection of the relay. Its state and every decision about it are in
/// ``ClientConnectionStateMachine``; this handler feeds it the channel's events and carries out
/// what it returns: admission, member choice, pooled upstream connections, writes and closes.
///
/// Requests on one connection are strictly one after another: pipelined ones wait, unread, in
/// ``input`` (see `+Pipelining`). The member's channel lives on the same event loop, so
/// relaying is direct method calls between this handler and ``UpstreamConnection``.
///
/// Backpressure, both ways, by holding back `read()`: this handler swallows the client
/// channel's reads while the machine says so (the member's channel is not writable, there is no
/// member channel yet, or a pipelined request waits), and ``UpstreamConnection`` swallows the
/// member channel's reads while the client's channel is not writable.
///
/// The request's way in is in `+Request`, the answer's in `+Response`, the timer in `+Deadlines`.
final class ClientRelayHandler: ChannelDuplexHandler {
    /// Requests come in as bytes, read by a ``RequestReader``; answers go out as bytes: the
    /// member's head edited (``ResponseReader``), its body as it came, or the relay's own
    /// (``LocalResponse``). No HTTP codec on either side.
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let loop: RelayLoop
    let shared: RelayShared
    /// A copy per connection: reading a field through `shared` each time would copy the whole
    /// struct (and retain its strings) on every access.
    let configuration: RelayConfiguration
    let connectionGuard: ConnectionGuard
    /// The client's address, for `X-Forwarded-For` and logs: made once per connection.
    let clientAddress: String
    var context: ChannelHandlerContext?
    /// This handler's slot in the loop's connection list (for deadline checks).
    var registryIndex = -1

    /// Unchecked: the machine's events are pure (they call nothing back), so no access to it can
    /// overlap another; the runtime's exclusivity checks on it cost 4 % of a 1 KB request's CPU.
    @exclusivity(unchecked) var machine: ClientConnectionStateMachine
    /// The client's bytes not read yet: a pipelined request waiting for the current one's answer.
    @exclusivity(unchecked) var input: ByteBuffer? {
        didSet { machine.hasWaitingInput = (input?.readableBytes ?? 0) > 0 }
    }
    @exclusivity(unchecked) var reader: RequestReader

    // Plumbing only: batching of flushes and reads.
    /// A `read()` held back for backpressure.
    var readPending = false
    var clientWritable = true
    /// ``processInput()`` is running (a request answered at once must not recurse into it).
    var isProcessingInput = false
    var upstreamNeedsFlush = false
    var clientNeedsFlush = false

    init(loop: RelayLoop, connectionGuard: ConnectionGuard, clientAddress: String) {
        self.loop = loop
        self.shared = loop.shared
        self.configuration = loop.shared.configuration
        self.connectionGuard = connectionGuard
        self.clientAddress = clientAddress
        self.machine = ClientConnectionStateMachine(
            settings: .init(loop.shared.configuration, admissionLimits: loop.shared.admission.limits), now: loop.now)
        self.reader = RequestReader(maxHeadBytes: configuration.maxHeaderBytes, maxHeaderCount: configuration.maxHeaderCount)
    }

    var logger: Logger { shared.logger }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientWritable = context.channel.isWritable
        loop.register(self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        connectionClosed()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectionClosed()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if machine.isClosed { return }
        let bytes = unwrapInboundIn(data)
        if let tunnel = machine.tunnel {
            tunnel.sendBody(bytes)
            upstreamNeedsFlush = true
            return
        }
        if input == nil {
            input = bytes
        } else {
            input!.writeImmutableBuffer(bytes)
        }
        processInput(inClientRead: true)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // One flush per read batch towards the member, however many parts it held.
        if upstreamNeedsFlush {
            upstreamNeedsFlush = false
            machine.exchange?.upstream?.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        clientWritable = context.channel.isWritable
        if let upstream = machine.exchange?.upstream {
            if clientWritable { upstream.resumeReads() } else { upstream.pauseReads() }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        switch machine.clientClosedInput(midRequest: reader.isMidRequest) {
        case .none: break
        case .close: context.close(promise: nil)
        case .requestCutShort:
            // What was sent of this request is all there will be.
            requestUnreadable(RelayError(.badRequest, "the client closed its side before the request was complete"))
        case .halfCloseTunnel(let tunnel):
            tunnel.flush()
            tunnel.closeOutput()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Resets and the like: the client is gone, nobody to answer.
        logger.debug("client connection failed", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if machine.readsPaused {
            readPending = true
        } else {
            context.read()
        }
    }

    func resumeReadsIfPossible() {
        guard readPending, !machine.readsPaused, let context else { return }
        readPending = false
        context.read()
    }

    // MARK: Connection lifecycle

    /// For shutdown: finish the current request, then close. Returns when closed.
    func quiesce() -> EventLoopFuture<Void>? {
        guard let context else { return nil }
        if machine.quiesce() { context.close(promise: nil) }
        return context.channel.closeFuture
    }

    /// Closes at once: for aborts (the client must see a cut-short answer as one) and idle connections.
    func closeNow() {
        context?.close(promise: nil)
    }

    /// Closes after everything written so far, without losing it to a reset (see ``ConnectionGuard``).
    func closeGracefully(writing raw: ByteBuffer? = nil) {
        connectionGuard.closeGracefully(writing: raw, linger: configuration.closeLingerTimeout)
    }

    /// The client connection is gone: abandon whatever was in progress.
    private func connectionClosed() {
        if let exchange = machine.connectionClosed() { release(exchange) }
        loop.unregister(self)
    }

    /// Lets go of what a request held that is over or abandoned: its member connection (closed,
    /// not reusable mid-exchange), its member's count, its admission turn or queue place.
    func release(_ exchange: Exchange) {
        switch exchange.stage {
        case .relaying(let connection):
            connection.exchange = nil
            connection.close()
        case .waitingForTurn(let ticket):
            // If cancelling fails the turn was granted meanwhile; the grant callback sees the
            // request gone and gives the turn back.
            _ = shared.admission.cancel(ticket)
        case .choosingMember, .connecting:
            break
        }
        exchange.member?.endRequest()
        if exchange.holdsAdmission { shared.admission.release() }
    }

    /// Part of the answer is out and the rest won't come: what was relayed goes out, and the
    /// close tells the client it was cut short.
    func cutShort(_ exchange: Exchange?) {
        if let exchange { release(exchange) }
        context?.flush()
        closeNow()
    }

    /// After an answer: close, or read on (the next request, or a body to drop).
    func carryOut(_ after: ClientConnectionStateMachine.AfterAnswer) {
        switch after {
        case .close: closeGracefully()
        case .readOn: processInput()
        }
    }
}
