import NIOCore
import NIOHTTP1

/// One keep-alive connection to a member, as the last handler of its channel. It carries one
/// client's request at a time (``exchange``) and passes the member's answer straight to it:
/// both channels share an event loop, so these are plain method calls.
final class UpstreamConnection: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

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
    /// Paused while the client can't take more of the answer (backpressure towards the member).
    private var readsPaused = false
    private var readPending = false

    init(member: Member) {
        self.member = member
    }

    var wasReused: Bool { requestsStarted > 1 }

    // MARK: Used by the client side

    @inline(__always)
    func send(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    @inline(__always)
    func flush() {
        context?.flush()
    }

    func close() {
        context?.close(promise: nil)
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
        let part = unwrapInboundIn(data)
        guard let exchange else {
            // An idle connection has nothing to say; whatever it sent is not ours to relay.
            context.close(promise: nil)
            return
        }
        switch part {
        case .head(let head):
            lastResponseKeepsAlive = head.isKeepAlive
            exchange.upstreamResponseHead(head, from: self)
        case .body(let body):
            exchange.upstreamResponseBody(body, from: self)
        case .end(let trailers):
            exchange.upstreamResponseEnd(trailers, from: self)
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
