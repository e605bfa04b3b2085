import NIOCore
import NIOHTTP1
import NIOPosix

/// A tiny in-process member that answers every request with the request's head as text (one
/// `name: value` line per header), and adds hop-by-hop headers of its own, so tests can see
/// what the relay forwards in each direction.
enum HeaderEchoServer {
    static func start() async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler())
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private var text = ""

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                text = "\(head.method) \(head.uri) \(head.version)\n"
                for (name, value) in head.headers { text += "\(name.lowercased()): \(value)\n" }
            case .body:
                break
            case .end:
                var headers = HTTPHeaders()
                headers.add(name: "content-length", value: String(text.utf8.count))
                headers.add(name: "keep-alive", value: "timeout=5")
                headers.add(name: "connection", value: "X-Hop")
                headers.add(name: "x-hop", value: "1")
                headers.add(name: "proxy-foo", value: "x")
                headers.add(name: "x-end", value: "ok")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
