import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// An ordinary WebSocket echo server made with NIOWebSocket, knowing nothing of Shoal: it
/// echoes text and binary messages, answers pings and a close. A request that does not ask to
/// upgrade gets `200` saying which `Upgrade` header it carried (`upgrade: none` without one).
final class WebSocketEchoServer: Sendable {
    let channel: any Channel
    var address: SocketAddress { channel.localAddress! }
    var port: Int { address.port! }

    init() async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let upgrader = NIOWebSocketServerUpgrader(
                    shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
                    upgradePipelineHandler: { channel, _ in
                        // The plain-HTTP answerer goes: from here on the connection speaks WebSocket.
                        channel.pipeline.removeHandler(name: "plain").flatMapThrowing {
                            try channel.pipeline.syncOperations.addHandler(EchoHandler())
                        }
                    })
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }))
                    try channel.pipeline.syncOperations.addHandler(PlainAnswer(), name: "plain")
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func stop() {
        channel.close(promise: nil)
    }

    private final class EchoHandler: ChannelInboundHandler {
        typealias InboundIn = WebSocketFrame
        typealias OutboundOut = WebSocketFrame

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let frame = unwrapInboundIn(data)
            switch frame.opcode {
            case .text, .binary:
                context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
            case .ping:
                context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
            case .connectionClose:
                let reply = WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData)
                context.writeAndFlush(wrapOutboundOut(reply)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            default:
                break
            }
        }
    }

    private final class PlainAnswer: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private var upgrade = "none"

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                upgrade = head.headers["upgrade"].first ?? "none"
            case .body:
                break
            case .end:
                let body = ByteBuffer(string: "upgrade: \(upgrade)")
                var headers = HTTPHeaders()
                headers.add(name: "content-length", value: "\(body.readableBytes)")
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
