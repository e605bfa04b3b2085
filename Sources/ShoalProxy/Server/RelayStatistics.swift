import Synchronization

/// Counters of one relay, for tests and metrics. Only connection-level and error events are
/// counted: nothing here is touched per successful request.
public final class RelayStatistics: Sendable {
    let clientConnections = Atomic<Int>(0)
    let upstreamConnections = Atomic<Int>(0)
    let retryCount = Atomic<Int>(0)
    let localResponseCount = Atomic<Int>(0)

    init() {}

    /// Client connections accepted.
    public var clientConnectionsAccepted: Int { clientConnections.load(ordering: .relaxed) }
    /// Connections opened to members (a low number under keep-alive load means the pool works).
    public var upstreamConnectionsOpened: Int { upstreamConnections.load(ordering: .relaxed) }
    /// Requests sent a second time, after their first member failed before answering.
    public var retries: Int { retryCount.load(ordering: .relaxed) }
    /// Requests the relay answered itself with an error status.
    public var localResponses: Int { localResponseCount.load(ordering: .relaxed) }
}
