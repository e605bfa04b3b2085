import Foundation

/// Milliseconds in a `Duration`, as a `Double`.
func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

/// Mean and nearest-rank quantiles of a set of latencies, in milliseconds.
struct LatencySummary: Codable, Sendable {
    var count: Int
    var mean: Double
    var p50: Double
    var p99: Double
    var max: Double

    init(milliseconds samples: [Double]) {
        let sorted = samples.sorted()
        count = sorted.count
        mean = sorted.isEmpty ? 0 : sorted.reduce(0, +) / Double(sorted.count)
        p50 = Self.quantile(0.50, of: sorted)
        p99 = Self.quantile(0.99, of: sorted)
        max = sorted.last ?? 0
    }

    /// The smallest sample with at least `q` of all samples at or below it.
    private static func quantile(_ q: Double, of sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((q * Double(sorted.count)).rounded(.up))
        return sorted[Swift.max(0, Swift.min(sorted.count, rank) - 1)]
    }
}

/// Smallest, median and largest of a few figures (one per repetition).
struct Spread: Codable, Sendable {
    var min: Double
    var median: Double
    var max: Double

    init(_ values: [Double]) {
        let sorted = values.sorted()
        min = sorted.first ?? 0
        max = sorted.last ?? 0
        median = sorted.isEmpty ? 0
            : sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

/// A number right-aligned in `width` columns with `decimals` places.
func column(_ value: Double, width: Int = 8, decimals: Int = 2) -> String {
    pad(String(format: "%.\(decimals)f", value), width)
}

func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: Swift.max(0, width - text.count))
    return left ? text + fill : fill + text
}
