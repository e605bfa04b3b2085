import ShoalCore

/// `drain_timeout` values: `"250ms"`, `"30s"`, `"2m"`, `"1h"`, or a plain integer of seconds.
enum ManifestDuration {
    static let range = "more than 0 and at most 1h"
    static let example = #"such as "250ms", "30s" or "2m""#

    static func read(_ node: YAMLNode, name: String) throws(Diagnostic) -> Duration {
        guard let scalar = node.scalar else {
            throw node.mismatch("a duration \(example)")
        }
        let milliseconds: Int
        switch scalar.value {
        case .int(let seconds):
            milliseconds = seconds.multipliedReportingOverflow(by: 1000).overflow ? .max : seconds * 1000
        case .string(let text):
            guard let parsed = parse(text) else {
                throw node.mark.diagnostic("bad duration \(YAMLNode.quoted(text)) for \(name): expected a whole number with a unit ms, s, m or h, \(example)")
            }
            milliseconds = parsed
        default:
            if scalar.hasIntegerSyntax {  // an integer too large for Int
                throw node.mark.diagnostic("\(name) must be \(range), found \(scalar.text)")
            }
            throw node.mismatch("a duration \(example)")
        }
        guard milliseconds > 0, milliseconds <= 3_600_000 else {
            throw node.mark.diagnostic("\(name) must be \(range), found \(scalar.text)")
        }
        return .milliseconds(milliseconds)
    }

    /// Milliseconds for `<digits><unit>` or bare digits (seconds); `.max` when it overflows.
    static func parse(_ text: String) -> Int? {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty else { return nil }
        let factor: Int
        switch text.dropFirst(digits.count) {
        case "ms": factor = 1
        case "s", "": factor = 1000
        case "m": factor = 60_000
        case "h": factor = 3_600_000
        default: return nil
        }
        guard let value = Int(digits) else { return .max }
        let (product, overflow) = value.multipliedReportingOverflow(by: factor)
        return overflow ? .max : product
    }
}
