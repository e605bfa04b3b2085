import NIOCore
import ShoalCore
import Synchronization

/// One place a request can be sent: the front-end's local service instance, or a leased
/// back-end's worker (the paper's `child_list` entries).
///
/// Shared by every event loop; its counters are atomics so counting a request costs one atomic
/// add and no lock.
public final class Member: Sendable, CustomStringConvertible {
    public enum Role: String, Sendable, Hashable {
        /// The front-end's own service instance: used while there is no back-end.
        case local
        /// A leased back-end: used, in list order, whenever any exists.
        case backend
    }

    public let name: String
    public let address: SocketAddress
    public let role: Role
    /// The lease's secret, presented on every request (or TCP connection) sent here; `nil` for a
    /// member that needs none (the local instance, a worker run by hand).
    public let leaseSecret: LeaseSecret?
    /// Pre-encoded once: the head's last line and blank line with the secret (``LeaseSecret/headEnding``).
    let secretHeadEnding: ByteBuffer?
    /// Pre-encoded once: a TCP connection's first line (``LeaseSecret/preamble``).
    let secretPreamble: ByteBuffer?

    private let inFlightCount = Atomic<Int>(0)
    private let startedCount = Atomic<Int>(0)
    private let removed = Atomic<Bool>(false)
    private let abandoned = Atomic<Bool>(false)
    private let drainReported = Atomic<Bool>(false)
    /// `NIODeadline.uptimeNanoseconds` until which the member is out of rotation; 0: healthy.
    private let unhealthyUntil = Atomic<UInt64>(0)
    /// Answers relayed from here by status class: index 1 for `1xx` … 5 for `5xx`, 0 for anything else.
    let responsesByClass = AtomicCounters(count: 6)
    /// How long those answers took, from the request head to the answer's end.
    public let latency = LatencyHistogram()
    private let waiters = DrainWaiters()
    private let events: AsyncStream<MemberEvent>.Continuation

    init(name: String, address: SocketAddress, role: Role, leaseSecret: LeaseSecret? = nil,
         events: AsyncStream<MemberEvent>.Continuation) {
        self.name = name
        self.address = address
        self.role = role
        self.leaseSecret = leaseSecret
        secretHeadEnding = leaseSecret?.headEnding
        secretPreamble = leaseSecret?.preamble
        self.events = events
    }

    /// Requests sent here and not yet answered (what the load manager reads).
    public var inFlight: Int { inFlightCount.load(ordering: .relaxed) }

    /// Requests sent here since the member was added (a rate, for whoever samples it).
    public var requestsStarted: Int { startedCount.load(ordering: .relaxed) }

    /// Answers relayed from here, by status class (`1xx` … `5xx`; `other` for anything else).
    public var responses: [(statusClass: String, count: Int)] {
        let counts = responsesByClass.values
        return [("1xx", counts[1]), ("2xx", counts[2]), ("3xx", counts[3]), ("4xx", counts[4]), ("5xx", counts[5]), ("other", counts[0])]
    }

    /// Answers relayed from here, every status class.
    public var answerCount: Int { responsesByClass.values.reduce(0, +) }

    /// Whether the member was removed: it gets no new requests.
    public var isRemoved: Bool { removed.load(ordering: .sequentiallyConsistent) }

    /// Whether the member is in rotation (not inside a failure back-off).
    public var isHealthy: Bool { isHealthy(at: .now()) }

    public var description: String { "\(name) (\(address))" }

    /// Returns once the member is removed and its last in-flight request has finished.
    /// Throws `CancellationError` if the calling task is cancelled first.
    public func drained() async throws {
        try await waiters.wait { isRemoved && inFlightCount.load(ordering: .sequentiallyConsistent) == 0 }
    }

    func isHealthy(at now: NIODeadline) -> Bool {
        unhealthyUntil.load(ordering: .relaxed) <= now.uptimeNanoseconds
    }

    /// Counts a request about to be sent here. `false` if the member was removed meanwhile: the
    /// caller must choose again. (Counting first and checking `removed` second, against
    /// ``markRemoved()`` doing the opposite, means a request is either refused here or seen by
    /// ``drained()``; never neither.)
    @inline(__always)
    func beginRequest() -> Bool {
        inFlightCount.add(1, ordering: .sequentiallyConsistent)
        if removed.load(ordering: .sequentiallyConsistent) {
            endRequest()
            return false
        }
        startedCount.add(1, ordering: .relaxed)
        return true
    }

    @inline(__always)
    func endRequest() {
        let left = inFlightCount.subtract(1, ordering: .sequentiallyConsistent).newValue
        if left == 0, removed.load(ordering: .sequentiallyConsistent) {
            signalIfDrained()
        }
    }

    /// Counts an answer relayed in full: its status class and how long the request took.
    @inline(__always)
    func recordResponse(status: UInt, nanoseconds: UInt64) {
        let statusClass = Int(truncatingIfNeeded: status / 100)
        responsesByClass.add(statusClass >= 1 && statusClass <= 5 ? statusClass : 0)
        latency.record(nanoseconds: nanoseconds)
    }

    func markRemoved() {
        removed.store(true, ordering: .sequentiallyConsistent)
        signalIfDrained()
    }

    /// Whether the member was removed as gone (its lease revoked): no answer will come from it, so
    /// requests still waiting for one are sent elsewhere (``ClientRelayHandler/checkDeadline(now:)``).
    var isAbandoned: Bool { abandoned.load(ordering: .relaxed) }

    func markAbandoned() {
        abandoned.store(true, ordering: .relaxed)
        markRemoved()
    }

    /// Takes the member out of rotation for `backoff`; tells the load manager once per outage.
    func markFailed(now: NIODeadline, backoff: TimeAmount, reason: String) {
        let until = (now + backoff).uptimeNanoseconds
        let previous = unhealthyUntil.exchange(until, ordering: .relaxed)
        if previous <= now.uptimeNanoseconds {
            events.yield(.unreachable(member: name, reason: reason))
        }
    }

    private func signalIfDrained() {
        let drained = waiters.signal { isRemoved && inFlightCount.load(ordering: .sequentiallyConsistent) == 0 }
        if drained, !drainReported.exchange(true, ordering: .relaxed) {
            events.yield(.drained(member: name))
        }
    }
}

/// One member's load, as the load manager sees it.
public struct MemberLoad: Sendable, Hashable {
    public var name: String
    public var role: Member.Role
    public var address: SocketAddress
    public var inFlight: Int
    public var requestsStarted: Int
    public var isHealthy: Bool
}
