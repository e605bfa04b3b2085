import NIOCore

/// One keep-alive connection to a member, the only handler of its channel: no HTTP codec. It
/// carries one client's request at a time (``exchange``), writes the request it is given as
/// bytes (head from ``ForwardedHeaders``, body as the client sent it), and passes the member's
/// answer straight to the client as it arrives, framed by a ``ResponseReader``: both channels
/// share an event loop, so these are plain method calls.
final class UpstreamConnection: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let member: Member
    /// The pool it returns to; weak because the pool holds idle connections.
    weak var pool: UpstreamPool?
    /// The client connection whose request this connection carries; `nil` while idle. Set and
    /// cleared by the client side (the reference cycle lasts one exchange).
    var exchange: ClientRelayHandler?
    /// Requests started on this connection; above 1 it was reused from the pool.
    var requestsStarted = 0
    /// When it last went idle, for the pool's idle timeout.
    var idleSince = NIODeadline.uptimeNanoseconds(0)
    /// Whether the last response allows another request on this connection.
    private(set) var lastResponseKeepsAlive = true
    private(set) var isActive = false
    private(set) var isWritable = true

    private var context: ChannelHandlerContext?
    private var failure: (any Error)?
    private var reader = ResponseReader()
    /// Paused while the client can't take more of the answer (backpressure towards the member).
    private var readsPaused = false
    private var readPending = false

    init(member: Member) {
        self.member = member
    }

    var wasReused: Bool { requestsStarted > 1 }

    // MARK: Used by the client side

    /// Starts a request with its head (bytes, see ``ForwardedHeaders``); the answer is to a `HEAD`
    /// or not, and, for an HTTP/1.0 client, a chunked one is passed on without its chunk framing.
    func sendHead(_ head: ByteBuffer, toHEAD: Bool, dechunkResponse: Bool, upgrade: Bool) {
        guard let context else { return }
        reader.expectResponse(toHEAD: toHEAD, dechunk: dechunkResponse, upgrade: upgrade)
        if let ending = member.secretHeadEnding {
            // The lease's secret goes in place of the blank line: two buffers, one writev, no copy.
            context.write(wrapOutboundOut(head.getSlice(at: head.readerIndex, length: head.readableBytes - 2)!), promise: nil)
            context.write(wrapOutboundOut(ending), promise: nil)
        } else {
            context.write(wrapOutboundOut(head), promise: nil)
        }
    }

    /// Request body bytes, as the client sent them (chunk framing included).
    func sendBody(_ body: ByteBuffer) {
        guard let context, body.readableBytes > 0 else { return }
        context.write(wrapOutboundOut(body), promise: nil)
    }

    @inline(__always)
    func flush() {
        context?.flush()
    }

    func close() {
        context?.close(promise: nil)
    }

    /// Sends FIN: the client half-closed a tunnel.
    func closeOutput() {
        context?.flush()
        context?.close(mode: .output, promise: nil)
    }

    func pauseReads() {
        readsPaused = true
    }

    func resumeReads() {
        readsPaused = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        isActive = context.channel.isActive
        isWritable = context.channel.isWritable
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        isActive = true
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard let exchange, !reader.isDone else {
            // An idle connection has nothing to say; whatever it sent is not ours to relay.
            lastResponseKeepsAlive = false
            context.close(promise: nil)
            return
        }
        do {
            while let event = try reader.next(&buffer) {
                switch event {
                case .head(let head):
                    lastResponseKeepsAlive = head.keepsAlive
                    exchange.upstreamResponseHead(head, from: self)
                case .body(let body):
                    exchange.upstreamResponseBody(body, from: self)
                }
                // The exchange may have let go of this connection (a retry, an abort).
                guard self.exchange === exchange else { return }
                if reader.isDone { break }
            }
            if reader.isDone {
                // Bytes beyond the answer: the member is out of step; don't reuse the connection.
                if buffer.readableBytes > 0 { lastResponseKeepsAlive = false }
                exchange.upstreamResponseEnd(from: self)
            }
        } catch {
            if failure == nil { failure = error }
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        exchange?.upstreamReadComplete(from: self)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        exchange?.upstreamWritabilityChanged(from: self)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        if let exchange, failure == nil, reader.endsAtClose {
            // An answer without a length ends when the member closes.
            lastResponseKeepsAlive = false
            exchange.upstreamResponseEnd(from: self)
        }
        if let exchange {
            self.exchange = nil
            exchange.upstreamClosed(self, error: failure)
        } else {
            pool?.remove(self)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Reported to the exchange by channelInactive, which the close brings.
        if failure == nil { failure = error }
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
        } else {
            context.read()
        }
    }
}
