import NIOCore

/// Finds where a chunked body ends (RFC 9112 §7.1), without changing it: chunk sizes and their
/// extensions, the data, the last chunk and the trailer section. The bytes go on as they came,
/// so everything is checked against the grammar, strictly (no whitespace around the size or in
/// extensions, trailer lines as field lines), and every line is bounded.
struct ChunkedScanner {
    private enum State {
        case size(digits: Int)
        /// After `;`: an extension's name.
        case extensionName(started: Bool)
        /// After `=`: a token or a quoted string.
        case extensionValue(started: Bool)
        case quoted
        /// After a backslash in a quoted string.
        case quotedPair
        /// After a closing quote: `;` or the line's end.
        case quotedEnd
        case sizeLF
        case data(remaining: Int)
        case dataCR
        case dataLF
        /// At the start of a trailer line (or of the final empty line).
        case trailerStart
        case trailerName
        case trailerValue
        case trailerLF(empty: Bool)
        case done
    }

    static let maxLineBytes = 4096
    static let maxTrailerBytes = 16 * 1024

    private var state = State.size(digits: 0)
    private var chunkSize = 0
    private var lineBytes = 0
    private var trailerBytes = 0
    /// Chunk data seen so far (the body's length without its framing).
    private(set) var dataBytes = 0

    var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Scans `buffer` from its reader index; returns how many bytes belong to this body (all of
    /// them unless the body ends inside `buffer`), and, with `stopAfterData`, stops after the
    /// first run of chunk data and says where it was (relative to the reader index).
    mutating func scan(_ buffer: ByteBuffer, stopAfterData: Bool = false) throws(MalformedHTTP) -> (consumed: Int, data: Range<Int>?) {
        try HTTPSyntax.reading(buffer) { bytes throws(MalformedHTTP) in try scan(bytes, stopAfterData: stopAfterData) }
    }

    private mutating func scan(_ bytes: UnsafeRawBufferPointer, stopAfterData: Bool) throws(MalformedHTTP) -> (consumed: Int, data: Range<Int>?) {
        var index = 0
        while index < bytes.count {
            switch state {
            case .data(let remaining):
                let take = min(remaining, bytes.count - index)
                index += take
                dataBytes += take
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
            lineBytes += 1
            if lineBytes > Self.maxLineBytes { throw MalformedHTTP("a chunk line over \(Self.maxLineBytes) bytes") }
            switch state {
            case .size(let digits):
                if let digit = Self.hexValue(byte) {
                    guard digits < 15 else { throw MalformedHTTP("chunk size too large") }
                    chunkSize = chunkSize << 4 | digit
                    state = .size(digits: digits + 1)
                } else if digits > 0, byte == 59 {
                    state = .extensionName(started: false)
                } else if digits > 0, byte == 13 {
                    state = .sizeLF
                } else {
                    throw MalformedHTTP("malformed chunk size")
                }
            case .extensionName(let started):
                if HTTPSyntax.isTokenByte(byte) {
                    state = .extensionName(started: true)
                } else if started, byte == 61 {
                    state = .extensionValue(started: false)
                } else if started, byte == 59 || byte == 13 {
                    state = byte == 13 ? .sizeLF : .extensionName(started: false)
                } else {
                    throw MalformedHTTP("malformed chunk extension")
                }
            case .extensionValue(let started):
                if HTTPSyntax.isTokenByte(byte) {
                    state = .extensionValue(started: true)
                } else if !started, byte == 34 {
                    state = .quoted
                } else if started, byte == 59 || byte == 13 {
                    state = byte == 13 ? .sizeLF : .extensionName(started: false)
                } else {
                    throw MalformedHTTP("malformed chunk extension")
                }
            case .quoted:
                // qdtext: HTAB, SP, visible ASCII but `"` and `\`, bytes above ASCII.
                if byte == 34 {
                    state = .quotedEnd
                } else if byte == 92 {
                    state = .quotedPair
                } else if byte < 32 && byte != 9 || byte == 127 {
                    throw MalformedHTTP("malformed chunk extension")
                }
            case .quotedPair:
                if byte < 32 && byte != 9 || byte == 127 { throw MalformedHTTP("malformed chunk extension") }
                state = .quoted
            case .quotedEnd:
                guard byte == 59 || byte == 13 else { throw MalformedHTTP("malformed chunk extension") }
                state = byte == 13 ? .sizeLF : .extensionName(started: false)
            case .sizeLF:
                guard byte == 10 else { throw MalformedHTTP("malformed chunk size line") }
                lineBytes = 0
                state = chunkSize == 0 ? .trailerStart : .data(remaining: chunkSize)
                chunkSize = 0
            case .dataCR:
                guard byte == 13 else { throw MalformedHTTP("chunk data longer than its size") }
                state = .dataLF
            case .dataLF:
                guard byte == 10 else { throw MalformedHTTP("chunk data longer than its size") }
                lineBytes = 0
                state = .size(digits: 0)
            case .trailerStart:
                if byte == 13 {
                    state = .trailerLF(empty: true)
                } else if HTTPSyntax.isTokenByte(byte) {
                    state = .trailerName
                } else {
                    throw MalformedHTTP("malformed trailer line")
                }
            case .trailerName:
                if byte == 58 {
                    state = .trailerValue
                } else if !HTTPSyntax.isTokenByte(byte) {
                    throw MalformedHTTP("malformed trailer name")
                }
            case .trailerValue:
                if byte == 13 {
                    state = .trailerLF(empty: false)
                } else if byte < 32 && byte != 9 || byte == 127 {
                    throw MalformedHTTP("a control byte in a trailer value")
                }
            case .trailerLF(let empty):
                guard byte == 10 else { throw MalformedHTTP("malformed trailer line") }
                trailerBytes += lineBytes
                lineBytes = 0
                if trailerBytes > Self.maxTrailerBytes { throw MalformedHTTP("trailer section too large") }
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
