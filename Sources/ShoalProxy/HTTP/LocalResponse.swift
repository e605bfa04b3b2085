import NIOCore
import NIOHTTP1

/// The relay's own answers (`4xx`/`5xx`): a short text body that says what happened, the
/// stable code in `X-Shoal-Error`, and the request's id in `X-Request-Id` (and in the body, for
/// whoever reports the error).
enum LocalResponse {
    static func head(for error: RelayError, requestID: String = "", version: HTTPVersion, keepAlive: Bool, bodyLength: Int) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(5)
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(bodyLength))
        headers.add(name: "x-shoal-error", value: error.code.description)
        if !requestID.isEmpty { headers.add(name: "x-request-id", value: requestID) }
        ForwardedHeaders.setConnection(keepAlive: keepAlive, version: version, headers: &headers)
        return HTTPResponseHead(version: version, status: error.status, headers: headers)
    }

    static func body(for error: RelayError, requestID: String = "", allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(string: error.description + (requestID.isEmpty ? "\n" : " (request \(requestID))\n"))
    }

    /// A complete `HTTP/1.1` response that closes the connection, as bytes, for when the HTTP
    /// codec can't be used: the request head never completed (`408`) or could not be parsed
    /// (`400`, `431`).
    static func raw(for error: RelayError, allocator: ByteBufferAllocator) -> ByteBuffer {
        let body = error.description + "\n"
        var buffer = allocator.buffer(capacity: 160 + body.utf8.count)
        buffer.writeString("HTTP/1.1 \(error.status.code) \(error.status.reasonPhrase)\r\n")
        buffer.writeString("content-type: text/plain; charset=utf-8\r\n")
        buffer.writeString("content-length: \(body.utf8.count)\r\n")
        buffer.writeString("x-shoal-error: \(error.code)\r\n")
        buffer.writeString("connection: close\r\n\r\n")
        buffer.writeString(body)
        return buffer
    }

    /// The error a request decoder failure stands for.
    static func error(forDecoderError error: any Error) -> RelayError {
        switch error as? HTTPParserError {
        case .headerOverflow?:
            RelayError(.headersTooLarge, "request line and headers exceed the limit")
        case .unexpectedContentLength?, .invalidContentLength?, .invalidChunkSize?:
            RelayError(.badRequest, "conflicting or invalid message framing (Content-Length / Transfer-Encoding)")
        case .invalidVersion?:
            RelayError(.badRequest, "unsupported HTTP version")
        case .invalidMethod?:
            RelayError(.badRequest, "invalid method")
        case let parserError?:
            RelayError(.badRequest, "malformed request (\(parserError.debugDescription))")
        case nil:
            RelayError(.badRequest, "malformed request")
        }
    }
}
