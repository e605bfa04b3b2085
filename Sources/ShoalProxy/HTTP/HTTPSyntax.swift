import NIOCore

/// The byte-level grammar both readers share (RFC 9110 §5, RFC 9112 §2–5): line ends, tokens,
/// field lines, numbers, and gathering a head until its blank line. Strict wherever a lenient
/// reading could let two parsers disagree on where a message ends: bare CR or LF, whitespace
/// before a colon, folded lines and control bytes are all malformed.
enum HTTPSyntax {
    /// One field line: its name and value (without the whitespace around it), and where the next line starts.
    struct FieldLine {
        var name: Range<Int>
        var value: Range<Int>
        var next: Int
    }

    /// The field line starting at `start`.
    @inline(__always)
    static func fieldLine(_ bytes: UnsafeRawBufferPointer, at start: Int) throws(MalformedHTTP) -> FieldLine {
        guard let next = lineEnd(bytes, from: start) else { throw MalformedHTTP("a header line does not end in CRLF") }
        let contentEnd = next - 2
        var colon = start
        while colon < contentEnd, isTokenByte(bytes[colon]) { colon += 1 }
        guard colon > start, colon < contentEnd, bytes[colon] == 58 else {
            throw MalformedHTTP(bytes[start] == 32 || bytes[start] == 9 ? "obsolete line folding" : "malformed header name")
        }
        var valueStart = colon + 1
        var valueEnd = contentEnd
        while valueStart < valueEnd, bytes[valueStart] == 32 || bytes[valueStart] == 9 { valueStart += 1 }
        while valueEnd > valueStart, bytes[valueEnd - 1] == 32 || bytes[valueEnd - 1] == 9 { valueEnd -= 1 }
        for index in valueStart..<valueEnd {
            let byte = bytes[index]
            // Control bytes but HTAB (CR and LF can't be here: `lineEnd` stopped at them).
            if byte < 32 && byte != 9 || byte == 127 { throw MalformedHTTP("a control byte in a header value") }
        }
        return FieldLine(name: start..<colon, value: valueStart..<valueEnd, next: next)
    }

    /// Calls `body` with each line of a header block already checked by ``fieldLine(_:at:)`` (so
    /// each has a colon and ends in CRLF): the line's name, and the whole line with its CRLF.
    static func forEachCheckedLine(
        _ bytes: UnsafeRawBufferPointer, in range: Range<Int>,
        _ body: (_ name: UnsafeRawBufferPointer, _ line: UnsafeRawBufferPointer) -> Void
    ) {
        var line = range.lowerBound
        while line < range.upperBound {
            var end = line
            while bytes[end] != 10 { end += 1 }
            end += 1
            var colon = line
            while bytes[colon] != 58 { colon += 1 }
            body(UnsafeRawBufferPointer(rebasing: bytes[line..<colon]), UnsafeRawBufferPointer(rebasing: bytes[line..<end]))
            line = end
        }
    }

    /// The value of a checked line (see ``forEachCheckedLine(_:in:_:)``), without the whitespace around it.
    static func value(of line: UnsafeRawBufferPointer, nameLength: Int) -> UnsafeRawBufferPointer {
        var start = nameLength + 1
        var end = line.count - 2
        while start < end, line[start] == 32 || line[start] == 9 { start += 1 }
        while end > start, line[end - 1] == 32 || line[end - 1] == 9 { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: line[start..<end])
    }

    /// `body` with `buffer`'s readable bytes, passing its typed error on (which
    /// `withUnsafeReadableBytes`, being `rethrows`, would widen to `any Error`).
    static func reading<Value>(
        _ buffer: ByteBuffer, _ body: (UnsafeRawBufferPointer) throws(MalformedHTTP) -> Value
    ) throws(MalformedHTTP) -> Value {
        var result: Result<Value, MalformedHTTP>?
        buffer.withUnsafeReadableBytes { bytes in
            result = Result { () throws(MalformedHTTP) in try body(bytes) }
        }
        return try result!.get()
    }

    /// The index just past the next CRLF at or after `start`; a bare CR or LF is malformed (`nil`).
    @inline(__always)
    static func lineEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
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

    /// RFC 9110 `tchar`.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 48...57, 65...90, 97...122: true
        case 33, 35, 36, 37, 38, 39, 42, 43, 45, 46, 94, 95, 96, 124, 126: true
        default: false
        }
    }

    /// A non-negative decimal of at most 18 digits, nothing else (no sign, no spaces).
    static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= 48, byte <= 57 else { return nil }
            value = value * 10 + Int(byte - 48)
        }
        return value
    }

    /// Calls `body` with each element of a comma-separated list, trimmed, empty ones skipped.
    static func forEachToken(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
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

    /// The offset just past the first `CRLF CRLF` at or after `start`, if any.
    static func blankLineEnd(in buffer: ByteBuffer, from start: Int) -> Int? {
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

    /// Gathers a head (start line to blank line) across reads, copying only when it is split.
    struct HeadGatherer {
        let maxBytes: Int
        private var pending: ByteBuffer?
        /// Bytes of ``pending`` already searched for the blank line.
        private var searched = 0

        init(maxBytes: Int) {
            self.maxBytes = maxBytes
        }

        /// Part of a head is waiting for the rest.
        var isPartial: Bool { pending != nil }

        mutating func reset() {
            pending = nil
            searched = 0
        }

        /// The whole head once its blank line is in (taken from `buffer`), else `nil` (all of
        /// `buffer` was kept). `tooLarge` is thrown once more than ``maxBytes`` wait.
        mutating func take(_ buffer: inout ByteBuffer, tooLarge: @autoclosure () -> MalformedHTTP) throws(MalformedHTTP) -> ByteBuffer? {
            guard buffer.readableBytes > 0 else { return nil }
            if pending == nil, let end = HTTPSyntax.blankLineEnd(in: buffer, from: 0) {
                guard end <= maxBytes else { throw tooLarge() }
                return buffer.readSlice(length: end)
            }
            var gathered = pending ?? ByteBuffer()
            let before = gathered.readableBytes
            gathered.writeImmutableBuffer(buffer)
            if let end = HTTPSyntax.blankLineEnd(in: gathered, from: max(0, searched - 3)) {
                guard end <= maxBytes else { throw tooLarge() }
                buffer.moveReaderIndex(forwardBy: end - before)
                reset()
                return gathered.readSlice(length: end)
            }
            buffer.moveReaderIndex(to: buffer.writerIndex)
            guard gathered.readableBytes <= maxBytes else { throw tooLarge() }
            searched = gathered.readableBytes
            pending = gathered
            return nil
        }
    }
}

/// Bytes that break HTTP's grammar: the connection they came on can't be trusted any further.
struct MalformedHTTP: Error, CustomStringConvertible {
    enum Kind {
        /// Breaks the grammar (a request gets `400`).
        case malformed
        /// Over a size limit (`431`).
        case tooLarge
        /// Well-formed but something the relay does not do (`501`).
        case unsupported
    }

    let description: String
    let kind: Kind

    init(_ description: String, kind: Kind = .malformed) {
        self.description = description
        self.kind = kind
    }
}
