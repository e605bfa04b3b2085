import NIOHTTP1

/// Why the relay answered a request itself instead of passing on a member's answer.
///
/// The answer carries the status, a one-line text body (``description``) and the stable ``code``
/// in an `X-Shoal-Error` header: programs match the code, people read the text.
public struct RelayError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A stable, machine-readable reason.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable, CaseIterable {
            case badRequest = "bad-request"
            case headersTooLarge = "headers-too-large"
            case bodyTooLarge = "body-too-large"
            case requestTimeout = "request-timeout"
            case noMember = "no-member"
            case queueFull = "queue-full"
            case queueTimeout = "queue-timeout"
            case draining = "draining"
            case memberUnreachable = "member-unreachable"
            case memberTimeout = "member-timeout"
            case notImplemented = "not-implemented"
            case forbidden = "forbidden"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A malformed request, or one with conflicting framing (`400`).
        public static let badRequest = Code(.badRequest)
        /// Request line and headers over the limit (`431`).
        public static let headersTooLarge = Code(.headersTooLarge)
        /// Request body over the limit (`413`).
        public static let bodyTooLarge = Code(.bodyTooLarge)
        /// The client sent its request too slowly (`408`).
        public static let requestTimeout = Code(.requestTimeout)
        /// No member to send the request to (`503`).
        public static let noMember = Code(.noMember)
        /// The concurrency limit is reached and the wait queue is full (`503`).
        public static let queueFull = Code(.queueFull)
        /// The request waited in the queue for longer than allowed (`503`).
        public static let queueTimeout = Code(.queueTimeout)
        /// The relay is draining and takes no new requests (`503`).
        public static let draining = Code(.draining)
        /// The member refused or dropped the connection before answering (`502`).
        public static let memberUnreachable = Code(.memberUnreachable)
        /// The member did not answer in time (`504`).
        public static let memberTimeout = Code(.memberTimeout)
        /// Well-formed, but something the relay does not do: tunnels (`CONNECT`), transfer
        /// codings other than chunked (`501`).
        public static let notImplemented = Code(.notImplemented)
        /// A worker's request without its lease's secret, or with a wrong one (`403`): it did not
        /// come through the front-end that holds the lease.
        public static let forbidden = Code(.forbidden)

        /// The HTTP status the relay answers with.
        public var status: HTTPResponseStatus {
            switch base {
            case .badRequest: .badRequest
            case .headersTooLarge: .requestHeaderFieldsTooLarge
            case .bodyTooLarge: .payloadTooLarge
            case .requestTimeout: .requestTimeout
            case .noMember, .queueFull, .queueTimeout, .draining: .serviceUnavailable
            case .memberUnreachable: .badGateway
            case .memberTimeout: .gatewayTimeout
            case .notImplemented: .notImplemented
            case .forbidden: .forbidden
            }
        }

        public var description: String { base.rawValue }

        /// Every code, in a fixed order (``ordinal`` indexes it): for per-code counters.
        public static let all: [Code] = Base.allCases.map(Code.init)

        /// This code's place in ``all``.
        var ordinal: Int { Base.allCases.firstIndex(of: base)! }
    }

    public let code: Code
    /// What happened, for people: one short line, no trailing newline.
    public let detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var status: HTTPResponseStatus { code.status }

    public var description: String { "\(code.status.code) \(code.status.reasonPhrase): \(detail)" }
}
