import Synchronization

/// Counters of one relay, for tests and metrics. Only connection-level and error events are
/// counted: nothing here is touched per successful request (those are counted on their
/// ``Member``).
public final class RelayStatistics: Sendable {
    let clientConnections = Atomic<Int>(0)
    let upstreamConnections = Atomic<Int>(0)
    let retryCount = Atomic<Int>(0)
    /// The relay's own answers by ``RelayError/Code/ordinal``.
    let localCodeCounts = AtomicCounters(count: RelayError.Code.all.count)

    init() {}

    /// Counts one of the relay's own error answers (never on the path of a relayed answer).
    func countLocalResponse(_ code: RelayError.Code) {
        localCodeCounts.add(code.ordinal)
    }

    /// Client connections accepted.
    public var clientConnectionsAccepted: Int { clientConnections.load(ordering: .relaxed) }
    /// Connections opened to members (a low number under keep-alive load means the pool works).
    public var upstreamConnectionsOpened: Int { upstreamConnections.load(ordering: .relaxed) }
    /// Requests sent a second time, after their first member failed before answering.
    public var retries: Int { retryCount.load(ordering: .relaxed) }
    /// Requests the relay answered itself with an error status.
    public var localResponses: Int { localCodeCounts.values.reduce(0, +) }
    /// The relay's own answers per code (codes it never used are left out).
    public var localResponsesByCode: [(code: RelayError.Code, count: Int)] {
        let counts = localCodeCounts.values
        return zip(RelayError.Code.all, counts).filter { $0.1 > 0 }.map { ($0.0, $0.1) }
    }
}
