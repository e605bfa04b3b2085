import Logging
import NIOCore

/// The loop's timer, carried out. Called by ``RelayLoop`` every tick, so a request costs no
/// timer of its own: the machine only moves its deadline.
extension ClientRelayHandler {
    func checkDeadline(now: NIODeadline) {
        switch machine.timerFired(now: now) {
        case .none:
            return
        case .closeSilently:
            // An idle keep-alive connection: closing it silently is what clients expect.
            closeNow()
        case .answerHeadTimeout:
            let error = RelayError(.requestTimeout, "request head not complete within \(ClientConnectionStateMachine.seconds(configuration.requestHeadTimeout))")
            logger.notice("\(error)", metadata: ["client": "\(clientAddress)"])
            shared.statistics.countLocalResponse(error.code)
            closeGracefully(writing: LocalResponse.raw(for: error, allocator: context?.channel.allocator ?? ByteBufferAllocator()))
        case .closeUpstream(let connection):
            connection.close()
        case .cutShort(let exchange):
            logger.warning("member's answer stalled; closing", metadata: requestMetadata(exchange))
            cutShort(exchange)
        case .fail(let action):
            carryOut(action)
        }
    }
}
