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

/// A WebSocket client made with NIOWebSocket: the real handshake and framing.
enum WebSocketClient {
    typealias Connection = NIOAsyncChannel<WebSocketFrame, WebSocketFrame>

    private enum Upgrade {
        case websocket(Connection)
        case refused
    }

    struct Refused: Error {}

    /// Connects to 127.0.0.1:`port` and upgrades; throws ``Refused`` if the server does not switch.
    static func connect(port: Int, path: String = "/chat") async throws -> Connection {
        let upgrade: EventLoopFuture<Upgrade> = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture { .websocket(try Connection(wrappingChannelSynchronously: channel)) }
                    })
                    var headers = HTTPHeaders()
                    headers.add(name: "host", value: "127.0.0.1:\(port)")
                    headers.add(name: "content-length", value: "0")
                    let configuration = NIOTypedHTTPClientUpgradeConfiguration(
                        upgradeRequestHead: HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers),
                        upgraders: [upgrader],
                        notUpgradingCompletionHandler: { channel in channel.eventLoop.makeCompletedFuture { .refused } })
                    return try channel.pipeline.syncOperations.configureUpgradableHTTPClientPipeline(
                        configuration: .init(upgradeConfiguration: configuration))
                }
            }
        switch try await upgrade.get() {
        case .websocket(let connection): return connection
        case .refused: throw Refused()
        }
    }

    /// A client frame: masked, as RFC 6455 requires.
    static func text(_ text: String) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
    }

    static func binary(_ bytes: [UInt8]) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: ByteBuffer(bytes: bytes))
    }

    static func close() -> WebSocketFrame {
        var data = ByteBuffer()
        data.write(webSocketErrorCode: .normalClosure)
        return WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)
    }
}
