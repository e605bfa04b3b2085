import Synchronization

/// Request durations in fixed buckets from 100 µs to 10 s, for the Prometheus histogram of a
/// member. Recording is a short scan of the bounds and two relaxed atomic adds: no lock, no
/// allocation. Buckets are kept apart (not cumulative) and summed up only when exported.
public final class LatencyHistogram: Sendable {
    /// Upper bounds of the buckets, in nanoseconds; a last, open bucket takes the rest.
    public static let boundsNanoseconds: [UInt64] = [
        100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000,
        100_000_000, 250_000_000, 500_000_000, 1_000_000_000, 2_500_000_000, 5_000_000_000, 10_000_000_000,
    ]

    private let bounds = LatencyHistogram.boundsNanoseconds
    private let buckets = AtomicCounters(count: LatencyHistogram.boundsNanoseconds.count + 1)
    private let sum = Atomic<UInt64>(0)

    public init() {}

    @inline(__always)
    public func record(nanoseconds: UInt64) {
        // Most requests take well under a millisecond: the scan usually stops in a step or three.
        var index = 0
        while index < bounds.count, nanoseconds > bounds[index] { index += 1 }
        buckets.add(index)
        sum.add(nanoseconds, ordering: .relaxed)
    }

    /// What the histogram holds now.
    public struct Snapshot: Sendable, Hashable {
        /// Observations per bucket (not cumulative); the last is above the highest bound.
        public var counts: [Int]
        public var sumNanoseconds: UInt64
        public var count: Int { counts.reduce(0, +) }
    }

    public var snapshot: Snapshot {
        Snapshot(counts: buckets.values, sumNanoseconds: sum.load(ordering: .relaxed))
    }
}
