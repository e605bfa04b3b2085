import ShoalAPI
/// A plain-text table for the CLI: a header row, columns padded to their widest cell, numbers
/// right-aligned, and long cells cut with "…" so each line fits a terminal's width.
public struct TextTable: Sendable, Hashable {
    public enum Alignment: Sendable, Hashable {
        case left
        /// For numbers, so their digits line up.
        case right
    }

    public struct Column: Sendable, Hashable {
        public var title: String
        public var alignment: Alignment
        /// Whether cells may be cut to fit a width: names and lists yes; numbers and states, whose
        /// meaning a cut would change, no.
        public var truncatable: Bool

        public init(_ title: String, alignment: Alignment = .left, truncatable: Bool = false) {
            self.title = title
            self.alignment = alignment
            self.truncatable = truncatable
        }
    }

    public var columns: [Column]
    public var rows: [[String]]

    /// Between two columns.
    public static let gap = "  "
    /// A cut column keeps at least this many characters (or its title's, if longer).
    static let narrowest = 4

    public init(columns: [Column], rows: [[String]] = []) {
        self.columns = columns
        self.rows = rows
    }

    /// Adds a row; missing cells are empty, extra ones dropped.
    public mutating func append(_ row: [String]) {
        rows.append(Array((row + Array(repeating: "", count: max(0, columns.count - row.count))).prefix(columns.count)))
    }

    /// The table, one line per row after the header, without trailing spaces.
    ///
    /// With a `width`, the widest truncatable columns are narrowed first; a line still too long
    /// (too few truncatable columns) is cut at the width.
    public func render(width: Int? = nil) -> String {
        let widths = fittedWidths(width: width)
        let lines = ([columns.map(\.title)] + rows).map { cells in
            let padded = zip(columns, zip(cells, widths)).map { column, cellAndWidth in
                let (cell, width) = cellAndWidth
                let text = Self.cut(cell, to: width)
                let padding = String(repeating: " ", count: max(0, width - text.count))
                return column.alignment == .right ? padding + text : text + padding
            }
            let line = String(padded.joined(separator: Self.gap).reversed().drop(while: { $0 == " " }).reversed())
            return width.map { Self.cut(line, to: $0) } ?? line
        }
        return lines.joined(separator: "\n")
    }

    /// Each column's width: its widest cell, narrowed (widest truncatable column first) to fit.
    func fittedWidths(width: Int?) -> [Int] {
        var widths = columns.indices.map { index in
            rows.reduce(columns[index].title.count) { max($0, $1[index].count) }
        }
        guard let width else { return widths }
        let gaps = Self.gap.count * max(0, columns.count - 1)
        while widths.reduce(gaps, +) > width {
            let narrowable = columns.indices.filter { index in
                columns[index].truncatable && widths[index] > max(Self.narrowest, columns[index].title.count)
            }
            guard let widest = narrowable.max(by: { widths[$0] < widths[$1] }) else { break }
            widths[widest] -= 1
        }
        return widths
    }

    /// `text` in at most `width` characters, ending in "…" when cut.
    static func cut(_ text: String, to width: Int) -> String {
        guard text.count > width else { return text }
        guard width > 0 else { return "" }
        return text.prefix(width - 1) + "…"
    }
}
