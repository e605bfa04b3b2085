import NIOCore
import NIOHTTP1

/// The relay's own answers (`4xx`/`5xx`): a short text body that says what happened, the
/// stable code in `X-Shoal-Error`, and the request's id in `X-Request-Id` (and in the body, for
/// whoever reports the error).
enum LocalResponse {
    /// The whole answer as bytes: the status, a short text body (left out for `HEAD`), the
    /// error code, the request id, and the relay's connection header.
    static func bytes(for error: RelayError, requestID: String = "", http10: Bool, keepAlive: Bool,
                      includeBody: Bool = true, allocator: ByteBufferAllocator) -> ByteBuffer {
        let body = error.description + (requestID.isEmpty ? "\n" : " (request \(requestID))\n")
        var buffer = allocator.buffer(capacity: 200 + body.utf8.count)
        buffer.writeString("\(http10 ? "HTTP/1.0" : "HTTP/1.1") \(error.status.code) \(error.status.reasonPhrase)\r\n")
        buffer.writeStaticString("content-type: text/plain; charset=utf-8\r\n")
        buffer.writeString("content-length: \(body.utf8.count)\r\n")
        buffer.writeString("x-shoal-error: \(error.code)\r\n")
        if !requestID.isEmpty { buffer.writeString("x-request-id: \(requestID)\r\n") }
        if http10 {
            if keepAlive { buffer.writeStaticString("connection: keep-alive\r\n") }
        } else if !keepAlive {
            buffer.writeStaticString("connection: close\r\n")
        }
        buffer.writeStaticString("\r\n")
        if includeBody { buffer.writeString(body) }
        return buffer
    }

    /// A complete `HTTP/1.1` response that closes the connection, for when the request head
    /// never completed (`408`) or could not be parsed (`400`, `431`).
    static func raw(for error: RelayError, allocator: ByteBufferAllocator) -> ByteBuffer {
        bytes(for: error, http10: false, keepAlive: false, allocator: allocator)
    }

    /// `100 Continue`, sent once a member is ready for the body.
    static func `continue`(http10: Bool) -> ByteBuffer {
        ByteBuffer(string: http10 ? "HTTP/1.0 100 Continue\r\n\r\n" : "HTTP/1.1 100 Continue\r\n\r\n")
    }
}
