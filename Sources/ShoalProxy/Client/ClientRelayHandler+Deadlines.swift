import Logging
import NIOCore
import Synchronization

/// What happens when a phase outlives its deadline. Called by the loop's timer, so a request
/// costs no timer of its own: it only moves ``ClientRelayHandler/deadline``.
extension ClientRelayHandler {
    func checkDeadline(now: NIODeadline) {
        if phase == .exchanging, !responseStarted, let upstream, member?.isAbandoned == true {
            // Its member is gone: closing the connection sends the request down the path of a
            // member that failed before answering (retried if it may be, else 502).
            upstream.close()
            return
        }
        guard deadline <= now else { return }
        switch phase {
        case .idle:
            if sawRequestBytes {
                requestHeadTimedOut()
            } else {
                // An idle keep-alive connection: closing it silently is what clients expect.
                phase = .closed
                closeNow()
            }
        case .awaitingAdmission:
            fail(RelayError(.queueTimeout, "waited \(Self.seconds(shared.admission.limits?.queueTimeout)) for a turn; try again later"))
        case .connecting:
            break  // The bootstrap's connect timeout ends this phase.
        case .exchanging:
            exchangeTimedOut()
        case .discarding:
            phase = .closed
            closeNow()
        case .closed:
            break
        }
    }

    private func requestHeadTimedOut() {
        let error = RelayError(.requestTimeout, "request head not complete within \(Self.seconds(configuration.requestHeadTimeout))")
        logger.notice("\(error)", metadata: ["client": "\(clientAddress)"])
        shared.statistics.countLocalResponse(error.code)
        closeGracefully(writing: LocalResponse.raw(for: error, allocator: context?.channel.allocator ?? ByteBufferAllocator()))
    }

    private func exchangeTimedOut() {
        let memberName = member?.name ?? "?"
        if responseStarted {
            logger.warning("member's answer stalled; closing", metadata: requestMetadata(member: member))
            phase = .closed
            abandonExchange()
            closeNow()
            return
        }
        if !requestSent {
            if upstream?.isWritable ?? true {
                // We were reading: the client stopped sending its body.
                closeAfterResponse = true
                fail(RelayError(.requestTimeout, "request body stalled for \(Self.seconds(configuration.requestBodyIdleTimeout))"))
            } else {
                // We had stopped reading: the member stopped taking the body.
                closeAfterResponse = true
                fail(RelayError(.memberTimeout, "member \(memberName) stopped taking the request body"))
            }
            return
        }
        fail(RelayError(.memberTimeout, "member \(memberName) did not answer within \(Self.seconds(configuration.responseHeadTimeout))"))
    }

    static func seconds(_ amount: TimeAmount?) -> String {
        guard let amount else { return "?" }
        let seconds = Double(amount.nanoseconds) / 1e9
        return seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}
