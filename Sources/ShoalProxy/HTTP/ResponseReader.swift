import NIOCore

/// A member's answer read straight from the bytes of its connection: the head is parsed once
/// (for the few facts the relay needs) and its bytes are copied to the client with only the
/// hop-by-hop lines changed; the body goes on exactly as it arrived, chunked or not. Nothing is
/// decoded into header strings and re-encoded, which is most of what a relay hop would
/// otherwise spend in user space.
///
/// Strict where a lenient reading could desynchronise the connection (framing, line endings,
/// header syntax): anything else is ``ResponseError`` and the member's connection is closed.
struct ResponseReader {
    /// How the body ends (RFC 9112 §6.3).
    enum Framing: Equatable {
        /// No body: `HEAD`, `204`, `304`.
        case empty
        case length(Int)
        case chunked
        /// Until the member closes the connection.
        case untilClose
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
        case done
    }

    let maxHeadBytes: Int
    private var state = State.head
    private var pendingHead: ByteBuffer?
    private var requestIsHEAD = false
    /// Pass on only the data of a chunked body (for an HTTP/1.0 client, which can't read chunks).
    private var dechunk = false
    /// Bytes already searched for the blank line in ``pendingHead``.
    private var searched = 0

    init(maxHeadBytes: Int = 64 * 1024) {
        self.maxHeadBytes = maxHeadBytes
    }

    /// Ready for the answer to a new request.
    mutating func expectResponse(toHEAD isHEAD: Bool, dechunk: Bool) {
        state = .head
        pendingHead = nil
        searched = 0
        requestIsHEAD = isHEAD
        self.dechunk = dechunk
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
    mutating func next(_ buffer: inout ByteBuffer) throws(ResponseError) -> Event? {
        switch state {
        case .head:
            var head: Head
            repeat {
                guard let headBytes = try takeHead(&buffer) else { return nil }
                head = try Self.parse(headBytes, requestIsHEAD: requestIsHEAD)
                // `101` would switch protocols, which the relay does not relay.
                if head.status == 101 { throw ResponseError("the member switched protocols (101), which the relay does not support") }
                // Interim answers (`100 Continue`, `103 Early Hints`) are dropped: the relay sent its own `100`.
            } while head.status < 200
            switch head.framing {
            case .empty, .length(0): state = .done
            case .length(let length): state = .body(remaining: length)
            case .chunked: state = .chunked(ChunkedScanner())
            case .untilClose: state = .untilClose
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
        case .untilClose:
            guard buffer.readableBytes > 0 else { return nil }
            return .body(buffer.readSlice(length: buffer.readableBytes)!)
        case .done:
            return nil
        }
    }

    /// The head once its blank line is in, without copying when it came in one read (the usual case).
    private mutating func takeHead(_ buffer: inout ByteBuffer) throws(ResponseError) -> ByteBuffer? {
        if pendingHead == nil, let end = Self.blankLineEnd(in: buffer, from: 0) {
            return buffer.readSlice(length: end)
        }
        var pending = pendingHead ?? ByteBuffer()
        let before = pending.readableBytes
        pending.writeImmutableBuffer(buffer)
        if let end = Self.blankLineEnd(in: pending, from: max(0, searched - 3)) {
            buffer.moveReaderIndex(forwardBy: end - before)
            pendingHead = nil
            searched = 0
            return pending.readSlice(length: end)
        }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        guard pending.readableBytes <= maxHeadBytes else {
            throw ResponseError("the member's response head exceeds \(maxHeadBytes) bytes")
        }
        searched = pending.readableBytes
        pendingHead = pending
        return nil
    }

    /// The offset just past the first `CRLF CRLF` at or after `start`, if any.
    private static func blankLineEnd(in buffer: ByteBuffer, from start: Int) -> Int? {
        buffer.withUnsafeReadableBytes { bytes -> Int? in
            var index = start
            while index + 3 < bytes.count {
                // Step by the byte at +3: anything but LF or CR there rules out four positions at once.
                let fourth = bytes[index + 3]
                if fourth != 10 {
                    index += fourth == 13 ? 1 : 4
                    continue
                }
                if bytes[index] == 13, bytes[index + 1] == 10, bytes[index + 2] == 13 { return index + 4 }
                index += 2
            }
            return nil
        }
    }

    // MARK: Parsing a head

    static func parse(_ head: ByteBuffer, requestIsHEAD: Bool) throws(ResponseError) -> Head {
        var result = Result<Head, ResponseError>.failure(ResponseError("empty response head"))
        head.withUnsafeReadableBytes { bytes in
            result = Result { () throws(ResponseError) in try parse(bytes, buffer: head, requestIsHEAD: requestIsHEAD) }
        }
        return try result.get()
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer, buffer: ByteBuffer, requestIsHEAD: Bool) throws(ResponseError) -> Head {
        // "HTTP/1.x SP 3DIGIT [SP reason] CRLF"
        guard bytes.count >= 16, bytes[0] == 72, bytes[1] == 84, bytes[2] == 84, bytes[3] == 80, bytes[4] == 47,
              bytes[5] == 49, bytes[6] == 46, bytes[7] == 48 || bytes[7] == 49, bytes[8] == 32,
              let status = threeDigits(bytes, at: 9), bytes[12] == 32 || bytes[12] == 13
        else { throw ResponseError("malformed status line") }
        let isHTTP10 = bytes[7] == 48
        guard var line = lineEnd(bytes, from: 12) else { throw ResponseError("malformed status line") }

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
            let start = line
            guard let end = lineEnd(bytes, from: start) else { throw ResponseError("malformed header line") }
            line = end
            let contentEnd = end - 2
            var colon = start
            while colon < contentEnd, isTokenByte(bytes[colon]) { colon += 1 }
            guard colon > start, colon < contentEnd, bytes[colon] == 58 else {
                throw ResponseError(bytes[start] == 32 || bytes[start] == 9
                    ? "obsolete line folding in a response header" : "malformed response header name")
            }
            var valueStart = colon + 1
            var valueEnd = contentEnd
            while valueStart < valueEnd, bytes[valueStart] == 32 || bytes[valueStart] == 9 { valueStart += 1 }
            while valueEnd > valueStart, bytes[valueEnd - 1] == 32 || bytes[valueEnd - 1] == 9 { valueEnd -= 1 }
            for index in valueStart..<valueEnd where bytes[index] == 0 || bytes[index] == 10 || bytes[index] == 13 {
                throw ResponseError("invalid byte in a response header value")
            }
            let name = UnsafeRawBufferPointer(rebasing: bytes[start..<colon])
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd])
            switch name.count {
            case 14 where HopByHopHeaders.equalsLowercase(name, "content-length"):
                guard let length = decimal(value) else { throw ResponseError("invalid Content-Length") }
                if let contentLength, contentLength != length { throw ResponseError("conflicting Content-Length values") }
                contentLength = length
            case 17 where HopByHopHeaders.equalsLowercase(name, "transfer-encoding"):
                hasTransferEncoding = true
                needsEditing = true
                isChunked = lastTokenIsChunked(value)
            case 10 where HopByHopHeaders.equalsLowercase(name, "connection"):
                needsEditing = true
                forEachToken(value) { token in
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

    /// The index just past the next CRLF at or after `start`; a bare CR or LF is malformed.
    @inline(__always)
    private static func lineEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        var index = start
        while index < bytes.count {
            switch bytes[index] {
            case 13: return index + 1 < bytes.count && bytes[index + 1] == 10 ? index + 2 : nil
            case 10: return nil
            default: index += 1
            }
        }
        return nil
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

    static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= 48, byte <= 57 else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        return value
    }

    /// RFC 9110 `tchar`.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 48...57, 65...90, 97...122: true
        case 33, 35, 36, 37, 38, 39, 42, 43, 45, 46, 94, 95, 96, 124, 126: true
        default: false
        }
    }

    private static func forEachToken(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        while start < value.count {
            var end = start
            while end < value.count, value[end] != 44 { end += 1 }
            var first = start
            var last = end
            while first < last, value[first] == 32 || value[first] == 9 { first += 1 }
            while last > first, value[last - 1] == 32 || value[last - 1] == 9 { last -= 1 }
            if last > first { body(UnsafeRawBufferPointer(rebasing: value[first..<last])) }
            start = end + 1
        }
    }

    private static func lastTokenIsChunked(_ value: UnsafeRawBufferPointer) -> Bool {
        var last: UnsafeRawBufferPointer?
        forEachToken(value) { last = $0 }
        guard let last else { return false }
        return HopByHopHeaders.equalsLowercase(last, "chunked")
    }
}

/// A malformed answer from a member: its connection can't be trusted any further.
struct ResponseError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Finds where a chunked body ends (RFC 9112 §7.1), without changing it: chunk sizes and their
/// extensions, the data, the last chunk and the trailer section, each line bounded.
struct ChunkedScanner {
    private enum State {
        case size(digits: Int, value: Int)
        /// After the size: extensions, up to CR.
        case sizeLine(value: Int)
        case sizeLF(value: Int)
        case data(remaining: Int)
        case dataCR
        case dataLF
        /// At the start of a trailer line (or of the final empty line).
        case trailerStart
        case trailerLine
        case trailerLF(empty: Bool)
        case done
    }

    static let maxLineBytes = 4096
    static let maxTrailerBytes = 16 * 1024

    private var state = State.size(digits: 0, value: 0)
    private var lineBytes = 0
    private var trailerBytes = 0

    var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Scans `buffer` from its reader index; returns how many bytes belong to this body (all of
    /// them unless the body ends inside `buffer`), and, with `stopAfterData`, stops after the
    /// first run of chunk data and says where it was (relative to the reader index).
    mutating func scan(_ buffer: ByteBuffer, stopAfterData: Bool = false) throws(ResponseError) -> (consumed: Int, data: Range<Int>?) {
        var result = Result<(consumed: Int, data: Range<Int>?), ResponseError>.success((0, nil))
        buffer.withUnsafeReadableBytes { bytes in
            result = Result { () throws(ResponseError) in try scan(bytes, stopAfterData: stopAfterData) }
        }
        return try result.get()
    }

    private mutating func scan(_ bytes: UnsafeRawBufferPointer, stopAfterData: Bool) throws(ResponseError) -> (consumed: Int, data: Range<Int>?) {
        var index = 0
        while index < bytes.count {
            switch state {
            case .data(let remaining):
                let take = min(remaining, bytes.count - index)
                index += take
                state = take == remaining ? .dataCR : .data(remaining: remaining - take)
                if stopAfterData { return (index, (index - take)..<index) }
                continue
            case .done:
                return (index, nil)
            default:
                break
            }
            let byte = bytes[index]
            index += 1
            switch state {
            case .size(let digits, let value):
                if let digit = Self.hexValue(byte) {
                    guard digits < 15 else { throw ResponseError("chunk size too large") }
                    state = .size(digits: digits + 1, value: value << 4 | digit)
                } else if digits > 0, byte == 59 || byte == 32 || byte == 9 {
                    lineBytes = 0
                    state = .sizeLine(value: value)
                } else if digits > 0, byte == 13 {
                    state = .sizeLF(value: value)
                } else {
                    throw ResponseError("malformed chunk size")
                }
            case .sizeLine(let value):
                lineBytes += 1
                if byte == 13 {
                    state = .sizeLF(value: value)
                } else if byte == 10 || byte == 0 || lineBytes > Self.maxLineBytes {
                    throw ResponseError("malformed chunk extension")
                }
            case .sizeLF(let value):
                guard byte == 10 else { throw ResponseError("malformed chunk size line") }
                state = value == 0 ? .trailerStart : .data(remaining: value)
            case .dataCR:
                guard byte == 13 else { throw ResponseError("chunk data longer than its size") }
                state = .dataLF
            case .dataLF:
                guard byte == 10 else { throw ResponseError("chunk data longer than its size") }
                state = .size(digits: 0, value: 0)
            case .trailerStart:
                state = byte == 13 ? .trailerLF(empty: true) : .trailerLine
                trailerBytes += 1
                if byte == 10 { throw ResponseError("malformed trailer section") }
            case .trailerLine:
                trailerBytes += 1
                if byte == 13 {
                    state = .trailerLF(empty: false)
                } else if byte == 10 || byte == 0 {
                    throw ResponseError("malformed trailer line")
                }
                if trailerBytes > Self.maxTrailerBytes { throw ResponseError("trailer section too large") }
            case .trailerLF(let empty):
                guard byte == 10 else { throw ResponseError("malformed trailer line") }
                state = empty ? .done : .trailerStart
            case .data, .done:
                break  // Handled above.
            }
        }
        return (index, nil)
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case 48...57: Int(byte - 48)
        case 65...70: Int(byte - 55)
        case 97...102: Int(byte - 87)
        default: nil
        }
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
            var line = statusLineEnd
            while line < headersEnd {
                var end = line
                while bytes[end] != 10 { end += 1 }
                end += 1
                var colon = line
                while bytes[colon] != 58 { colon += 1 }
                let name = UnsafeRawBufferPointer(rebasing: bytes[line..<colon])
                if !dropsHeader(name, passesChunks: passesChunks, memberHeader: memberHeader?.name) {
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[line..<end]))
                }
                line = end
            }
        }
        if http10 {
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
        if HopByHopHeaders.isHopByHop(name) { return true }
        if let memberHeader, HopByHopHeaders.sameName(name, memberHeader) { return true }
        return connectionNamed.contains { HopByHopHeaders.sameName(name, $0) }
    }
}
