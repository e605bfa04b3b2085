import Synchronization

/// A fixed number of counters in one allocation, each an atomic: adding is one relaxed atomic
/// add and no lock, so event loops may count on the request path.
///
/// `@unchecked Sendable`: the only state is the buffer of `Atomic`s this object allocates,
/// never hands out and frees in `deinit`; every access goes through the atomics.
public final class AtomicCounters: @unchecked Sendable {
    public let count: Int
    private let base: UnsafeMutablePointer<Atomic<Int>>

    public init(count: Int) {
        precondition(count > 0)
        self.count = count
        base = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: count)
        for index in 0..<count { (base + index).initialize(to: Atomic(0)) }
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
    }

    /// Adds `amount` to counter `index` (`0..<count`).
    @inline(__always)
    public func add(_ index: Int, _ amount: Int = 1) {
        assert(index >= 0 && index < count)
        base[index].add(amount, ordering: .relaxed)
    }

    public subscript(index: Int) -> Int {
        precondition(index >= 0 && index < count)
        return base[index].load(ordering: .relaxed)
    }

    /// Every counter, in order (each read on its own: a snapshot, not a transaction).
    public var values: [Int] { (0..<count).map { self[$0] } }
}
