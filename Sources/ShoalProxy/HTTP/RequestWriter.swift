import NIOCore
import NIOHTTP1

/// Chunk framing for a request body that came chunked (the head is ``ForwardedHeaders``'s).
enum RequestWriter {
    static func chunkHeader(_ length: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 18)
        buffer.writeString(String(length, radix: 16))
        buffer.writeStaticString("\r\n")
        return buffer
    }

    static let crlf = ByteBuffer(string: "\r\n")

    static func lastChunk(_ trailers: HTTPHeaders?, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 5)
        buffer.writeStaticString("0\r\n")
        for (name, value) in trailers ?? [:] {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }
}
