import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The front-end's admin listener, apart from the service's public port (which relays
/// everything): `GET /metrics` answers the Prometheus exposition, `GET /health` answers `ok`,
/// anything else `404`. A few lines of NIO HTTP/1.1; a scrape runs on one of the relay's event
/// loops and takes a fraction of a millisecond.
public final class AdminServer: Service {
    private let channel: any Channel

    /// The bound address (the port is the chosen one when asked for 0).
    public var localAddress: SocketAddress? { channel.localAddress }

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Listens on `host`:`port` (0: any free port) and answers with `metrics()` for `/metrics`.
    public static func start(
        host: String, port: Int,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        metrics: @escaping @Sendable () -> String
    ) async throws -> AdminServer {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHandler(metrics: metrics))
                }
            }
            .bind(host: host, port: port)
            .get()
        return AdminServer(channel: channel)
    }

    public func stop() async {
        try? await channel.close()
    }

    /// Answers until graceful shutdown, then closes.
    public func run() async {
        try? await gracefulShutdown()
        await stop()
    }
}

/// One admin connection: whole requests in, one answer each.
final class AdminHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let metrics: @Sendable () -> String
    private var head: HTTPRequestHead?

    init(metrics: @escaping @Sendable () -> String) {
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            answer(head, context: context)
        }
    }

    private func answer(_ request: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let isRead = request.method == .GET || request.method == .HEAD
        let status: HTTPResponseStatus
        let contentType: String
        let body: String
        switch (path, isRead) {
        case ("/metrics", true):
            (status, contentType, body) = (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics())
        case ("/health", true):
            (status, contentType, body) = (.ok, "text/plain; charset=utf-8", "ok\n")
        case ("/metrics", false), ("/health", false):
            (status, contentType, body) = (.methodNotAllowed, "text/plain; charset=utf-8", "405 Method Not Allowed: use GET\n")
        default:
            (status, contentType, body) = (.notFound, "text/plain; charset=utf-8", "404 Not Found: the admin listener serves GET /metrics and GET /health\n")
        }
        let keepAlive = request.isKeepAlive
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(body.utf8.count))
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        }
    }
}
