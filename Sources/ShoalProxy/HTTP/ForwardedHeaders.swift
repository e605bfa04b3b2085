import NIOCore
import NIOHTTP1

/// The header edits of each hop. The request a member receives is written here, straight from
/// the client's decoded head into bytes; the answer a client receives is edited by
/// ``ResponseReader/Head/write(into:http10:keepAlive:passesChunks:via:memberHeader:)``.
enum ForwardedHeaders {
    /// What the request head said that the relay needs.
    struct RequestFacts {
        /// The body comes chunked (it had `Transfer-Encoding` and, necessarily, no `Content-Length`).
        var isChunked = false
        /// `Content-Length`, if given.
        var contentLength: Int?
        /// The client waits for `100 Continue` before sending its body.
        var expectsContinue = false
        /// The client's `X-Request-Id`, if it sent one.
        var requestID: String?
        /// The client sent `X-Forwarded-Proto` (kept only if trusted).
        var hasForwardedProto = false
        /// Some header is hop-by-hop, or `Connection` names others: not every line is copied.
        var hasHopByHop = false

        var hasBody: Bool { isChunked || (contentLength ?? 0) > 0 }

        /// The client's request id, if it is fit to keep (1–128 bytes).
        var usableRequestID: String? {
            guard let requestID, (1...128).contains(requestID.utf8.count) else { return nil }
            return requestID
        }
    }

    /// One pass over the client's headers for what the relay needs.
    static func inspect(_ head: HTTPRequestHead) -> RequestFacts {
        var facts = RequestFacts()
        for (name, value) in head.headers {
            switch name.utf8.count {
            case 14 where HopByHopHeaders.equalsLowercase(name, "content-length"):
                facts.contentLength = Int(value)
            case 17 where HopByHopHeaders.equalsLowercase(name, "transfer-encoding"):
                facts.isChunked = true
                facts.hasHopByHop = true
            case 6 where HopByHopHeaders.equalsLowercase(name, "expect"):
                facts.expectsContinue = HopByHopHeaders.equalsLowercase(value, "100-continue")
            case 12 where HopByHopHeaders.equalsLowercase(name, "x-request-id"):
                facts.requestID = value
            case 17 where HopByHopHeaders.equalsLowercase(name, "x-forwarded-proto"):
                facts.hasForwardedProto = true
            default:
                if HopByHopHeaders.isHopByHop(name) { facts.hasHopByHop = true }
            }
        }
        return facts
    }

    /// Writes the head a member receives: HTTP/1.1 (the pool keeps connections alive), the
    /// client's headers but for the hop-by-hop ones, `Expect` (the relay answers `100 Continue`
    /// itself once a member is ready, so the member never waits for it), and the ones the relay
    /// sets: `X-Forwarded-For` appended, `X-Forwarded-Proto` and `X-Request-Id` set, `Via`
    /// appended. `Host` is kept as the client sent it.
    static func writeRequestHead(
        _ head: HTTPRequestHead,
        facts: RequestFacts,
        requestID: String,
        clientAddress: String,
        configuration: RelayConfiguration,
        into buffer: inout ByteBuffer
    ) {
        let connectionNamed = facts.hasHopByHop ? HopByHopHeaders.namedByConnection(head.headers) : []
        let setsProto = !configuration.trustForwardedProto || !facts.hasForwardedProto
        let keepsRequestID = facts.usableRequestID != nil
        var forwardedFor = ""
        var via = ""
        buffer.writeString(head.method.rawValue)
        buffer.writeStaticString(" ")
        buffer.writeString(head.uri)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        for (name, value) in head.headers {
            switch name.utf8.count {
            case 3 where HopByHopHeaders.equalsLowercase(name, "via") && configuration.via != nil:
                via += value + ", "
                continue
            case 6 where facts.expectsContinue && HopByHopHeaders.equalsLowercase(name, "expect"):
                continue
            case 12 where !keepsRequestID && HopByHopHeaders.equalsLowercase(name, "x-request-id"):
                continue
            case 15 where HopByHopHeaders.equalsLowercase(name, "x-forwarded-for"):
                forwardedFor += value + ", "
                continue
            case 17 where setsProto && HopByHopHeaders.equalsLowercase(name, "x-forwarded-proto"):
                continue
            default:
                if facts.hasHopByHop,
                   HopByHopHeaders.isHopByHop(name) || (!connectionNamed.isEmpty && connectionNamed.contains(name.lowercased())) {
                    continue
                }
            }
            writeHeader(name, value, into: &buffer)
        }
        if facts.isChunked { buffer.writeStaticString("transfer-encoding: chunked\r\n") }
        writeHeader("x-forwarded-for", forwardedFor + clientAddress, into: &buffer)
        if setsProto { writeHeader("x-forwarded-proto", configuration.forwardedProto, into: &buffer) }
        if !keepsRequestID { writeHeader("x-request-id", requestID, into: &buffer) }
        if let ours = configuration.via { writeHeader("via", via + ours, into: &buffer) }
        buffer.writeStaticString("\r\n")
    }

    @inline(__always)
    private static func writeHeader(_ name: String, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeString(name)
        buffer.writeStaticString(": ")
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }

    /// Whether the client can keep its connection after this answer. (The answer's head is
    /// edited for the client by ``ResponseReader/Head/write(into:http10:keepAlive:passesChunks:via:memberHeader:)``.)
    /// An answer that ends when the member closes ends the client's connection too; a chunked
    /// one reaches an HTTP/1.0 client without its chunks, so it is framed by closing as well.
    static func responseCanBeFramed(_ framing: ResponseReader.Framing, http10: Bool) -> Bool {
        switch framing {
        case .empty, .length: true
        case .chunked: !http10
        case .untilClose: false
        }
    }
}
