import NIOCore
import NIOHTTP1
import NIOPosix

/// One HTTP GET of a service's health-check path: healthy when it answers 2xx in time.
public enum HealthProbe {
    public static func check(
        host: String,
        port: Int,
        path: String,
        timeout: TimeAmount = .seconds(1),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async -> Bool {
        let status = group.next().makePromise(of: HTTPResponseStatus.self)
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(StatusCatcher(status: status))
                    }
                }
                .connect(host: host, port: port).get()
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: "\(host):\(port)")
            headers.add(name: "Connection", value: "close")
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            channel.eventLoop.scheduleTask(in: timeout) { status.fail(ChannelError.connectTimeout(timeout)) }
            let answer = try? await status.futureResult.get()
            try? await channel.close()
            return answer.map { (200..<300).contains($0.code) } ?? false
        } catch {
            status.fail(error)
            return false
        }
    }

    /// Whether a TCP connection to the service is accepted in time (for `protocol: tcp`).
    public static func connects(
        host: String, port: Int, timeout: TimeAmount = .seconds(1),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async -> Bool {
        guard let channel = try? await ClientBootstrap(group: group).connectTimeout(timeout).connect(host: host, port: port).get()
        else { return false }
        try? await channel.close()
        return true
    }

    private final class StatusCatcher: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        let status: EventLoopPromise<HTTPResponseStatus>

        init(status: EventLoopPromise<HTTPResponseStatus>) { self.status = status }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head(let head) = unwrapInboundIn(data) { status.succeed(head.status) }
        }

        func channelInactive(context: ChannelHandlerContext) {
            status.fail(ChannelError.eof)
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            status.fail(error)
            context.close(promise: nil)
        }
    }
}
