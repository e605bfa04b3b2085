import CYAML
import ShoalCore

/// Parses one YAML document with libyaml's document API into a ``YAMLNode`` tree.
///
/// Every failure is a ``Diagnostic`` with a position: syntax errors at libyaml's problem mark,
/// a second document, cyclic aliases, and input beyond any of ``YAMLLimits`` (size, nesting,
/// nodes after alias expansion, anchors). None of them hangs or crashes.
public struct YAMLParser: Sendable {
    public var limits: YAMLLimits

    public init(limits: YAMLLimits = YAMLLimits()) {
        self.limits = limits
    }

    /// Parses `text`; `file` names it in marks and diagnostics. Returns nil for an empty stream
    /// (nothing but whitespace and comments).
    public func parse(_ text: String, file: String) throws(Diagnostic) -> YAMLNode? {
        try parse(bytes: Array(text.utf8), file: file)
    }

    /// Parses raw bytes (libyaml detects UTF-8/UTF-16 and rejects invalid encodings).
    public func parse(bytes: [UInt8], file: String) throws(Diagnostic) -> YAMLNode? {
        guard bytes.count <= limits.maxFileSize else {
            throw Diagnostic(file: file, message: "file is too large (\(bytes.count) bytes; the limit is \(limits.maxFileSize))")
        }
        // An empty buffer is an empty stream; it also has no base address to hand libyaml.
        guard !bytes.isEmpty else { return nil }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw Diagnostic(file: file, message: "cannot initialise the YAML parser (out of memory)")
        }
        defer { yaml_parser_delete(&parser) }
        // libyaml reads the buffer in place: it must outlive every yaml_parser_load call below.
        return try bytes.withUnsafeBufferPointer { (buffer: UnsafeBufferPointer<UInt8>) throws(Diagnostic) -> YAMLNode? in
            guard let base = buffer.baseAddress else { return nil }
            try YAMLPrecheck.check(buffer, file: file, limits: limits)
            yaml_parser_set_input_string(&parser, base, buffer.count)
            let root = try loadDocument(&parser, bytes: buffer, file: file) { document throws(Diagnostic) in
                guard let rootNode = yaml_document_get_root_node(document) else { return nil as YAMLNode? }
                var builder = YAMLTreeBuilder(document: document, file: file, limits: limits)
                return try builder.build(id: Self.id(of: rootNode, in: document), depth: 1)
            }
            guard root != nil else { return nil }
            try loadDocument(&parser, bytes: buffer, file: file) { document throws(Diagnostic) in
                guard yaml_document_get_root_node(document) == nil else {
                    let mark = Self.mark(document.pointee.start_mark, file: file)
                    throw mark.diagnostic("expected one YAML document, found a second one")
                }
            }
            return root
        }
    }

    /// Loads the next document, hands it to `body`, and always deletes it.
    private func loadDocument<T>(
        _ parser: inout yaml_parser_t,
        bytes: UnsafeBufferPointer<UInt8>,
        file: String,
        _ body: (UnsafeMutablePointer<yaml_document_t>) throws(Diagnostic) -> T
    ) throws(Diagnostic) -> T {
        var document = yaml_document_t()
        guard yaml_parser_load(&parser, &document) == 1 else {
            // On failure libyaml leaves the document empty; nothing to delete.
            throw Self.syntaxError(parser, bytes: bytes, file: file)
        }
        defer { yaml_document_delete(&document) }
        return try withUnsafeMutablePointer(to: &document) { (pointer) throws(Diagnostic) -> T in try body(pointer) }
    }

    /// libyaml node ids are 1-based indexes into `document.nodes`.
    static func id(of node: UnsafeMutablePointer<yaml_node_t>, in document: UnsafeMutablePointer<yaml_document_t>) -> Int32 {
        Int32(node - document.pointee.nodes.start) + 1
    }

    static func mark(_ mark: yaml_mark_t, file: String) -> YAMLMark {
        YAMLMark(file: file, line: mark.line + 1, column: mark.column + 1)
    }

    static func syntaxError(_ parser: yaml_parser_t, bytes: UnsafeBufferPointer<UInt8>, file: String) -> Diagnostic {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown error"
        switch parser.error {
        case YAML_MEMORY_ERROR:
            return Diagnostic(file: file, message: "YAML parser out of memory")
        case YAML_READER_ERROR:
            // Reader errors (bad encoding, control characters) carry a byte offset, not a mark.
            let (line, column) = position(ofByte: parser.problem_offset, in: bytes)
            return Diagnostic(file: file, line: line, column: column, message: "invalid YAML: \(problem)")
        default:
            var message = "invalid YAML: \(problem)"
            if let context = parser.context.map({ String(cString: $0) }) {
                let at = mark(parser.context_mark, file: file)
                message += " (\(context) at \(at.lineAndColumn))"
            }
            return mark(parser.problem_mark, file: file).diagnostic(message)
        }
    }

    /// 1-based line and character column of a byte offset.
    private static func position(ofByte offset: Int, in bytes: UnsafeBufferPointer<UInt8>) -> (Int, Int) {
        var line = 1
        var column = 1
        for byte in bytes.prefix(offset) {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {  // count characters, not UTF-8 continuation bytes
                column += 1
            }
        }
        return (line, column)
    }
}
