import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A member that answers with exact bytes: for each request path, the pieces of its answer
/// (written and flushed one by one, a few milliseconds apart, so heads and bodies arrive split),
/// and whether it then closes. It counts the connections it accepted, to show reuse.
final class ScriptedMember: Sendable {
    struct Answer: Sendable {
        var pieces: [String]
        var closeAfter = false
    }

    let channel: any Channel
    private let accepted: NIOLockedValueBox<Int>

    var port: Int { channel.localAddress?.port ?? 0 }
    var connectionsAccepted: Int { accepted.withLockedValue { $0 } }

    init(_ answers: [String: Answer]) async throws {
        let accepted = NIOLockedValueBox(0)
        self.accepted = accepted
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(answers: answers))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    func close() async throws {
        try await channel.close()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        let answers: [String: Answer]
        private var received = ""

        init(answers: [String: Answer]) {
            self.answers = answers
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
            while let end = received.range(of: "\r\n\r\n") {
                let head = received[..<end.lowerBound]
                received = String(received[end.upperBound...])
                let path = head.split(separator: " ").dropFirst().first.map(String.init) ?? ""
                let answer = answers[path] ?? Answer(pieces: ["HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"])
                write(answer, pieces: answer.pieces[...], context: context)
            }
        }

        private func write(_ answer: Answer, pieces: ArraySlice<String>, context: ChannelHandlerContext) {
            guard let piece = pieces.first else {
                if answer.closeAfter { context.close(promise: nil) }
                return
            }
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: piece)), promise: nil)
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(5)) { [self] in
                write(answer, pieces: pieces.dropFirst(), context: context)
            }
        }
    }
}
