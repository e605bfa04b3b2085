import Logging
import NIOCore

/// One client connection of the relay: takes each request (admission, member choice, pooled
/// upstream connection), streams it to the member and the answer back, and answers itself when
/// it must (`4xx`/`5xx`).
///
/// Requests on one connection are strictly one after another: pipelined ones wait, unread, in
/// ``input`` (see `+Pipelining`). The member's channel lives on the same event loop, so
/// relaying is direct method calls between this handler and ``UpstreamConnection``.
///
/// Backpressure, both ways, by holding back `read()`: this handler swallows the client
/// channel's reads while the member's channel is not writable (or there is no member channel
/// yet), and ``UpstreamConnection`` swallows the member channel's reads while the client's
/// channel is not writable. Neither side is ever read faster than the other takes the bytes.
///
/// The request lifecycle lives in `+Request`, the answer's in `+Response`, deadlines in
/// `+Deadlines`, pipelined requests in `+Pipelining`.
final class ClientRelayHandler: ChannelDuplexHandler {
    /// Requests come in as bytes, read by a ``RequestReader``; answers go out as bytes: the
    /// member's head edited (``ResponseReader``), its body as it came, or the relay's own
    /// (``LocalResponse``). No HTTP codec on either side.
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase {
        /// Waiting for a request head.
        case idle
        /// The head is in; waiting for a turn in the admission queue.
        case awaitingAdmission
        /// A member is chosen; waiting for a new connection to it.
        case connecting
        /// The request and/or the answer are streaming.
        case exchanging
        /// The answer is complete; the rest of the request body is read and dropped.
        case discarding
        /// The connection is closing; nothing more happens.
        case closed
    }

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

    var phase = Phase.idle
    /// When the current phase times out; checked by the loop's timer (see `+Deadlines`).
    var deadline: NIODeadline
    /// Bytes of the next request arrived while idle: the head timeout runs, not the idle one.
    var sawRequestBytes = false
    /// The client half-closed: answer what it asked, then close.
    var inputClosed = false
    /// Close once the current answer is written (client asked, relay draining or stopping).
    var closeAfterResponse = false
    /// A `read()` held back for backpressure.
    var readPending = false
    var clientWritable = true
    /// The client's bytes not read yet: a pipelined request waiting for the current one's answer.
    var input: ByteBuffer?
    var reader: RequestReader
    /// ``processInput()`` is running (a request answered at once must not recurse into it).
    var isProcessingInput = false
    /// Moves on with every request and every abort, so late callbacks (connect, admission) can
    /// tell they belong to a request that is gone.
    var generation = 0

    // The current request.
    /// Its id: the client's `X-Request-Id`, or one the relay made (and passed on to the member).
    var requestID = ""
    /// `NIODeadline.uptimeNanoseconds` when its head arrived, for the member's latency histogram.
    var requestStartedAt: UInt64 = 0
    /// The member's answer's status code, once its head is in.
    var responseStatus: UInt = 0
    /// The client's head: what the answer must suit (version, keep-alive, HEAD), and log lines.
    var request: RequestReader.Head?
    /// The head the member gets, as bytes (kept for a retry).
    var upstreamHead: ByteBuffer?
    /// The client waits for `100 Continue` before it sends the body (not sent yet).
    var expectsContinue = false
    /// May be sent again after its member failed before answering (GET/HEAD, no body).
    var isReplayable = false
    /// Retries left: on another member, then on the local instance (``retryOrFail(after:failure:)``).
    var retriesLeft = 2
    /// A request that failed on a reused connection gets one fresh connection, not counted as a
    /// retry: the member most likely closed the idle connection just as it was reused.
    var staleRetryUsed = false
    var forceFreshConnection = false
    /// The member the request is counted against (``Member/endRequest()`` pending).
    var member: Member?
    var holdsAdmission = false
    var admissionTicket: EventLoopPromise<Void>?
    var upstream: UpstreamConnection?
    /// Request body bytes that arrived before a member connection was ready.
    var buffered = CircularBuffer<ByteBuffer>(initialCapacity: 0)
    var requestEnded = false
    var requestSent = false
    var responseStarted = false
    var upstreamNeedsFlush = false
    var clientNeedsFlush = false

    init(loop: RelayLoop, connectionGuard: ConnectionGuard, clientAddress: String) {
        self.loop = loop
        self.shared = loop.shared
        self.configuration = loop.shared.configuration
        self.connectionGuard = connectionGuard
        self.clientAddress = clientAddress
        self.deadline = loop.now + loop.shared.configuration.clientIdleTimeout
        self.reader = RequestReader(maxHeadBytes: configuration.maxHeaderBytes, maxHeaderCount: configuration.maxHeaderCount)
    }

    var logger: Logger { shared.logger }

    var clientIsHTTP10: Bool { request?.isHTTP10 ?? false }
    var clientKeepAlive: Bool { request?.keepAlive ?? true }
    var requestIsHEAD: Bool { request?.method == .head }
    var requestHasBody: Bool { request?.hasBody ?? false }

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
        if phase == .closed { return }
        let bytes = unwrapInboundIn(data)
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
            upstream?.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        clientWritable = context.channel.isWritable
        if clientWritable {
            upstream?.resumeReads()
        } else {
            upstream?.pauseReads()
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            inputClosed = true
            if isTakingCurrentRequest, reader.isMidRequest {
                // What was sent of this request is all there will be.
                requestUnparsable(RelayError(.badRequest, "the client closed its side before the request was complete"))
            } else if phase == .idle, !hasWaitingInput {
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Resets and the like: the client is gone, nobody to answer.
        logger.debug("client connection failed", metadata: ["client": "\(clientAddress)", "error": "\(error)"])
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if readsPausedByRelay {
            readPending = true
        } else {
            context.read()
        }
    }

    /// Hold the client back while there is nowhere to put its bytes yet, the member's channel is
    /// full, or a pipelined request waits. (Reads are *not* held just because an answer is in
    /// progress: holding and releasing them costs two `epoll_ctl` calls per request.)
    private var readsPausedByRelay: Bool {
        if hasWaitingInput { return true }
        switch phase {
        case .awaitingAdmission, .connecting: return true
        case .exchanging: return !(upstream?.isWritable ?? true)
        case .idle, .discarding, .closed: return false
        }
    }

    func resumeReadsIfPossible() {
        guard readPending, !readsPausedByRelay, let context else { return }
        readPending = false
        context.read()
    }

    // MARK: Connection lifecycle

    /// For shutdown: finish the current request, then close. Returns when closed.
    func quiesce() -> EventLoopFuture<Void>? {
        guard let context else { return nil }
        closeAfterResponse = true
        if phase == .idle, !hasWaitingInput { context.close(promise: nil) }
        return context.channel.closeFuture
    }

    /// Closes at once: for aborts (the client must see a cut-short answer as one) and idle connections.
    func closeNow() {
        context?.close(promise: nil)
    }

    /// Closes after everything written so far, without losing it to a reset (see ``ConnectionGuard``).
    func closeGracefully(writing raw: ByteBuffer? = nil) {
        phase = .closed
        connectionGuard.closeGracefully(writing: raw, linger: configuration.closeLingerTimeout)
    }

    /// The client connection is gone: abandon whatever was in progress.
    private func connectionClosed() {
        phase = .closed
        abandonExchange()
        loop.unregister(self)
    }
}
