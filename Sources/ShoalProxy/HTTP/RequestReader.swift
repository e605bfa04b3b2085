import NIOCore

/// A client's request read straight from the bytes of its connection, as ``ResponseReader``
/// reads answers: the head is parsed once for what the relay needs, then copied to the member
/// with only the relay's edits (``ForwardedHeaders/writeRequestHead(_:requestID:clientAddress:configuration:into:)``);
/// the body goes on exactly as it came, chunk framing included. Nothing becomes header strings.
///
/// This is the untrusted side, where request smuggling starts, so it is strict (RFC 9112):
/// exactly `HTTP/1.0` or `HTTP/1.1`; one `Content-Length`, digits only; `Transfer-Encoding`
/// only as one `chunked`, never beside `Content-Length` and never from an HTTP/1.0 client; no
/// whitespace before a colon, no folded lines, no bare CR or LF, no control bytes. What it
/// refuses it throws as the ``RelayError`` to answer with (`400`, `431`, `501`).
struct RequestReader {
    enum Method {
        case get, head, other
    }

    /// The parts of a head the relay acts on; ``bytes`` holds the whole head for copying.
    struct Head {
        /// Request line to blank line, inclusive (leading empty lines dropped).
        var bytes: ByteBuffer
        /// The method is `bytes[0..<methodEnd]`, the target `bytes[(methodEnd + 1)..<targetEnd]`.
        var methodEnd: Int
        var targetEnd: Int
        /// Where the first header line starts.
        var headersStart: Int
        var method: Method
        var isHTTP10: Bool
        /// The client allows another request on this connection.
        var keepAlive: Bool
        var contentLength: Int?
        /// The body comes chunked (and goes on chunked, as it came).
        var isChunked = false
        /// The client waits for `100 Continue` before sending its body.
        var expectsContinue = false
        /// The client's `X-Request-Id`, if it sent one.
        var requestID: String?
        /// The client sent `X-Forwarded-Proto` (kept only if trusted).
        var hasForwardedProto = false
        /// Some line can't be copied as it is (hop-by-hop, `Expect`, or one the relay sets or
        /// appends to); `false` in the usual case, where the header block is copied whole.
        var needsEditing = false
        /// Where the value of `Shoal-Lease-Secret` is in ``bytes`` (from its reader index), if the
        /// request has one: a worker checks it; every relay strips it.
        var leaseSecret: Range<Int>?
        /// Lower-case names listed in `Connection` (besides hop-by-hop ones): dropped too.
        var connectionNamed: [String] = []
        /// The protocol the client asks to switch to (`Upgrade`, with `Connection: upgrade`, in an
        /// HTTP/1.1 request without a body), passed on to the member; `nil` for none. `h2c` is
        /// never passed on: the relay speaks HTTP/1.1 to members, so such a request is served as
        /// a plain HTTP/1.1 one (RFC 9110 §7.8 lets a server ignore `Upgrade`).
        var upgrade: String?

        var hasBody: Bool { isChunked || (contentLength ?? 0) > 0 }

        /// The client's request id, if it is fit to keep (1–128 bytes).
        var usableRequestID: String? {
            guard let requestID, (1...128).contains(requestID.utf8.count) else { return nil }
            return requestID
        }

        /// For log lines.
        var methodName: String { String(buffer: bytes.getSlice(at: bytes.readerIndex, length: methodEnd)!) }
        var target: String {
            String(buffer: bytes.getSlice(at: bytes.readerIndex + methodEnd + 1, length: targetEnd - methodEnd - 1)!)
        }
    }

    enum Event {
        case head(Head)
        /// Body bytes as they came (chunk framing included).
        case body(ByteBuffer)
        /// The request is complete.
        case end
    }

    private enum State {
        case head
        case body(remaining: Int)
        case chunked(ChunkedScanner)
        /// Its last byte is read: ``Event/end`` is next.
        case end
        /// The request is complete; the next one starts when ``nextRequest()`` is called.
        case done
    }

    let maxHeaderCount: Int
    private var state = State.head
    private var head: HTTPSyntax.HeadGatherer
    /// Body bytes so far, without chunk framing (for the body size limit).
    private(set) var bodyBytes = 0
    /// A read ended in the CR of an empty line before the request line.
    private var pendingCR = false

    init(maxHeadBytes: Int, maxHeaderCount: Int) {
        head = HTTPSyntax.HeadGatherer(maxBytes: maxHeadBytes)
        self.maxHeaderCount = maxHeaderCount
    }

    /// Whether part of a request has been read but not all of it.
    var isMidRequest: Bool {
        switch state {
        case .head: head.isPartial
        case .body, .chunked: true
        case .end, .done: false
        }
    }

    /// Ready for the next request (after ``Event/end``).
    mutating func nextRequest() {
        state = .head
        bodyBytes = 0
    }

    /// The next event from `buffer`, consuming what it covers; `nil` when more bytes are needed
    /// (everything in `buffer` was taken) or the request is complete.
    mutating func next(_ buffer: inout ByteBuffer) throws(RelayError) -> Event? {
        do {
            return try read(&buffer)
        } catch {
            switch error.kind {
            case .malformed: throw RelayError(.badRequest, "malformed request: \(error)")
            case .tooLarge: throw RelayError(.headersTooLarge, error.description)
            case .unsupported: throw RelayError(.notImplemented, error.description)
            }
        }
    }

    private mutating func read(_ buffer: inout ByteBuffer) throws(MalformedHTTP) -> Event? {
        switch state {
        case .head:
            if !head.isPartial, !(try Self.dropLeadingEmptyLines(&buffer, pendingCR: &pendingCR)) { return nil }
            let limit = head.maxBytes
            guard let bytes = try head.take(&buffer, tooLarge: MalformedHTTP(
                "request line and headers exceed the limit of \(limit) bytes", kind: .tooLarge))
            else { return nil }
            let parsed = try Self.parse(bytes, maxHeaderCount: maxHeaderCount)
            if parsed.isChunked {
                state = .chunked(ChunkedScanner())
            } else if let length = parsed.contentLength, length > 0 {
                state = .body(remaining: length)
            } else {
                state = .end
            }
            return .head(parsed)
        case .body(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            bodyBytes += count
            state = count == remaining ? .end : .body(remaining: remaining - count)
            return .body(buffer.readSlice(length: count)!)
        case .chunked(var scanner):
            guard buffer.readableBytes > 0 else { return nil }
            let (consumed, _) = try scanner.scan(buffer)
            bodyBytes = scanner.dataBytes
            state = scanner.isDone ? .end : .chunked(scanner)
            return .body(buffer.readSlice(length: consumed)!)
        case .end:
            state = .done
            return .end
        case .done:
            return nil
        }
    }

    /// RFC 9112 §2.2: a server ignores empty lines before a request line (also one split
    /// between two reads). `false` when there was nothing else yet.
    private static func dropLeadingEmptyLines(_ buffer: inout ByteBuffer, pendingCR: inout Bool) throws(MalformedHTTP) -> Bool {
        while let byte = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) {
            if pendingCR {
                guard byte == 10 else { throw MalformedHTTP("a bare CR before the request line") }
                pendingCR = false
            } else if byte == 13 {
                pendingCR = true
            } else {
                return true
            }
            buffer.moveReaderIndex(forwardBy: 1)
        }
        return false
    }

    // MARK: Parsing a head

    static func parse(_ head: ByteBuffer, maxHeaderCount: Int) throws(MalformedHTTP) -> Head {
        try HTTPSyntax.reading(head) { bytes throws(MalformedHTTP) in try parse(bytes, buffer: head, maxHeaderCount: maxHeaderCount) }
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer, buffer: ByteBuffer, maxHeaderCount: Int) throws(MalformedHTTP) -> Head {
        // "method SP request-target SP HTTP/1.x CRLF"
        var methodEnd = 0
        while methodEnd < bytes.count, HTTPSyntax.isTokenByte(bytes[methodEnd]) { methodEnd += 1 }
        guard methodEnd > 0, methodEnd < bytes.count, bytes[methodEnd] == 32 else { throw MalformedHTTP("invalid method") }
        var targetEnd = methodEnd + 1
        // Visible ASCII, and bytes above it (raw UTF-8 some clients send); no spaces or controls.
        while targetEnd < bytes.count, bytes[targetEnd] > 32, bytes[targetEnd] != 127 { targetEnd += 1 }
        guard targetEnd > methodEnd + 1, targetEnd < bytes.count, bytes[targetEnd] == 32 else {
            throw MalformedHTTP("invalid request target")
        }
        let version = targetEnd + 1
        guard bytes.count >= version + 10, bytes[version] == 72, bytes[version + 1] == 84, bytes[version + 2] == 84,
              bytes[version + 3] == 80, bytes[version + 4] == 47, bytes[version + 5] == 49, bytes[version + 6] == 46,
              bytes[version + 7] == 48 || bytes[version + 7] == 49, bytes[version + 8] == 13, bytes[version + 9] == 10
        else { throw MalformedHTTP("unsupported HTTP version (only HTTP/1.0 and HTTP/1.1)") }
        let isHTTP10 = bytes[version + 7] == 48
        let method: Method
        if methodEnd == 3, bytes[0] == 71, bytes[1] == 69, bytes[2] == 84 {
            method = .get
        } else if methodEnd == 4, bytes[0] == 72, bytes[1] == 69, bytes[2] == 65, bytes[3] == 68 {
            method = .head
        } else if methodEnd == 7, bytes[0] == 67, bytes[1] == 79, bytes[6] == 84, bytes[2] == 78, bytes[3] == 78 {
            throw MalformedHTTP("the relay does not tunnel (CONNECT)", kind: .unsupported)
        } else {
            method = .other
        }
        var head = Head(bytes: buffer, methodEnd: methodEnd, targetEnd: targetEnd, headersStart: version + 10,
                        method: method, isHTTP10: isHTTP10, keepAlive: !isHTTP10)

        var transferEncodings = 0
        var upgradeValue: UnsafeRawBufferPointer?
        var upgradeToken = false
        var closeToken = false
        var keepAliveToken = false
        var count = 0
        var line = version + 10
        // `line` is where the next line starts; the head ends with an empty line.
        while line < bytes.count - 2 {
            let field = try HTTPSyntax.fieldLine(bytes, at: line)
            line = field.next
            count += 1
            guard count <= maxHeaderCount else {
                throw MalformedHTTP("more than \(maxHeaderCount) header fields", kind: .tooLarge)
            }
            let name = UnsafeRawBufferPointer(rebasing: bytes[field.name])
            let value = UnsafeRawBufferPointer(rebasing: bytes[field.value])
            switch name.count {
            case 14 where HopByHopHeaders.equalsLowercase(name, "content-length"):
                guard head.contentLength == nil else { throw MalformedHTTP("more than one Content-Length") }
                guard let length = HTTPSyntax.decimal(value) else { throw MalformedHTTP("invalid Content-Length") }
                head.contentLength = length
            case 17 where HopByHopHeaders.equalsLowercase(name, "transfer-encoding"):
                transferEncodings += 1
                head.needsEditing = true
                var codings = 0
                var lastIsChunked = false
                HTTPSyntax.forEachToken(value) { coding in
                    codings += 1
                    lastIsChunked = HopByHopHeaders.equalsLowercase(coding, "chunked")
                }
                // RFC 9112 §6.3: a request whose final coding isn't chunked has no reliable length.
                guard lastIsChunked else { throw MalformedHTTP("Transfer-Encoding must end in chunked") }
                guard transferEncodings == 1 else { throw MalformedHTTP("more than one Transfer-Encoding") }
                guard codings == 1 else { throw MalformedHTTP("transfer codings other than chunked", kind: .unsupported) }
                // An empty list element beside it: legal, but llhttp-based members refuse it; so do we.
                guard !value.contains(44) else { throw MalformedHTTP("a Transfer-Encoding list with empty elements") }
                head.isChunked = true
            case 6 where HopByHopHeaders.equalsLowercase(name, "expect"):
                head.expectsContinue = HopByHopHeaders.equalsLowercase(value, "100-continue")
                head.needsEditing = true
            case 12 where HopByHopHeaders.equalsLowercase(name, "x-request-id"):
                head.requestID = String(decoding: value, as: UTF8.self)
                head.needsEditing = true
            case 17 where HopByHopHeaders.equalsLowercase(name, "x-forwarded-proto"):
                head.hasForwardedProto = true
                head.needsEditing = true
            case 15 where HopByHopHeaders.equalsLowercase(name, "x-forwarded-for"):
                head.needsEditing = true
            case 18 where HopByHopHeaders.equalsLowercase(name, "shoal-lease-secret"):
                guard head.leaseSecret == nil else { throw MalformedHTTP("more than one Shoal-Lease-Secret") }
                head.leaseSecret = field.value
                head.needsEditing = true
            case 3 where HopByHopHeaders.equalsLowercase(name, "via"):
                head.needsEditing = true
            case 7 where HopByHopHeaders.equalsLowercase(name, "upgrade"):
                if upgradeValue == nil { upgradeValue = value }
                head.needsEditing = true
            case 10 where HopByHopHeaders.equalsLowercase(name, "connection"):
                head.needsEditing = true
                HTTPSyntax.forEachToken(value) { token in
                    if HopByHopHeaders.equalsLowercase(token, "close") {
                        closeToken = true
                    } else if HopByHopHeaders.equalsLowercase(token, "keep-alive") {
                        keepAliveToken = true
                    } else if HopByHopHeaders.equalsLowercase(token, "upgrade") {
                        upgradeToken = true
                    } else if !HopByHopHeaders.isHopByHop(token) {
                        head.connectionNamed.append(String(decoding: token, as: UTF8.self).lowercased())
                    }
                }
            default:
                if HopByHopHeaders.isHopByHop(name) { head.needsEditing = true }
            }
        }
        if head.isChunked {
            if head.contentLength != nil { throw MalformedHTTP("both Content-Length and Transfer-Encoding") }
            if isHTTP10 { throw MalformedHTTP("Transfer-Encoding in an HTTP/1.0 request") }
        }
        head.keepAlive = isHTTP10 ? keepAliveToken && !closeToken : !closeToken
        if let upgradeValue, upgradeToken, !isHTTP10, !head.hasBody, !isH2C(upgradeValue) {
            head.upgrade = String(decoding: upgradeValue, as: UTF8.self)
        }
        return head
    }

    /// An `Upgrade` whose first protocol is `h2c` (cleartext HTTP/2), which the relay refuses by ignoring it.
    private static func isH2C(_ value: UnsafeRawBufferPointer) -> Bool {
        var first: UnsafeRawBufferPointer?
        HTTPSyntax.forEachToken(value) { token in if first == nil { first = token } }
        guard let first else { return true }
        return HopByHopHeaders.equalsLowercase(first, "h2c")
    }
}
