import CYAML
import ShoalCore

/// A first pass over libyaml's events that stops early at input the document loader would
/// take seconds over, within the file size limit:
/// - libyaml's scanner is quadratic in flow nesting (every token rescans one pending simple key
///   per level), so `[[[[…` a megabyte deep is stopped at ``YAMLLimits/maxDepth``;
/// - its loader looks every alias up among all anchors, so anchors are capped at
///   ``YAMLLimits/maxAnchors``;
/// - every node event is at least one node of the tree, so more than ``YAMLLimits/maxNodes``
///   of them is an error before libyaml builds the document.
enum YAMLPrecheck {
    /// Throws at the first event past a limit, or at a syntax error.
    static func check(
        _ bytes: UnsafeBufferPointer<UInt8>,
        file: String,
        limits: YAMLLimits
    ) throws(Diagnostic) {
        guard let base = bytes.baseAddress else { return }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw Diagnostic(file: file, message: "cannot initialise the YAML parser (out of memory)")
        }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_input_string(&parser, base, bytes.count)
        var depth = 0
        var nodes = 0
        var anchors = 0
        while true {
            var event = yaml_event_t()
            guard yaml_parser_parse(&parser, &event) == 1 else {
                throw YAMLParser.syntaxError(parser, bytes: bytes, file: file)
            }
            defer { yaml_event_delete(&event) }
            let mark = YAMLParser.mark(event.start_mark, file: file)
            switch event.type {
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT, YAML_SCALAR_EVENT, YAML_ALIAS_EVENT:
                nodes += 1
                guard nodes <= limits.maxNodes else {
                    throw mark.diagnostic(YAMLTreeBuilder.tooManyNodes(limits.maxNodes))
                }
                if Self.anchor(of: event) != nil {
                    anchors += 1
                    guard anchors <= limits.maxAnchors else {
                        throw mark.diagnostic("too many YAML anchors (more than \(limits.maxAnchors))")
                    }
                }
                guard event.type == YAML_SEQUENCE_START_EVENT || event.type == YAML_MAPPING_START_EVENT else { break }
                depth += 1
                guard depth <= limits.maxDepth else {
                    throw mark.diagnostic(YAMLTreeBuilder.tooDeep(limits.maxDepth))
                }
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                depth -= 1
            case YAML_STREAM_END_EVENT:
                return
            default:
                break
            }
        }
    }

    private static func anchor(of event: yaml_event_t) -> UnsafeMutablePointer<yaml_char_t>? {
        switch event.type {
        case YAML_SCALAR_EVENT: event.data.scalar.anchor
        case YAML_SEQUENCE_START_EVENT: event.data.sequence_start.anchor
        case YAML_MAPPING_START_EVENT: event.data.mapping_start.anchor
        default: nil
        }
    }
}
