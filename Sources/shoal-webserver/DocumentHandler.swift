import NIOCore
import NIOHTTP1
import NIOPosix

/// Answers one HTTP/1.1 connection:
/// - `GET`/`HEAD /health`: `200 ok`, never queued;
/// - `GET`/`HEAD` anything else: a document of the requested size after the requested delay and
///   CPU work, inside the concurrency limit;
/// - `POST`/`PUT`: the request body echoed back as it arrives (to exercise streaming both ways).
final class DocumentHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case health(HTTPRequestHead)
        case document(HTTPRequestHead, DocumentRequest)
        case echo(HTTPRequestHead)
        case refused(HTTPRequestHead, HTTPResponseStatus, String)
    }

    private let defaults: DocumentRequest
    private let gate: ConcurrencyGate
    private let cpuPool: NIOThreadPool
    private var state = State.idle

    init(defaults: DocumentRequest, gate: ConcurrencyGate, cpuPool: NIOThreadPool) {
        self.defaults = defaults
        self.gate = gate
        self.cpuPool = cpuPool
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            state = route(head)
            if case .echo(let head) = state {
                var headers = HTTPHeaders()
                if let length = head.headers.first(name: "content-length") {
                    headers.add(name: "Content-Length", value: length)
                } else {
                    headers.add(name: "Transfer-Encoding", value: "chunked")
                }
                context.write(wrapOutboundOut(.head(responseHead(for: head, status: .ok, headers: headers))), promise: nil)
            }
        case .body(let buffer):
            if case .echo = state {
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
        case .end:
            let finished = state
            state = .idle
            switch finished {
            case .idle: break
            case .health(let head): respond(context: context, head: head, status: .ok, text: "ok\n")
            case .refused(let head, let status, let reason): respond(context: context, head: head, status: status, text: reason + "\n")
            case .echo(let head): finish(context: context, head: head, promise: nil)
            case .document(let head, let request): serve(context: context, head: head, request: request)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    private func route(_ head: HTTPRequestHead) -> State {
        let path = head.uri.split(separator: "?", maxSplits: 1).first ?? ""
        switch head.method {
        case .GET, .HEAD:
            if path == "/health" { return .health(head) }
            switch DocumentRequest.parse(uri: head.uri, defaults: defaults) {
            case .success(let request): return .document(head, request)
            case .failure(let bad): return .refused(head, .badRequest, bad.reason)
            }
        case .POST, .PUT:
            return .echo(head)
        default:
            return .refused(head, .methodNotAllowed, "method not allowed")
        }
    }

    /// Waits for a turn, sleeps the delay, burns the CPU time, then writes the document.
    private func serve(context: ChannelHandlerContext, head: HTTPRequestHead, request: DocumentRequest) {
        let eventLoop = context.eventLoop
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: eventLoop)
        let gate = self.gate
        let cpuPool = self.cpuPool
        gate.acquire(on: eventLoop)
            .flatMap {
                guard request.delayMs > 0 else { return eventLoop.makeSucceededVoidFuture() }
                return eventLoop.scheduleTask(in: .milliseconds(Int64(request.delayMs))) {}.futureResult
            }
            .flatMap {
                guard request.cpuMs > 0 else { return eventLoop.makeSucceededVoidFuture() }
                return cpuPool.runIfActive(eventLoop: eventLoop) { burnCPU(milliseconds: request.cpuMs) }
            }
            .flatMap { () -> EventLoopFuture<Void> in
                let promise = eventLoop.makePromise(of: Void.self)
                bound.value.handler.writeDocument(context: bound.value.context, head: head, size: request.size, promise: promise)
                return promise.futureResult
            }
            .whenComplete { _ in gate.release() }
    }

    private func writeDocument(context: ChannelHandlerContext, head: HTTPRequestHead, size: Int, promise: EventLoopPromise<Void>) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/octet-stream")
        headers.add(name: "Content-Length", value: String(size))
        context.write(wrapOutboundOut(.head(responseHead(for: head, status: .ok, headers: headers))), promise: nil)
        if head.method != .HEAD {
            var remaining = size
            while remaining > 0 {
                let chunk = min(remaining, DocumentPattern.chunk.readableBytes)
                context.write(wrapOutboundOut(.body(.byteBuffer(DocumentPattern.chunk.getSlice(at: 0, length: chunk)!))), promise: nil)
                remaining -= chunk
            }
        }
        finish(context: context, head: head, promise: promise)
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, status: HTTPResponseStatus, text: String) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(text.utf8.count))
        context.write(wrapOutboundOut(.head(responseHead(for: head, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: text)))), promise: nil)
        }
        finish(context: context, head: head, promise: nil)
    }

    private func finish(context: ChannelHandlerContext, head: HTTPRequestHead, promise: EventLoopPromise<Void>?) {
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !head.isKeepAlive {
            let channel = context.channel
            written.whenComplete { _ in channel.close(promise: nil) }
        }
        written.cascade(to: promise)
    }

    private func responseHead(for request: HTTPRequestHead, status: HTTPResponseStatus, headers: HTTPHeaders) -> HTTPResponseHead {
        var headers = headers
        if !request.isKeepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        return HTTPResponseHead(version: request.version, status: status, headers: headers)
    }
}

/// Busy work on the calling thread, measured by the clock rather than by a loop count so it
/// means the same on any machine.
private func burnCPU(milliseconds: Int) {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: .milliseconds(milliseconds))
    var x: UInt64 = 1
    while clock.now < deadline {
        for _ in 0..<1000 { x = x &* 6364136223846793005 &+ 1442695040888963407 }
    }
    blackHole(x)
}

@inline(never)
private func blackHole(_ value: UInt64) {
    if value == 42 { print("") }
}
