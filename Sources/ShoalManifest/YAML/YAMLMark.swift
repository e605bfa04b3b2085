import ShoalCore

/// Where a YAML node starts in its file: 1-based line and column (columns count characters).
public struct YAMLMark: Sendable, Hashable, CustomStringConvertible {
    /// The file as the user named it; it prefixes every diagnostic.
    public var file: String
    /// 1-based line.
    public var line: Int
    /// 1-based column, in characters.
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `file:line:column`, as in diagnostics.
    public var description: String { "\(file):\(line):\(column)" }

    /// `line:column`, for pointing at another place in the same file.
    public var lineAndColumn: String { "\(line):\(column)" }

    /// A problem at this position.
    public func diagnostic(_ message: String) -> Diagnostic {
        Diagnostic(file: file, line: line, column: column, message: message)
    }
}
