import NIOCore

/// The header edits of each hop. The request a member receives is written here, from the
/// client's head as bytes (``RequestReader``); the answer a client receives is edited by
/// ``ResponseReader/Head/write(into:http10:keepAlive:passesChunks:via:memberHeader:)``.
enum ForwardedHeaders {
    /// Writes the head a member receives: HTTP/1.1 (the pool keeps connections alive), the
    /// client's header lines as they came but for the hop-by-hop ones, `Expect` (the relay
    /// answers `100 Continue` itself once a member is ready, so the member never waits for it),
    /// and the ones the relay sets: `X-Forwarded-For` appended, `X-Forwarded-Proto` and
    /// `X-Request-Id` set, `Via` appended; `Shoal-Lease-Secret` dropped (a member that needs one
    /// gets its own when the head is sent, ``UpstreamConnection/sendHead(_:toHEAD:dechunkResponse:upgrade:)``).
    /// `Host` is kept as the client sent it.
    static func writeRequestHead(
        _ head: RequestReader.Head,
        requestID: String,
        clientAddress: String,
        configuration: RelayConfiguration,
        into buffer: inout ByteBuffer
    ) {
        let setsProto = !configuration.trustForwardedProto || !head.hasForwardedProto
        let keepsRequestID = head.usableRequestID != nil
        head.bytes.withUnsafeReadableBytes { bytes in
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[0..<head.targetEnd]))
            buffer.writeStaticString(" HTTP/1.1\r\n")
            let headersEnd = bytes.count - 2
            guard head.needsEditing else {
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[head.headersStart..<headersEnd]))
                writeAdded(forwardedFor: [], via: [])
                return
            }
            var forwardedFor: [UnsafeRawBufferPointer] = []
            var via: [UnsafeRawBufferPointer] = []
            HTTPSyntax.forEachCheckedLine(bytes, in: head.headersStart..<headersEnd) { name, line in
                switch name.count {
                case 3 where configuration.via != nil && HopByHopHeaders.equalsLowercase(name, "via"):
                    via.append(HTTPSyntax.value(of: line, nameLength: 3))
                    return
                case 6 where head.expectsContinue && HopByHopHeaders.equalsLowercase(name, "expect"):
                    return
                case 12 where !keepsRequestID && HopByHopHeaders.equalsLowercase(name, "x-request-id"):
                    return
                case 15 where HopByHopHeaders.equalsLowercase(name, "x-forwarded-for"):
                    forwardedFor.append(HTTPSyntax.value(of: line, nameLength: 15))
                    return
                case 17 where setsProto && HopByHopHeaders.equalsLowercase(name, "x-forwarded-proto"):
                    return
                case 18 where head.leaseSecret != nil && HopByHopHeaders.equalsLowercase(name, "shoal-lease-secret"):
                    return  // Checked by a worker, never passed on: the next hop gets its own or none.
                case 7 where head.upgrade != nil && HopByHopHeaders.equalsLowercase(name, "upgrade"):
                    break  // Passed on with `Connection: upgrade`: the member decides whether to switch.
                default:
                    if HopByHopHeaders.isHopByHop(name) || head.connectionNamed.contains(where: { HopByHopHeaders.sameName(name, $0) }) {
                        return
                    }
                }
                buffer.writeBytes(line)
            }
            writeAdded(forwardedFor: forwardedFor, via: via)
        }

        /// The relay's own lines, after the client's (while `bytes` still holds the values appended to).
        func writeAdded(forwardedFor: [UnsafeRawBufferPointer], via: [UnsafeRawBufferPointer]) {
            if head.isChunked { buffer.writeStaticString("transfer-encoding: chunked\r\n") }
            if head.upgrade != nil { buffer.writeStaticString("connection: upgrade\r\n") }
            writeHeader("x-forwarded-for", appending: clientAddress, to: forwardedFor, into: &buffer)
            if setsProto { writeHeader("x-forwarded-proto", configuration.forwardedProto, into: &buffer) }
            if !keepsRequestID { writeHeader("x-request-id", requestID, into: &buffer) }
            if let ours = configuration.via { writeHeader("via", appending: ours, to: via, into: &buffer) }
            buffer.writeStaticString("\r\n")
        }
    }

    /// `name: earlier, earlier, value`: a list header the relay appends its entry to.
    private static func writeHeader(
        _ name: StaticString, appending value: String, to earlier: [UnsafeRawBufferPointer], into buffer: inout ByteBuffer
    ) {
        buffer.writeStaticString(name)
        buffer.writeStaticString(": ")
        for entry in earlier {
            buffer.writeBytes(entry)
            buffer.writeStaticString(", ")
        }
        buffer.writeString(value)
        buffer.writeStaticString("\r\n")
    }

    @inline(__always)
    private static func writeHeader(_ name: StaticString, _ value: String, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(name)
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
        case .untilClose, .tunnel: false
        }
    }
}
