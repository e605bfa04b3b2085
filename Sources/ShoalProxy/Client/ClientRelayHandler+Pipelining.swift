import NIOCore
import NIOHTTP1

/// HTTP/1.1 pipelining: requests sent before the previous answer is out wait their turn.
///
/// The relay does this itself instead of using NIO's `HTTPServerPipelineHandler`, which holds
/// the client's reads during every answer; releasing them costs two `epoll_ctl` system calls per
/// request. Here reads are held only while pipelined requests actually wait.
extension ClientRelayHandler {
    /// Whether request parts arriving now belong to the request in progress (or start the next).
    var isTakingCurrentRequest: Bool {
        switch phase {
        case .idle: true
        case .closed: false
        case .awaitingAdmission, .connecting, .exchanging, .discarding: !requestEnded
        }
    }

    /// Hands waiting parts over while they belong to the request in progress; answers a waiting
    /// parse error in turn; closes a half-closed connection once nothing is left.
    func deliverPipelined() {
        while isTakingCurrentRequest, let part = pipelined.popFirst() {
            dispatch(part)
        }
        guard phase == .idle, pipelined.isEmpty else { return }
        if let error = pipelinedError {
            pipelinedError = nil
            requestUnparsable(error)
            return
        }
        if inputClosed {
            closeGracefully()
            return
        }
        resumeReadsIfPossible()
    }
}
