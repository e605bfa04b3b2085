import NIOCore

/// Reading requests from the client's bytes, and HTTP/1.1 pipelining: a request sent before the
/// previous answer is out stays unread in ``input`` until its turn.
///
/// The relay does this itself instead of using NIO's `HTTPServerPipelineHandler`, which holds
/// the client's reads during every answer; releasing them costs two `epoll_ctl` system calls per
/// request. Here reads are held only while a pipelined request actually waits.
extension ClientRelayHandler {
    /// Reads as much of ``input`` as the request in progress can take, handing each part to it;
    /// a malformed request is answered (when its turn comes, so after the ones before it). Then,
    /// with nothing waiting, reads from the client again.
    ///
    /// `inClientRead`: called from a client read, whose `channelReadComplete` flushes what went to
    /// the member. Called otherwise (a pipelined request's turn came), it flushes itself.
    func processInput(inClientRead: Bool = false) {
        // A request answered at once (a refusal) comes back here: the loop below goes on instead.
        guard !isProcessingInput else { return }
        isProcessingInput = true
        defer { isProcessingInput = false }
        while machine.isTakingCurrentRequest {
            var bytes = input ?? Self.noBytes
            input = nil
            let event: RequestReader.Event?
            do {
                event = try reader.next(&bytes)
            } catch {
                requestUnreadable(error)
                return
            }
            if bytes.readableBytes > 0 { input = bytes }
            guard let event else { break }
            switch event {
            case .head(let head): requestHead(head)
            case .body(let body): requestBody(body)
            case .end:
                reader.nextRequest()
                requestEnd()
            }
        }
        if !inClientRead, upstreamNeedsFlush {
            upstreamNeedsFlush = false
            machine.exchange?.upstream?.flush()
        }
        guard !machine.hasWaitingInput else { return }
        if machine.inputExhausted(midRequest: reader.isMidRequest, now: loop.now) == .close {
            closeGracefully()
            return
        }
        // Reads were held while the request waited; the rest of its body may still be to come.
        resumeReadsIfPossible()
    }

    private static let noBytes = ByteBuffer()
}
