import NIOCore
import ShoalCore

/// A worker's first handler on a TCP-mode connection when its lease has a secret: reads the
/// line `SHOAL <secret>\r\n` the holding front-end sends first, checks it in constant time, and
/// only then puts the relay in its place (``TCPRelayHandler``), handing it whatever followed the
/// line — the service instance never sees the line. A wrong or missing line, one over
/// ``LeaseSecret/maxPreambleBytes``, or none within the request head timeout closes the
/// connection before any member is connected; each is counted as a `forbidden` local answer.
final class LeaseSecretPreambleHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    /// What a connection's first bytes are, so far.
    enum Verdict: Equatable {
        /// The line is not complete yet.
        case needMore
        /// The right secret; the relayed bytes start at `rest` (an offset into what was read).
        case accepted(rest: Int)
        case refused
    }

    private let secret: LeaseSecret
    private let timeout: TimeAmount
    private let onAccepted: (any Channel) throws -> any ChannelHandler
    private let onRefused: () -> Void
    private var buffered: ByteBuffer?
    private var deadline: Scheduled<Void>?

    /// - Parameters:
    ///   - onAccepted: makes the handler that takes the connection over (added after this one).
    ///   - onRefused: counts a refusal.
    init(secret: LeaseSecret, timeout: TimeAmount, onAccepted: @escaping (any Channel) throws -> any ChannelHandler,
         onRefused: @escaping () -> Void) {
        self.secret = secret
        self.timeout = timeout
        self.onAccepted = onAccepted
        self.onRefused = onRefused
    }

    /// The decision on the bytes read so far; pure, for tests.
    static func check(_ bytes: UnsafeRawBufferPointer, secret: LeaseSecret) -> Verdict {
        let prefix = LeaseSecret.preamblePrefix
        for index in 0..<min(bytes.count, prefix.count) where bytes[index] != prefix[index] { return .refused }
        guard let newline = bytes.firstIndex(of: 10) else {
            return bytes.count >= LeaseSecret.maxPreambleBytes ? .refused : .needMore
        }
        guard newline > prefix.count, bytes[newline - 1] == 13 else { return .refused }
        let candidate = UnsafeRawBufferPointer(rebasing: bytes[prefix.count..<(newline - 1)])
        return secret.matches(candidate) ? .accepted(rest: newline + 1) : .refused
    }

    func handlerAdded(context: ChannelHandlerContext) {
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in refuse(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var earlier = buffered {
            earlier.writeBuffer(&bytes)
            bytes = earlier
        }
        switch bytes.withUnsafeReadableBytes({ Self.check($0, secret: secret) }) {
        case .needMore:
            buffered = bytes
        case .refused:
            refuse(context)
        case .accepted(let rest):
            buffered = nil
            deadline?.cancel()
            do {
                try context.pipeline.syncOperations.addHandler(onAccepted(context.channel), position: .after(self))
            } catch {
                context.close(promise: nil)
                return
            }
            bytes.moveReaderIndex(forwardBy: rest)
            if bytes.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(bytes)) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }

    private func refuse(_ context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        deadline?.cancel()
        buffered = nil
        onRefused()
        context.close(promise: nil)
    }
}

extension LeaseSecretPreambleHandler {
    typealias InboundOut = ByteBuffer
}
