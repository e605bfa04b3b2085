import ShoalAPI
import NIOCore
import NIOHTTP1

/// One request written into a client channel, and where its answer goes.
struct HTTPExchange: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer?
    /// When to give up on the answer.
    var deadline: NIODeadline
    var promise: EventLoopPromise<HTTPAnswer>
}

/// A complete answer, its body gathered in one buffer.
package struct HTTPAnswer: Sendable {
    package var status: HTTPResponseStatus
    package var headers: HTTPHeaders
    package var body: ByteBuffer
    /// Whether the connection may carry another request.
    var keepAlive: Bool
}

/// Why an exchange failed. The cases tell whether any of the answer had arrived: only a
/// request whose answer never started may be sent again.
package enum HTTPClientFailure: Error {
    /// No connection could be made: nothing was sent.
    case connectFailed(any Error)
    /// The connection ended, or failed, before the first byte of the answer.
    case closedBeforeAnswer((any Error)?)
    /// The connection ended, or failed, partway through the answer.
    case closedDuringAnswer((any Error)?)
    case timedOut
    case answerTooLarge(limit: Int)
    /// ``HTTPClientConnection/close()`` was called.
    case clientClosed
}

/// Sent up the pipeline when bytes arrive, before the HTTP decoder sees them.
struct AnswerBytesArrived {}

/// The first handler of a client channel: reports that bytes arrived, so the exchange knows
/// its answer started even if the connection dies before a whole head is decoded.
final class AnswerByteWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if unwrapInboundIn(data).readableBytes > 0 {
            context.fireUserInboundEventTriggered(AnswerBytesArrived())
        }
        context.fireChannelRead(data)
    }
}

/// The last handler of a client channel: sends one request at a time and gathers its answer,
/// within a deadline and a size limit.
///
/// Anything going wrong closes the connection: after a timeout or a cut-off answer its
/// framing can't be trusted any more.
final class HTTPExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPExchange
    typealias OutboundOut = HTTPClientRequestPart

    private struct Current {
        var promise: EventLoopPromise<HTTPAnswer>
        var timer: Scheduled<Void>
        var head: HTTPResponseHead?
        var body: ByteBuffer
        var answerStarted = false
    }

    private let maxBodyBytes: Int
    private var current: Current?
    /// The first error the channel reported, for the exchange it ends.
    private var failure: (any Error)?

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        guard current == nil else {
            // HTTPClientConnection sends one request at a time; a second one is a bug.
            exchange.promise.fail(HTTPClientFailure.closedBeforeAnswer(ChannelError.inappropriateOperationForState))
            promise?.fail(ChannelError.inappropriateOperationForState)
            return
        }
        let timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: exchange.deadline) { [self] in
            finish(.failure(.timedOut), closing: context)
        }
        current = Current(promise: exchange.promise, timer: timer, body: context.channel.allocator.buffer(capacity: 0))

        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        if let body = exchange.body, body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolated().whenFailure { [self] error in
            errorCaught(context: context, error: error)
        }
        written.futureResult.cascade(to: promise)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is AnswerBytesArrived else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        if current == nil {
            // Nobody asked: an idle connection has nothing to say.
            context.close(promise: nil)
        } else {
            current?.answerStarted = true
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard current != nil else { return }  // Closing already (see userInboundEventTriggered).
        switch unwrapInboundIn(data) {
        case .head(let head):
            current?.head = head
        case .body(var part):
            guard let gathered = current?.body.readableBytes, gathered + part.readableBytes <= maxBodyBytes else {
                finish(.failure(.answerTooLarge(limit: maxBodyBytes)), closing: context)
                return
            }
            current?.body.writeBuffer(&part)
        case .end:
            guard let current, let head = current.head else { return }
            finish(.success(HTTPAnswer(status: head.status, headers: head.headers, body: current.body, keepAlive: head.isKeepAlive)))
            if !head.isKeepAlive {
                context.close(promise: nil)  // HTTPClientConnection drops it too, seeing `keepAlive`.
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if failure == nil { failure = error }
        connectionEnded()
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectionEnded()
        context.fireChannelInactive()
    }

    /// Fails the exchange in progress, saying whether its answer had started.
    private func connectionEnded() {
        guard let current else { return }
        finish(.failure(current.answerStarted ? .closedDuringAnswer(failure) : .closedBeforeAnswer(failure)))
    }

    /// Completes the exchange in progress, if any, and closes the connection if given its context.
    private func finish(_ result: Result<HTTPAnswer, HTTPClientFailure>, closing context: ChannelHandlerContext? = nil) {
        guard let current else { return }
        self.current = nil
        current.timer.cancel()
        context?.close(promise: nil)
        current.promise.completeWith(result.mapError { $0 })
    }
}
