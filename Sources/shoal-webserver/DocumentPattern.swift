import NIOCore

/// Documents are a repeating 64-byte alphabet, so a client can check any byte of any document
/// without having a copy: byte `i` is `alphabet[i % 64]`. Bodies are slices of one shared 64 KiB
/// buffer, so serving a document copies nothing.
enum DocumentPattern {
    static let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_".utf8)

    /// 64 KiB, a whole number of alphabets, so consecutive chunks continue the pattern.
    static let chunk: ByteBuffer = {
        var buffer = ByteBufferAllocator().buffer(capacity: 65_536)
        for offset in 0..<65_536 { buffer.writeInteger(alphabet[offset % alphabet.count]) }
        return buffer
    }()
}
