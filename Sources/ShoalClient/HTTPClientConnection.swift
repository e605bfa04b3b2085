import ShoalAPI
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A minimal HTTP/1.1 client: one keep-alive connection to one server, one request at a time.
///
/// Requests wait their turn, so a long poll holds up every request behind it: give long polls
/// a connection of their own. A connection the server closed while idle is replaced
/// transparently, and the request sent again once, if none of its answer had arrived.
package actor HTTPClientConnection {
    nonisolated let host: String
    nonisolated let port: Int
    nonisolated let maxBodyBytes: Int
    /// At most this long to connect, within the call's own timeout.
    nonisolated let connectTimeout: Duration?
    /// TLS to the server (`https`), or plain.
    nonisolated let tls: NIOSSLContext?
    private let group: any EventLoopGroup

    /// The connection, idle between requests; only ever kept after it carried an answer.
    private var channel: (any Channel)?
    private var isClosed = false
    private var isBusy = false
    private var waitingForTurn: [CheckedContinuation<Void, Never>] = []

    package init(host: String, port: Int, maxBodyBytes: Int = 8 << 20, connectTimeout: Duration? = nil,
                 tls: NIOSSLContext? = nil, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.host = host
        self.tls = tls
        self.connectTimeout = connectTimeout
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.group = group
    }

    deinit {
        channel?.close(promise: nil)
    }

    /// Sends a request and returns the whole answer, whatever its status.
    ///
    /// `timeout` covers connecting, sending and the whole answer, not the wait for a turn.
    /// Throws ``HTTPClientFailure``, or `CancellationError` if the task was cancelled.
    package func send(
        _ method: HTTPMethod, _ target: String, headers extraHeaders: HTTPHeaders = [:], body: ByteBuffer? = nil,
        timeout: Duration
    ) async throws -> HTTPAnswer {
        await takeTurn()
        defer { passTurn() }
        try Task.checkCancellation()

        let deadline = NIODeadline.now() + TimeAmount(timeout)
        var headers = extraHeaders
        headers.replaceOrAdd(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
        if body != nil || method == .POST || method == .PUT {
            headers.replaceOrAdd(name: "Content-Length", value: String(body?.readableBytes ?? 0))
        }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: target, headers: headers)

        if let idle = channel {
            channel = nil
            if idle.isActive {
                do {
                    return try await exchange(head, body, on: idle, deadline: deadline)
                } catch HTTPClientFailure.closedBeforeAnswer where !isClosed {
                    // The server closed the idle connection as we spoke: once more on a new one.
                }
            } else {
                idle.close(promise: nil)
            }
        }
        guard !isClosed else { throw HTTPClientFailure.clientClosed }
        let fresh = try await connect(by: deadline)
        guard !isClosed else {
            // close() ran while we were connecting.
            fresh.close(promise: nil)
            throw HTTPClientFailure.clientClosed
        }
        return try await exchange(head, body, on: fresh, deadline: deadline)
    }

    /// Closes the connection; a request in progress fails, and later ones are refused.
    package func close() async {
        isClosed = true
        guard let channel else { return }
        self.channel = nil
        try? await channel.close()
    }

    // MARK: One exchange

    private func exchange(
        _ head: HTTPRequestHead, _ body: ByteBuffer?, on channel: any Channel, deadline: NIODeadline
    ) async throws -> HTTPAnswer {
        self.channel = channel  // So that close() can interrupt the exchange.
        let promise = channel.eventLoop.makePromise(of: HTTPAnswer.self)
        channel.writeAndFlush(HTTPExchange(head: head, body: body, deadline: deadline, promise: promise)).whenFailure { error in
            // The channel closed before the handler saw the request.
            promise.fail(HTTPClientFailure.closedBeforeAnswer(error))
        }
        let answer: HTTPAnswer
        do {
            answer = try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        } catch {
            channel.close(promise: nil)
            if self.channel === channel { self.channel = nil }
            if isClosed { throw HTTPClientFailure.clientClosed }
            if Task.isCancelled { throw CancellationError() }
            throw error
        }
        if !answer.keepAlive, self.channel === channel {
            self.channel = nil  // The handler closed it.
        }
        return answer
    }

    private func connect(by deadline: NIODeadline) async throws -> any Channel {
        let remaining = deadline - .now()
        guard remaining > .zero else { throw HTTPClientFailure.timedOut }
        let maxBodyBytes = self.maxBodyBytes
        let tls = self.tls
        // An IP address is no server name: the certificate is then checked against the address.
        let serverName = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
        do {
            return try await ClientBootstrap(group: group)
                .connectTimeout(connectTimeout.map { min(remaining, TimeAmount($0)) } ?? remaining)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handlers = channel.pipeline.syncOperations
                        if let tls { try handlers.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
                        try handlers.addHandler(AnswerByteWatcher())
                        try handlers.addHTTPClientHandlers()
                        try handlers.addHandler(HTTPExchangeHandler(maxBodyBytes: maxBodyBytes))
                    }
                }
                .connect(host: host, port: port)
                .get()
        } catch {
            throw HTTPClientFailure.connectFailed(error)
        }
    }

    // MARK: Turns

    private func takeTurn() async {
        guard isBusy else {
            isBusy = true
            return
        }
        await withCheckedContinuation { waitingForTurn.append($0) }
    }

    private func passTurn() {
        if waitingForTurn.isEmpty {
            isBusy = false
        } else {
            waitingForTurn.removeFirst().resume()  // Still busy: the turn goes straight to the next.
        }
    }
}
