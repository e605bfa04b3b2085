import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A response as the test client received it.
struct HTTPTestResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: ByteBuffer

    var text: String { String(buffer: body) }
}

/// A minimal keep-alive HTTP/1.1 client over one real connection (NIO's codec, no client library).
final class HTTPTestConnection {
    private var inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>
    private let port: Int

    private init(
        inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>,
        port: Int
    ) {
        self.inbound = inbound
        self.outbound = outbound
        self.port = port
    }

    /// Opens a connection to 127.0.0.1:`port`, runs `body`, closes. A watchdog closes the
    /// connection after `timeout`, so a stuck relay fails the test instead of hanging it.
    static func with<Result: Sendable>(
        port: Int,
        timeout: TimeAmount = .seconds(30),
        _ body: (HTTPTestConnection) async throws -> Result
    ) async throws -> Result {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        let raw = channel.channel
        let watchdog = raw.eventLoop.scheduleTask(in: timeout) { raw.close(promise: nil) }
        defer { watchdog.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(HTTPTestConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound, port: port))
        }
    }

    /// One request, whole body at once; waits for the whole answer.
    func request(
        _ method: HTTPMethod = .GET,
        _ uri: String,
        headers: [(String, String)] = [],
        body: ByteBuffer? = nil
    ) async throws -> HTTPTestResponse {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        head.headers.add(name: "host", value: "127.0.0.1:\(port)")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body { head.headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes)) }
        // In one write: a relay that refuses on the head alone (draining, 503) answers and closes
        // at once, and a separate write of the end could then find the connection closed.
        try await outbound.write(contentsOf: [.head(head)] + (body.map { [.body(.byteBuffer($0))] } ?? []) + [.end(nil)])
        return try await readResponse()
    }

    /// A `POST` of `size` bytes of the document pattern, sent in `chunkSize` pieces (a multiple
    /// of 64) while the
    /// answer is read at the same time, as a streaming client does.
    func postStreaming(_ uri: String, size: Int, chunkSize: Int, chunked: Bool) async throws -> HTTPTestResponse {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: uri)
        head.headers.add(name: "host", value: "127.0.0.1:\(port)")
        if chunked {
            head.headers.add(name: "transfer-encoding", value: "chunked")
        } else {
            head.headers.add(name: "content-length", value: String(size))
        }
        let outbound = self.outbound
        try await outbound.write(.head(head))
        async let sent: Void = {
            var offset = 0
            while offset < size {
                let length = min(chunkSize, size - offset)
                try await outbound.write(.body(.byteBuffer(DocumentPattern.piece(at: offset, length: length))))
                offset += length
            }
            try await outbound.write(.end(nil))
        }()
        let response = try await readResponse()
        try await sent
        return response
    }

    func readResponse() async throws -> HTTPTestResponse {
        var head: HTTPResponseHead?
        var body = ByteBuffer()
        while let part = try await inbound.next() {
            switch part {
            case .head(let received):
                head = received
            case .body(var bytes):
                body.writeBuffer(&bytes)
            case .end:
                guard let head else { throw TestFailure("response end without a head") }
                return HTTPTestResponse(status: head.status, headers: head.headers, body: body)
            }
        }
        throw TestFailure("connection closed before the response was complete")
    }
}

/// A raw TCP connection, for requests the HTTP codec would refuse to send.
final class RawConnection {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let timedOut: TimeoutFlag
    private(set) var received = ""

    private init(
        inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        timedOut: TimeoutFlag
    ) {
        self.inbound = inbound
        self.outbound = outbound
        self.timedOut = timedOut
    }

    static func with<Result: Sendable>(
        port: Int,
        timeout: TimeAmount = .seconds(10),
        _ body: (RawConnection) async throws -> Result
    ) async throws -> Result {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let raw = channel.channel
        let flag = TimeoutFlag()
        let watchdog = raw.eventLoop.scheduleTask(in: timeout) {
            flag.value.store(true, ordering: .relaxed)
            raw.close(promise: nil)
        }
        defer { watchdog.cancel() }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(RawConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound, timedOut: flag))
        }
    }

    func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    /// Reads until `marker` has arrived; returns everything received so far.
    @discardableResult
    func read(until marker: String) async throws -> String {
        while !received.contains(marker) {
            guard let bytes = try await inbound.next() else {
                throw TestFailure(timedOut.value.load(ordering: .relaxed)
                    ? "timed out waiting for \(marker.debugDescription); got \(received.debugDescription)"
                    : "connection closed before \(marker.debugDescription); got \(received.debugDescription)")
            }
            received += String(buffer: bytes)
        }
        return received
    }

    /// Reads until what arrived after the first `offset` bytes ends with `suffix`; returns that part.
    func read(after offset: Int, endingWith suffix: String) async throws -> String {
        while !String(decoding: received.utf8.dropFirst(offset), as: UTF8.self).hasSuffix(suffix) {
            guard let bytes = try await inbound.next() else {
                throw TestFailure("connection closed before \(suffix.debugDescription); got \(received.debugDescription)")
            }
            received += String(buffer: bytes)
        }
        return String(decoding: received.utf8.dropFirst(offset), as: UTF8.self)
    }

    /// Reads and counts bytes (without keeping them) until `count` have arrived; returns the
    /// count, or fewer if the connection closed first.
    func readBytes(count: Int) async throws -> Int {
        var total = received.utf8.count
        while total < count, let bytes = try await inbound.next() {
            total += bytes.readableBytes
        }
        return total
    }

    func send(_ bytes: ByteBuffer) async throws {
        try await outbound.write(bytes)
    }

    /// Reads until the other side closes; returns everything received. Throws on timeout.
    func readToEnd() async throws -> String {
        do {
            while let bytes = try await inbound.next() {
                received += String(buffer: bytes)
            }
        } catch {
            // A reset after the answer counts as closing.
        }
        if timedOut.value.load(ordering: .relaxed) {
            throw TestFailure("the relay did not close the connection; got \(received.debugDescription)")
        }
        return received
    }
}

final class TimeoutFlag: Sendable {
    let value = Atomic<Bool>(false)
}
