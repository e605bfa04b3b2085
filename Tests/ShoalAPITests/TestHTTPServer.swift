import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A tiny HTTP/1.1 server on 127.0.0.1 for the client's tests: it records every request and
/// answers as `respond` says.
final class TestHTTPServer: Sendable {
    struct Request: Sendable {
        var method: HTTPMethod
        var uri: String
        var headers: HTTPHeaders
        var body: String
    }

    enum Reply: Sendable {
        case json(HTTPResponseStatus, String, closing: Bool = false)
        /// Closes the connection without a word, as a server closing an idle connection does.
        case hangUp
        /// Never answers.
        case silence
    }

    private struct State {
        var requests: [Request] = []
        var connections: [any Channel] = []
        var accepted = 0
    }

    /// Shared by the server and its connections' handlers.
    private final class Shared: Sendable {
        let state = Mutex(State())
    }

    let port: Int
    private let listener: any Channel
    private let shared: Shared

    private init(listener: any Channel, shared: Shared) {
        self.listener = listener
        self.port = listener.localAddress?.port ?? 0
        self.shared = shared
    }

    static func start(_ respond: @escaping @Sendable (Request) -> Reply) async throws -> TestHTTPServer {
        let shared = Shared()
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder { request in
                        shared.state.withLock { $0.requests.append(request) }
                        return respond(request)
                    })
                    shared.state.withLock {
                        $0.accepted += 1
                        $0.connections.append(channel)
                    }
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return TestHTTPServer(listener: listener, shared: shared)
    }

    var requests: [Request] { shared.state.withLock { $0.requests } }
    var acceptedConnections: Int { shared.state.withLock { $0.accepted } }

    /// Closes every connection, as a server does with idle ones.
    func closeConnections() async {
        for connection in shared.state.withLock({ $0.connections }) {
            try? await connection.close()
        }
    }

    func stop() async {
        await closeConnections()
        try? await listener.close()
    }

    private final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let respond: @Sendable (Request) -> Reply
        private var request: Request?

        init(respond: @escaping @Sendable (Request) -> Reply) {
            self.respond = respond
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                request = Request(method: head.method, uri: head.uri, headers: head.headers, body: "")
            case .body(let body):
                request?.body += String(buffer: body)
            case .end:
                guard let request else { return }
                self.request = nil
                switch respond(request) {
                case .json(let status, let json, let closing):
                    let body = ByteBuffer(string: json)
                    var headers: HTTPHeaders = ["Content-Type": "application/json", "Content-Length": "\(body.readableBytes)"]
                    if closing { headers.add(name: "Connection", value: "close") }
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
                    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                case .hangUp:
                    context.close(promise: nil)
                case .silence:
                    break
                }
            }
        }
    }
}
