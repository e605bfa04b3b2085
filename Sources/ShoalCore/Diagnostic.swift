/// A problem in a file a user wrote, with its position: `file:line:column: message`.
public struct Diagnostic: Error, Sendable, Hashable, CustomStringConvertible {
    public var file: String
    /// 1-based; 0 when the problem has no single position (e.g. an unreadable file).
    public var line: Int
    /// 1-based; 0 when the problem has no single position.
    public var column: Int
    public var message: String

    public init(file: String, line: Int = 0, column: Int = 0, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)"
    }
}
