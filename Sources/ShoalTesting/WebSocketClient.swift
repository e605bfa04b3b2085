import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOWebSocket

/// A WebSocket client made with NIOWebSocket: the real handshake and framing.
public enum WebSocketClient {
    public typealias Connection = NIOAsyncChannel<WebSocketFrame, WebSocketFrame>

    private enum Upgrade {
        case websocket(Connection)
        case refused
    }

    public struct Refused: Error {}

    /// Connects to `host`:`port` and upgrades; throws ``Refused`` if the server does not switch.
    /// `trustingCertificate`: speak TLS (`wss://`), trusting only this PEM certificate.
    public static func connect(
        host: String = "127.0.0.1", port: Int, path: String = "/chat", trustingCertificate: String? = nil
    ) async throws -> Connection {
        let tls = try trustingCertificate.map { file -> NIOSSLContext in
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(file)
            return try NIOSSLContext(configuration: configuration)
        }
        let upgrade: EventLoopFuture<Upgrade> = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: host))
                    }
                    let upgrader = NIOTypedWebSocketClientUpgrader<Upgrade>(upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture { .websocket(try Connection(wrappingChannelSynchronously: channel)) }
                    })
                    var headers = HTTPHeaders()
                    headers.add(name: "host", value: "\(host):\(port)")
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
    public static func text(_ text: String) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: text))
    }

    public static func binary(_ bytes: [UInt8]) -> WebSocketFrame {
        WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: ByteBuffer(bytes: bytes))
    }

    public static func close() -> WebSocketFrame {
        var data = ByteBuffer()
        data.write(webSocketErrorCode: .normalClosure)
        return WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: data)
    }
}
