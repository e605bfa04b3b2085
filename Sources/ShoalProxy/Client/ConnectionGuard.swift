import NIOCore

/// The first handler of a client connection, in front of the relay handler. It closes
/// connections gracefully ("lingering close"): after the last answer it sends FIN, then reads
/// and drops whatever the client is still sending until the client closes too. Closing at once
/// with unread input would make the kernel send a reset, which can destroy the answer (a `413`
/// or `431`) before the client reads it.
final class ConnectionGuard: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    private var lingering = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if lingering { return }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if lingering {
            // Read on below the relay handler, which may be holding reads back.
            context.read()
            return
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if lingering, case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if lingering {
            context.close(promise: nil)
            return
        }
        context.fireErrorCaught(error)
    }

    /// Writes `response` (raw bytes) if given, sends FIN once everything
    /// written so far is out, drops further input, and closes when the client closes or after
    /// `linger`.
    func closeGracefully(writing response: ByteBuffer? = nil, linger: TimeAmount) {
        guard let context, !lingering else { return }
        lingering = true
        if let response { context.write(NIOAny(response), promise: nil) }
        context.flush()
        context.close(mode: .output, promise: nil)
        context.read()
        context.eventLoop.assumeIsolated().scheduleTask(in: linger) {
            context.close(promise: nil)
        }
    }
}
