import ShoalCore

/// Typed reading of single nodes. Each reader throws a ``Diagnostic`` at the node's position
/// naming what was expected and what was found (`expected an integer, found string "8080"`).
extension YAMLNode {
    /// What the node is, for messages: `string "8080"`, `integer 5`, `null`, `a sequence`.
    public var kindDescription: String {
        switch content {
        case .sequence: return "a sequence"
        case .mapping: return "a mapping"
        case .scalar(let scalar):
            switch scalar.value {
            case .null: return "null"
            case .bool: return "boolean \(scalar.text)"
            case .int: return "integer \(scalar.text)"
            case .float: return "float \(scalar.text)"
            case .string(let text): return "string \(Self.quoted(text))"
            }
        }
    }

    /// A string: a quoted or block scalar, or a plain scalar that is not a null, bool, int or float.
    public func string() throws(Diagnostic) -> String {
        guard case .scalar(let scalar) = content, case .string(let text) = scalar.value else {
            throw mismatch("a string")
        }
        return text
    }

    /// Any scalar but null, as its text: plain `1024` or `true` give "1024" and "true".
    /// For lists of command-line arguments and environment values, where that is what users mean.
    public func text() throws(Diagnostic) -> String {
        guard case .scalar(let scalar) = content, scalar.value != .null else {
            throw mismatch("a string")
        }
        return scalar.text
    }

    /// An integer under the core schema (decimal, `0o` octal, `0x` hex).
    public func int() throws(Diagnostic) -> Int {
        guard case .scalar(let scalar) = content, case .int(let value) = scalar.value else {
            throw mismatch("an integer")
        }
        return value
    }

    /// An integer in `range`; `name` appears in the message (`port must be between 1 and 65535, found 0`).
    public func int(_ name: String, in range: ClosedRange<Int>) throws(Diagnostic) -> Int {
        if let scalar, scalar.hasIntegerSyntax, case .float = scalar.value {  // too large for Int
            throw mark.diagnostic(Self.outOfRange(name, range, found: scalar.text))
        }
        let value = try int()
        guard range.contains(value) else {
            throw mark.diagnostic(Self.outOfRange(name, range, found: scalar?.text ?? String(value)))
        }
        return value
    }

    /// A boolean: `true` or `false` (also `True`, `TRUE`, …), unquoted.
    public func bool() throws(Diagnostic) -> Bool {
        guard case .scalar(let scalar) = content, case .bool(let value) = scalar.value else {
            throw mismatch("a boolean")
        }
        return value
    }

    /// The items of a sequence.
    public func sequence() throws(Diagnostic) -> [YAMLNode] {
        guard case .sequence(let items) = content else { throw mismatch("a sequence") }
        return items
    }

    /// The pairs of a mapping, in order, duplicates included (``YAMLMappingReader`` reports those).
    public func mapping() throws(Diagnostic) -> [Pair] {
        guard case .mapping(let pairs) = content else { throw mismatch("a mapping") }
        return pairs
    }

    /// `expected <expected>, found <what this node is>` at this node.
    public func mismatch(_ expected: String) -> Diagnostic {
        mark.diagnostic("expected \(expected), found \(kindDescription)")
    }

    static func outOfRange(_ name: String, _ range: ClosedRange<Int>, found: String) -> String {
        "\(name) must be between \(range.lowerBound) and \(range.upperBound), found \(found)"
    }

    /// A string in double quotes for messages, escaped, cut at 40 characters.
    static func quoted(_ text: String) -> String {
        let cut = text.count > 40 ? text.prefix(40) + "…" : Substring(text)
        var out = "\""
        for character in cut.unicodeScalars {
            switch character {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if character.value < 0x20 || character.value == 0x7F {
                    out += "\\u{\(String(character.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(character)
                }
            }
        }
        return out + "\""
    }
}
