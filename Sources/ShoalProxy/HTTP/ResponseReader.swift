import NIOCore

/// A member's answer read straight from the bytes of its connection: the head is parsed once
/// (for the few facts the relay needs) and its bytes are copied to the client with only the
/// hop-by-hop lines changed; the body goes on exactly as it arrived, chunked or not. Nothing is
/// decoded into header strings and re-encoded, which is most of what a relay hop would
/// otherwise spend in user space.
///
/// Strict where a lenient reading could desynchronise the connection (framing, line endings,
/// header syntax): anything else is ``MalformedHTTP`` and the member's connection is closed.
struct ResponseReader {
    /// How the body ends (RFC 9112 §6.3).
    enum Framing: Equatable {
        /// No body: `HEAD`, `204`, `304`.
        case empty
        case length(Int)
        case chunked
        /// Until the member closes the connection.
        case untilClose
        /// `101 Switching Protocols` to a request that asked for it: from here on, bytes both
        /// ways, until either side closes.
        case tunnel
    }

    /// The parts of a head the relay acts on; ``bytes`` holds the whole head for copying.
    struct Head {
        /// Status line to blank line, inclusive.
        var bytes: ByteBuffer
        var status: UInt
        var framing: Framing
        /// The member allows another request on this connection.
        var keepsAlive: Bool
        /// Some header must not be copied as it is (hop-by-hop, or `Content-Length` beside
        /// `Transfer-Encoding`); `false` in the usual case, where the header block is copied whole.
        var needsEditing: Bool
        /// The body is transfer-coded (so a `Content-Length` beside it is dropped).
        var hasTransferEncoding: Bool
        /// Lower-case names listed in `Connection` (besides `close` and `keep-alive`): dropped too.
        var connectionNamed: [String] = []
        /// `X-Shoal-Error`, read only on `502`–`504` (a worker's own refusal).
        var shoalError: String?
    }

    enum Event {
        case head(Head)
        /// Body bytes as they came (chunk framing included, unless dechunking). The answer's end
        /// is ``isDone`` (or, for ``Framing/untilClose``, the member closing).
        case body(ByteBuffer)
    }

    private enum State {
        case head
        case body(remaining: Int)
        case chunked(ChunkedScanner)
        case untilClose
        case tunnel
        case done
    }

    private var state = State.head
    /// The request asked to switch protocols, so a `101` opens a tunnel.
    private var upgradeRequested = false
    private var head: HTTPSyntax.HeadGatherer
    private var requestIsHEAD = false
    /// Pass on only the data of a chunked body (for an HTTP/1.0 client, which can't read chunks).
    private var dechunk = false

    init(maxHeadBytes: Int = 64 * 1024) {
        head = HTTPSyntax.HeadGatherer(maxBytes: maxHeadBytes)
    }

    /// Ready for the answer to a new request.
    mutating func expectResponse(toHEAD isHEAD: Bool, dechunk: Bool, upgrade: Bool = false) {
        state = .head
        head.reset()
        requestIsHEAD = isHEAD
        self.dechunk = dechunk
        upgradeRequested = upgrade
    }

    /// Whether the answer is complete.
    var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Whether the answer ends when the member closes (so a close is its end, not a failure).
    var endsAtClose: Bool {
        if case .untilClose = state { return true }
        return false
    }

    /// The next event from `buffer`, consuming what it covers; `nil` when more bytes are needed
    /// (everything in `buffer` was taken) or the answer is done.
    mutating func next(_ buffer: inout ByteBuffer) throws(MalformedHTTP) -> Event? {
        switch state {
        case .head:
            var head: Head
            repeat {
                guard let headBytes = try self.head.take(&buffer, tooLarge: MalformedHTTP("the member's response head is too large"))
                else { return nil }
                head = try Self.parse(headBytes, requestIsHEAD: requestIsHEAD)
                if head.status == 101 {
                    guard upgradeRequested else { throw MalformedHTTP("the member switched protocols (101) unasked") }
                    head.framing = .tunnel
                    head.keepsAlive = false
                    state = .tunnel
                    return .head(head)
                }
                // Interim answers (`100 Continue`, `103 Early Hints`) are dropped: the relay sent its own `100`.
            } while head.status < 200
            switch head.framing {
            case .empty, .length(0): state = .done
            case .length(let length): state = .body(remaining: length)
            case .chunked: state = .chunked(ChunkedScanner())
            case .untilClose: state = .untilClose
            case .tunnel: state = .tunnel
            }
            return .head(head)
        case .body(let remaining):
            guard buffer.readableBytes > 0 else { return nil }
            let count = min(remaining, buffer.readableBytes)
            let slice = buffer.readSlice(length: count)!
            state = count == remaining ? .done : .body(remaining: remaining - count)
            return .body(slice)
        case .chunked(var scanner):
            while buffer.readableBytes > 0 {
                let (consumed, data) = try scanner.scan(buffer, stopAfterData: dechunk)
                state = scanner.isDone ? .done : .chunked(scanner)
                let slice = buffer.readSlice(length: consumed)!
                guard dechunk else { return .body(slice) }
                if let data { return .body(slice.getSlice(at: slice.readerIndex + data.lowerBound, length: data.count)!) }
                if scanner.isDone { return nil }
            }
            return nil
        case .untilClose, .tunnel:
            guard buffer.readableBytes > 0 else { return nil }
            return .body(buffer.readSlice(length: buffer.readableBytes)!)
        case .done:
            return nil
        }
    }

    // MARK: Parsing a head

    static func parse(_ head: ByteBuffer, requestIsHEAD: Bool) throws(MalformedHTTP) -> Head {
        try HTTPSyntax.reading(head) { bytes throws(MalformedHTTP) in try parse(bytes, buffer: head, requestIsHEAD: requestIsHEAD) }
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer, buffer: ByteBuffer, requestIsHEAD: Bool) throws(MalformedHTTP) -> Head {
        // "HTTP/1.x SP 3DIGIT [SP reason] CRLF"
        guard bytes.count >= 16, bytes[0] == 72, bytes[1] == 84, bytes[2] == 84, bytes[3] == 80, bytes[4] == 47,
              bytes[5] == 49, bytes[6] == 46, bytes[7] == 48 || bytes[7] == 49, bytes[8] == 32,
              let status = threeDigits(bytes, at: 9), bytes[12] == 32 || bytes[12] == 13
        else { throw MalformedHTTP("malformed status line") }
        let isHTTP10 = bytes[7] == 48
        guard var line = HTTPSyntax.lineEnd(bytes, from: 12) else { throw MalformedHTTP("malformed status line") }

        var contentLength: Int?
        var hasTransferEncoding = false
        var isChunked = false
        var closeToken = false
        var keepAliveToken = false
        var needsEditing = false
        var connectionNamed: [String] = []
        var shoalError: String?
        // `line` is the end of the previous line's CRLF; the head ends with an empty line.
        while line < bytes.count - 2 {
            let field = try HTTPSyntax.fieldLine(bytes, at: line)
            line = field.next
            let name = UnsafeRawBufferPointer(rebasing: bytes[field.name])
            let value = UnsafeRawBufferPointer(rebasing: bytes[field.value])
            switch name.count {
            case 14 where HopByHopHeaders.equalsLowercase(name, "content-length"):
                guard let length = HTTPSyntax.decimal(value) else { throw MalformedHTTP("invalid Content-Length") }
                if let contentLength, contentLength != length { throw MalformedHTTP("conflicting Content-Length values") }
                contentLength = length
            case 17 where HopByHopHeaders.equalsLowercase(name, "transfer-encoding"):
                hasTransferEncoding = true
                needsEditing = true
                isChunked = lastTokenIsChunked(value)
            case 10 where HopByHopHeaders.equalsLowercase(name, "connection"):
                needsEditing = true
                HTTPSyntax.forEachToken(value) { token in
                    if HopByHopHeaders.equalsLowercase(token, "close") {
                        closeToken = true
                    } else if HopByHopHeaders.equalsLowercase(token, "keep-alive") {
                        keepAliveToken = true
                    } else {
                        connectionNamed.append(String(decoding: token, as: UTF8.self).lowercased())
                    }
                }
            case 13 where status >= 502 && status <= 504 && HopByHopHeaders.equalsLowercase(name, "x-shoal-error"):
                shoalError = String(decoding: value, as: UTF8.self)
            default:
                if HopByHopHeaders.isHopByHop(name) { needsEditing = true }
            }
        }
        if hasTransferEncoding, contentLength != nil { needsEditing = true }  // Content-Length is dropped then.
        if !connectionNamed.isEmpty { needsEditing = true }

        let framing: Framing
        if requestIsHEAD || status == 204 || status == 304 || status < 200 {
            framing = .empty
        } else if hasTransferEncoding {
            framing = isChunked ? .chunked : .untilClose
        } else if let contentLength {
            framing = .length(contentLength)
        } else {
            framing = .untilClose
        }
        let keepsAlive = (isHTTP10 ? keepAliveToken && !closeToken : !closeToken) && framing != .untilClose
        return Head(bytes: buffer, status: status, framing: framing, keepsAlive: keepsAlive, needsEditing: needsEditing,
                    hasTransferEncoding: hasTransferEncoding,
                    connectionNamed: connectionNamed, shoalError: shoalError)
    }

    private static func threeDigits(_ bytes: UnsafeRawBufferPointer, at index: Int) -> UInt? {
        var value: UInt = 0
        for offset in 0..<3 {
            let byte = bytes[index + offset]
            guard byte >= 48, byte <= 57 else { return nil }
            value = value * 10 + UInt(byte - 48)
        }
        return value >= 100 ? value : nil
    }

    private static func lastTokenIsChunked(_ value: UnsafeRawBufferPointer) -> Bool {
        var last: UnsafeRawBufferPointer?
        HTTPSyntax.forEachToken(value) { last = $0 }
        guard let last else { return false }
        return HopByHopHeaders.equalsLowercase(last, "chunked")
    }
}

extension ResponseReader.Head {
    /// Writes the head the client gets: the member's status line in the client's HTTP version,
    /// its headers copied as they are but for the hop-by-hop ones, then the relay's own
    /// `Connection`, `Via` and member headers.
    func write(into out: inout ByteBuffer, http10: Bool, keepAlive: Bool, passesChunks: Bool, via: String?,
               memberHeader: (name: String, value: String)?) {
        bytes.withUnsafeReadableBytes { bytes in
            var statusLineEnd = 12
            while bytes[statusLineEnd] != 10 { statusLineEnd += 1 }
            statusLineEnd += 1
            out.writeStaticString(http10 ? "HTTP/1.0" : "HTTP/1.1")
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[8..<statusLineEnd]))
            let headersEnd = bytes.count - 2
            guard needsEditing || memberHeader != nil else {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[statusLineEnd..<headersEnd]))
                return
            }
            HTTPSyntax.forEachCheckedLine(bytes, in: statusLineEnd..<headersEnd) { name, line in
                if !dropsHeader(name, passesChunks: passesChunks, memberHeader: memberHeader?.name) { out.writeBytes(line) }
            }
        }
        if framing == .tunnel {
            out.writeStaticString("connection: upgrade\r\n")
        } else if http10 {
            if keepAlive { out.writeStaticString("connection: keep-alive\r\n") }
        } else if !keepAlive {
            out.writeStaticString("connection: close\r\n")
        }
        if let via {
            out.writeStaticString("via: ")
            out.writeString(via)
            out.writeStaticString("\r\n")
        }
        if let memberHeader {
            out.writeString(memberHeader.name)
            out.writeStaticString(": ")
            out.writeString(memberHeader.value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("\r\n")
    }

    private func dropsHeader(_ name: UnsafeRawBufferPointer, passesChunks: Bool, memberHeader: String?) -> Bool {
        if HopByHopHeaders.equalsLowercase(name, "transfer-encoding") { return !passesChunks }
        if HopByHopHeaders.equalsLowercase(name, "content-length") { return hasTransferEncoding }
        if framing == .tunnel, HopByHopHeaders.equalsLowercase(name, "upgrade") { return false }
        if HopByHopHeaders.isHopByHop(name) { return true }
        if let memberHeader, HopByHopHeaders.sameName(name, memberHeader) { return true }
        return connectionNamed.contains { HopByHopHeaders.sameName(name, $0) }
    }
}
