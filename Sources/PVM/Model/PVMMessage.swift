/// A control message between tasks: a tag and a list of typed fields.
///
/// On the wire it is packed with libpvm3's typed calls in XDR encoding (a format marker, the
/// field count, then each field as a type code and its value), so it crosses hosts of any
/// architecture. Strings are sent as a byte count and UTF-8 bytes.
public struct PVMMessage: Hashable, Sendable {
    /// One value of a message.
    public enum Field: Hashable, Sendable {
        /// A 64-bit integer (counts, tids, deadlines in milliseconds, …).
        case int(Int64)
        /// A double (loads, ratios).
        case double(Double)
        /// A string of any length, UTF-8 on the wire.
        case string(String)

        /// The value if this is an `.int`.
        public var intValue: Int64? {
            if case .int(let value) = self { return value }
            return nil
        }

        /// The value if this is a `.double`.
        public var doubleValue: Double? {
            if case .double(let value) = self { return value }
            return nil
        }

        /// The value if this is a `.string`.
        public var stringValue: String? {
            if case .string(let value) = self { return value }
            return nil
        }
    }

    /// Tags at or above this value are the engine's own (notifications); sending one is an error.
    public static let reservedTags: Int32 = 0x7FFF_0000

    /// The application's tag, `0 ..< reservedTags`.
    public var tag: Int32
    /// The body.
    public var fields: [Field]

    /// A message with `tag` and `fields`.
    public init(tag: Int32, fields: [Field] = []) {
        self.tag = tag
        self.fields = fields
    }
}

/// A message as received, with the task that sent it.
public struct PVMReceivedMessage: Hashable, Sendable {
    /// The task that sent it.
    public let source: PVMTaskID
    /// What it sent.
    public let message: PVMMessage

    /// A received message.
    public init(source: PVMTaskID, message: PVMMessage) {
        self.source = source
        self.message = message
    }

    /// The message's tag.
    public var tag: Int32 { message.tag }
    /// The message's fields.
    public var fields: [PVMMessage.Field] { message.fields }
}
