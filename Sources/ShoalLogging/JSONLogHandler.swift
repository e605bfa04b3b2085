import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `LogHandler` that writes one JSON object per line — `time` (UTC, RFC 3339 with
/// milliseconds), `level`, `label`, `message` and `metadata` — for log collectors
/// (`shoal broker|frontend|worker --log-format json`).
///
/// Metadata values keep their shape: strings as strings, arrays and dictionaries as JSON arrays
/// and objects. Each line goes out in one `write`, so lines of concurrent loggers do not mix.
public struct JSONLogHandler: LogHandler {
    /// Where finished lines go (each ends with a newline).
    public typealias Sink = @Sendable (String) -> Void

    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let label: String
    private let sink: Sink

    public init(label: String, metadataProvider: Logger.MetadataProvider? = nil, sink: @escaping Sink = JSONLogHandler.standardError) {
        self.label = label
        self.metadataProvider = metadataProvider
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let given = event.metadata { merged.merge(given) { _, new in new } }
        sink(Self.line(time: Self.now(), level: event.level, label: label, message: "\(event.message)", metadata: merged))
    }

    /// One log line: a JSON object and a newline. Metadata keys are sorted, so lines diff well.
    public static func line(time: String, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var out = "{\"time\":"
        appendString(time, to: &out)
        out += ",\"level\":"
        appendString(level.rawValue, to: &out)
        out += ",\"label\":"
        appendString(label, to: &out)
        out += ",\"message\":"
        appendString(message, to: &out)
        out += ",\"metadata\":"
        appendValue(.dictionary(metadata), to: &out)
        out += "}\n"
        return out
    }

    /// Writes to stderr in one call per line; a lock keeps long lines whole too.
    public static let standardError: Sink = { line in
        var line = line
        stderrLock.withLock { _ in
            line.withUTF8 { bytes in
                var offset = 0
                while offset < bytes.count {
                    let written = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                    if written < 0, errno == EINTR { continue }
                    guard written > 0 else { return }
                    offset += written
                }
            }
        }
    }

    private static let stderrLock = Mutex<Void>(())

    // MARK: Encoding

    private static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let text):
            appendString(text, to: &out)
        case .stringConvertible(let convertible):
            appendString(convertible.description, to: &out)
        case .array(let values):
            out += "["
            for (index, element) in values.enumerated() {
                if index > 0 { out += "," }
                appendValue(element, to: &out)
            }
            out += "]"
        case .dictionary(let dictionary):
            out += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                appendValue(dictionary[key]!, to: &out)
            }
            out += "}"
        }
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped (RFC 8259).
    static func appendString(_ text: String, to out: inout String) {
        out += "\""
        var plainStart = text.unicodeScalars.startIndex
        var index = plainStart
        let scalars = text.unicodeScalars
        while index < scalars.endIndex {
            let scalar = scalars[index]
            let escape: String? = switch scalar {
            case "\"": "\\\""
            case "\\": "\\\\"
            case "\n": "\\n"
            case "\r": "\\r"
            case "\t": "\\t"
            case _ where scalar.value < 0x20: "\\u00" + hexDigits(scalar.value >> 4) + hexDigits(scalar.value & 0xF)
            default: nil
            }
            if let escape {
                out.unicodeScalars.append(contentsOf: scalars[plainStart..<index])
                out += escape
                plainStart = scalars.index(after: index)
            }
            index = scalars.index(after: index)
        }
        out.unicodeScalars.append(contentsOf: scalars[plainStart..<scalars.endIndex])
        out += "\""
    }

    private static func hexDigits(_ value: UInt32) -> String {
        String(value, radix: 16)
    }

    /// Now, as `2026-11-25T00:51:47.123Z`.
    static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
            + "T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
            + ".\(pad(Int32(spec.tv_nsec / 1_000_000), 3))Z"
    }
}
