import ShoalAPI
/// Why a ``BrokerClient`` call failed, in a sentence that says what to do.
public struct BrokerClientError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// The broker address is not `http(s)://HOST[:PORT]`.
        case invalidAddress(reason: String)
        /// No connection, or it failed before any answer came.
        case unreachable(reason: String)
        /// The answer did not come in time; the request may or may not have taken effect.
        case timedOut(after: Duration)
        /// The broker refused: `message` is its `{"error": ...}` text, or the raw body.
        case status(code: Int, message: String)
        /// An answer, but not what the API promises: cut off, too large or undecodable.
        case badAnswer(expected: String, detail: String)
    }

    public let kind: Kind
    /// The broker's base URL, as given.
    public let broker: String
    /// Method and path, e.g. `POST /v1/leases`; empty for an invalid address.
    public let request: String

    public init(_ kind: Kind, broker: String, request: String) {
        self.kind = kind
        self.broker = broker
        self.request = request
    }

    /// The HTTP status of a refusal, so callers can tell 401, 404 and 409 apart.
    public var statusCode: Int? {
        if case .status(let code, _) = kind { code } else { nil }
    }

    public var description: String {
        switch kind {
        case .invalidAddress(let reason):
            "\"\(broker)\" is not a broker address (\(reason)): use http://HOST:PORT (or https://) with --broker or SHOAL_BROKER"
        case .unreachable(let reason):
            "cannot reach the broker at \(broker) (\(reason)): is `shoal broker` running? Set --broker or SHOAL_BROKER"
        case .timedOut(let after):
            "the broker at \(broker) did not answer \(request) within \(after.decimalSeconds) s"
        case .status(let code, let message):
            "the broker refused \(request) (\(code)): \(message)"
        case .badAnswer(let expected, let detail):
            "unexpected answer from the broker at \(broker) to \(request): expected \(expected); \(detail)"
        }
    }
}
