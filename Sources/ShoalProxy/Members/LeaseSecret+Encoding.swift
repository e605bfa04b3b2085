import NIOCore
import ShoalCore

/// The secret as the relay sends it, encoded once per member.
extension LeaseSecret {
    /// `shoal-lease-secret: <secret>\r\n\r\n`: what ends a request head sent to a member that
    /// needs it — written once per member, so a request costs one more buffer in the same write.
    var headEnding: ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString("\(Self.headerName): \(text)\r\n\r\n")
        return buffer
    }

    /// `SHOAL <secret>\r\n`: the first bytes of a TCP-mode connection to a member that needs it.
    var preamble: ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeBytes(Self.preamblePrefix)
        buffer.writeBytes(bytes)
        buffer.writeStaticString("\r\n")
        return buffer
    }
}
