import ShoalAPI
extension Duration {
    /// Whole milliseconds as decimal seconds, e.g. `2`, `0.25`: for query strings and messages.
    var decimalSeconds: String {
        let milliseconds = max(0, Int64((self / .milliseconds(1)).rounded()))
        let whole = milliseconds / 1000
        let fraction = milliseconds % 1000
        guard fraction > 0 else { return "\(whole)" }
        var digits = String(fraction)
        digits = String(repeating: "0", count: 3 - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }
}
