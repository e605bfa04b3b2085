import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT or SIGTERM, for the demo and the benchmarks: they finish the step they are in,
/// then stop everything they started as usual, instead of dying with processes left running.
public final class StopFlag: Sendable {
    /// Lock-free, so the signal handler may set it.
    private static let flag = Atomic<Bool>(false)

    public init() {
        signal(SIGINT) { _ in StopFlag.flag.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in StopFlag.flag.store(true, ordering: .relaxed) }
    }

    public var isSet: Bool { Self.flag.load(ordering: .relaxed) }
}
