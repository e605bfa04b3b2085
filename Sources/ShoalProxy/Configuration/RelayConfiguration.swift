import NIOCore
import ShoalCore

/// Limits, timeouts and pool sizes of one ``HTTPRelayServer``. Every field has a default that
/// suits both the front-end's service manager and a back-end's worker.
///
/// Timeouts are checked by one timer per event loop every ``timerResolution``, so each fires
/// within one resolution of its nominal value; that keeps timers off the per-request path.
public struct RelayConfiguration: Sendable, Hashable {
    /// What is relayed: HTTP/1.1 request by request (the default), or, for `protocol: tcp`,
    /// bytes connection by connection.
    public var serviceProtocol: ServiceProtocol = .http
    /// Serve the listening port over TLS with these PEM files (the front-end's public port);
    /// nil for plain TCP. Members are always spoken to in plain.
    public var tls: TLSFiles? = nil
    /// A worker's lease secret: every request (TCP mode: every connection) must present it, or
    /// gets `403` (is closed). `nil`: anyone who reaches the port is served.
    public var leaseSecret: LeaseSecret? = nil
    /// Address to listen on.
    public var host: String
    /// Port to listen on (0: any free port; ``HTTPRelayServer/localAddress`` tells which).
    public var port: Int

    /// Request line plus header bytes allowed in one request; more gets `431`.
    public var maxHeaderBytes: Int
    /// Header fields allowed in one request; more gets `431`.
    public var maxHeaderCount: Int
    /// Request body bytes allowed; more gets `413` (at once when `Content-Length` says so,
    /// else when the streamed body crosses the limit).
    public var maxRequestBodyBytes: Int

    /// An idle keep-alive client connection is closed (silently) after this long.
    public var clientIdleTimeout: TimeAmount
    /// A request head must be complete this long after its first byte arrived; else `408`.
    public var requestHeadTimeout: TimeAmount
    /// A request body that makes no progress for this long gets `408` (the client stalled).
    public var requestBodyIdleTimeout: TimeAmount
    /// After its last answer a connection being closed waits this long for the client to close
    /// its side (reading and dropping what it still sends), so the answer is not lost to a reset.
    public var closeLingerTimeout: TimeAmount

    /// Connecting to a member may take this long; then the member counts as failed.
    public var connectTimeout: TimeAmount
    /// A member must start its answer this long after the request was sent; else `504`.
    public var responseHeadTimeout: TimeAmount
    /// A response body that makes no progress for this long is cut off (both connections close).
    public var responseBodyIdleTimeout: TimeAmount

    /// Idle keep-alive connections kept per member on each event loop; more are closed.
    public var maxIdleConnectionsPerMember: Int
    /// An idle pooled connection to a member is closed after this long. Keep it below the
    /// service's own keep-alive timeout, so the pool never reuses a connection the service is closing.
    public var pooledConnectionIdleTimeout: TimeAmount
    /// How long a member that failed (refused, reset, connect timeout) stays out of rotation.
    public var unhealthyBackoff: TimeAmount
    /// Whether a `GET`/`HEAD` without a body whose member failed before answering is retried once
    /// on another member. (A request that never reached a member, because the connect failed, is
    /// always retried once: nothing was sent.)
    public var retryIdempotentRequests: Bool

    /// `X-Forwarded-Proto` to send when the request doesn't carry a trusted one.
    public var forwardedProto: String
    /// Keep an incoming `X-Forwarded-Proto` (set by a relay in front, e.g. the front-end in front of
    /// a worker). At the edge leave it `false`, so clients can't claim a scheme.
    public var trustForwardedProto: Bool
    /// A `Via` entry to append to requests and responses (e.g. `"1.1 shoal"`), or `nil` for none.
    public var via: String?
    /// A response header naming the member that answered (e.g. `X-Shoal-Member`), for tests and
    /// debugging; `nil` (the default) tells clients nothing about the members.
    public var memberHeader: String? = nil

    /// How often each event loop checks its connections' deadlines and sweeps its pool.
    public var timerResolution: TimeAmount
    /// At graceful shutdown, how long in-flight requests may take to finish before what is left
    /// is closed (the front-end uses the manifest's `drain_timeout`).
    public var shutdownGracePeriod: TimeAmount = .seconds(30)
    /// The listen backlog.
    public var backlog: Int32

    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        maxHeaderBytes: Int = 32 * 1024,
        maxHeaderCount: Int = 100,
        maxRequestBodyBytes: Int = 64 * 1024 * 1024,
        clientIdleTimeout: TimeAmount = .seconds(60),
        requestHeadTimeout: TimeAmount = .seconds(10),
        requestBodyIdleTimeout: TimeAmount = .seconds(30),
        closeLingerTimeout: TimeAmount = .seconds(2),
        connectTimeout: TimeAmount = .seconds(2),
        responseHeadTimeout: TimeAmount = .seconds(60),
        responseBodyIdleTimeout: TimeAmount = .seconds(60),
        maxIdleConnectionsPerMember: Int = 32,
        pooledConnectionIdleTimeout: TimeAmount = .seconds(20),
        unhealthyBackoff: TimeAmount = .seconds(2),
        retryIdempotentRequests: Bool = true,
        forwardedProto: String = "http",
        trustForwardedProto: Bool = false,
        via: String? = nil,
        timerResolution: TimeAmount = .milliseconds(100),
        backlog: Int32 = 1024
    ) {
        self.host = host
        self.port = port
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxRequestBodyBytes = maxRequestBodyBytes
        self.clientIdleTimeout = clientIdleTimeout
        self.requestHeadTimeout = requestHeadTimeout
        self.requestBodyIdleTimeout = requestBodyIdleTimeout
        self.closeLingerTimeout = closeLingerTimeout
        self.connectTimeout = connectTimeout
        self.responseHeadTimeout = responseHeadTimeout
        self.responseBodyIdleTimeout = responseBodyIdleTimeout
        self.maxIdleConnectionsPerMember = maxIdleConnectionsPerMember
        self.pooledConnectionIdleTimeout = pooledConnectionIdleTimeout
        self.unhealthyBackoff = unhealthyBackoff
        self.retryIdempotentRequests = retryIdempotentRequests
        self.forwardedProto = forwardedProto
        self.trustForwardedProto = trustForwardedProto
        self.via = via
        self.timerResolution = timerResolution
        self.backlog = backlog
    }
}

extension Duration {
    /// The same span as NIO's `TimeAmount`, to whole milliseconds.
    public var timeAmount: TimeAmount { .milliseconds(wholeMilliseconds) }
}
