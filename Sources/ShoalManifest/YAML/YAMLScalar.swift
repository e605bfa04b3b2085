/// How a scalar was written. Only plain scalars are resolved to ints, bools and nulls.
public enum YAMLScalarStyle: Sendable, Hashable {
    case plain
    case singleQuoted
    case doubleQuoted
    /// `|` block.
    case literal
    /// `>` block.
    case folded
}

/// A scalar's typed value under the YAML 1.2 core schema.
public enum YAMLValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
}

/// A scalar: its text exactly as libyaml decoded it, and its style.
public struct YAMLScalar: Sendable, Hashable {
    public var text: String
    public var style: YAMLScalarStyle

    public init(_ text: String, style: YAMLScalarStyle = .plain) {
        self.text = text
        self.style = style
    }

    /// The value under the YAML 1.2 core schema. Quoted and block scalars are always strings,
    /// so `"8080"` stays a string. Plain `null`, `~` and the empty scalar are null; `true`/`false`
    /// (also `True`, `TRUE`, …) are bools; decimal, `0o` octal and `0x` hex are ints. An integer too
    /// large for `Int` resolves as a float (see ``hasIntegerSyntax``). YAML 1.1's `yes`/`on` stay strings.
    public var value: YAMLValue {
        guard style == .plain else { return .string(text) }
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .float(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .float(-.infinity)
        case ".nan", ".NaN", ".NAN": return .float(.nan)
        default: break
        }
        if hasIntegerSyntax {
            if let int = Self.parseInteger(text) { return .int(int) }
            return .float(Double(text) ?? (text.hasPrefix("-") ? -.infinity : .infinity))
        }
        if Self.isFloat(text), let double = Double(text) { return .float(double) }
        return .string(text)
    }

    /// True for a plain scalar written as a core-schema integer, whether or not it fits in `Int`.
    public var hasIntegerSyntax: Bool {
        guard style == .plain else { return false }
        let utf8 = Array(text.utf8)
        if utf8.count > 2, utf8[0] == UInt8(ascii: "0") {
            let digits = utf8.dropFirst(2)
            if utf8[1] == UInt8(ascii: "o") { return digits.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) } }
            if utf8[1] == UInt8(ascii: "x") { return digits.allSatisfy(\.isHexDigit) }
        }
        let unsigned = utf8.first == UInt8(ascii: "-") || utf8.first == UInt8(ascii: "+") ? utf8.dropFirst() : utf8[...]
        return !unsigned.isEmpty && unsigned.allSatisfy(\.isDecimalDigit)
    }

    private static func parseInteger(_ text: String) -> Int? {
        if text.hasPrefix("0o") { return Int(text.dropFirst(2), radix: 8) }
        if text.hasPrefix("0x") { return Int(text.dropFirst(2), radix: 16) }
        return Int(text.hasPrefix("+") ? String(text.dropFirst()) : text)
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
    private static func isFloat(_ text: String) -> Bool {
        var rest = Substring(text)
        if rest.first == "-" || rest.first == "+" { rest = rest.dropFirst() }
        let whole = rest.prefix { $0.isASCII && $0.isNumber }
        rest = rest.dropFirst(whole.count)
        var fraction = Substring()
        if rest.first == "." {
            rest = rest.dropFirst()
            fraction = rest.prefix { $0.isASCII && $0.isNumber }
            rest = rest.dropFirst(fraction.count)
        }
        guard !whole.isEmpty || !fraction.isEmpty else { return false }
        if rest.first == "e" || rest.first == "E" {
            rest = rest.dropFirst()
            if rest.first == "-" || rest.first == "+" { rest = rest.dropFirst() }
            let exponent = rest.prefix { $0.isASCII && $0.isNumber }
            guard !exponent.isEmpty else { return false }
            rest = rest.dropFirst(exponent.count)
        }
        return rest.isEmpty
    }
}

extension UInt8 {
    fileprivate var isDecimalDigit: Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) }
    fileprivate var isHexDigit: Bool {
        isDecimalDigit || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(self)
    }
}
