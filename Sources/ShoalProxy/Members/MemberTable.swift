import NIOConcurrencyHelpers
import NIOCore
import ShoalCore
import Synchronization

/// The members one relay sends requests to: an optional local instance and the leased back-ends
/// in the order they were added (the paper's `child_list`), plus the dispatch policy.
///
/// With no back-end in rotation, requests go to the local member; while back-ends exist, to them,
/// chosen by ``ShoalCore/Dispatcher`` from their in-flight counts. A worker's table holds just
/// its service instance as the local member.
///
/// Changes take effect at once and drop no request: each event loop keeps a copy of the list and
/// refreshes it when ``version`` moves, and a removed member refuses new requests itself (see
/// ``Member/beginRequest()``), so none can slip in between removal and ``Member/drained()``.
public final class MemberTable: Sendable {
    public enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
        case duplicateName(String)

        public var description: String {
            switch self {
            case .duplicateName(let name): "a member named '\(name)' already exists"
            }
        }
    }

    struct Snapshot {
        var local: Member?
        var backends: [Member]
        var dispatcher: Dispatcher
        /// Removed members still finishing requests: their answers still count.
        var retiring: [Member] = []
        /// Answers of the removed members that finished.
        var retiredAnswers = 0
    }

    private let state: NIOLockedValueBox<Snapshot>
    /// Moves on every change; event loops compare it per request (one atomic load).
    let version = Atomic<Int>(0)
    private let eventSink: AsyncStream<MemberEvent>.Continuation

    /// Answers relayed since the table was made, by every member it has had (removed ones too),
    /// from the members' own counters: nothing more is counted per request.
    public var requestsAnswered: Int {
        state.withLockedValue { snapshot in
            // A removed member's count is final once nothing is in flight there (an answer is
            // counted before its request ends).
            snapshot.retiring.removeAll { member in
                guard member.inFlight == 0 else { return false }
                snapshot.retiredAnswers += member.answerCount
                return true
            }
            let members = [snapshot.local].compactMap { $0 } + snapshot.backends + snapshot.retiring
            return members.reduce(snapshot.retiredAnswers) { $0 + $1.answerCount }
        }
    }

    /// Members becoming unreachable, and removed members becoming drained. Buffers the newest
    /// 1024 events if nobody reads.
    public let events: AsyncStream<MemberEvent>

    /// A table with an optional local member (named `local`) and no back-ends.
    public init(local: SocketAddress? = nil, dispatcher: Dispatcher = Dispatcher(thresholds: LoadThresholds())) {
        let (events, sink) = AsyncStream.makeStream(of: MemberEvent.self, bufferingPolicy: .bufferingNewest(1024))
        self.events = events
        self.eventSink = sink
        let localMember = local.map { Member(name: "local", address: $0, role: .local, events: sink) }
        state = NIOLockedValueBox(Snapshot(local: localMember, backends: [], dispatcher: dispatcher))
    }

    deinit {
        eventSink.finish()
    }

    /// The local member, if any.
    public var local: Member? { state.withLockedValue { $0.local } }

    /// The back-ends in the order they were added.
    public var backends: [Member] { state.withLockedValue { $0.backends } }

    /// Every member's load: the local one first, then the back-ends in order.
    public func loads() -> [MemberLoad] {
        let now = NIODeadline.now()
        let (local, backends) = state.withLockedValue { ($0.local, $0.backends) }
        return ([local].compactMap { $0 } + backends).map {
            MemberLoad(name: $0.name, role: $0.role, address: $0.address, inFlight: $0.inFlight,
                requestsStarted: $0.requestsStarted, isHealthy: $0.isHealthy(at: now))
        }
    }

    /// Sets (or with `nil`, removes) the local member. A replaced local member is removed: it
    /// gets no new requests, and the returned old member's ``Member/drained()`` tells when its
    /// in-flight ones are done.
    @discardableResult
    public func setLocal(_ address: SocketAddress?, name: String = "local") -> (new: Member?, old: Member?) {
        let new = address.map { Member(name: name, address: $0, role: .local, events: eventSink) }
        let old = change { snapshot in
            defer { snapshot.local = new }
            if let old = snapshot.local { snapshot.retiring.append(old) }
            return snapshot.local
        }
        old?.markRemoved()
        return (new, old)
    }

    /// Appends a back-end to the list. Names must be unique among the back-ends. With
    /// `leaseSecret`, every request (or TCP connection) sent there presents it.
    @discardableResult
    public func addBackend(name: String, address: SocketAddress, leaseSecret: LeaseSecret? = nil) throws -> Member {
        let member = Member(name: name, address: address, role: .backend, leaseSecret: leaseSecret, events: eventSink)
        try change { snapshot in
            guard !snapshot.backends.contains(where: { $0.name == name }) else { throw Failure.duplicateName(name) }
            snapshot.backends.append(member)
        }
        return member
    }

    /// Removes a back-end: from now on it gets no new requests; its in-flight ones finish.
    /// Await ``Member/drained()`` on the result to know when they have. `nil` if no such member.
    ///
    /// `abandoningInFlight`: the back-end is gone (its lease was revoked), so its in-flight
    /// requests will not be answered: those with no answer yet are cut off within a timer tick —
    /// `GET`/`HEAD` retried on another member, the rest answered `502` — instead of waiting out
    /// the answer timeout.
    @discardableResult
    public func removeBackend(named name: String, abandoningInFlight: Bool = false) -> Member? {
        let removed = change { snapshot -> Member? in
            guard let index = snapshot.backends.firstIndex(where: { $0.name == name }) else { return nil }
            let removed = snapshot.backends.remove(at: index)
            snapshot.retiring.append(removed)
            return removed
        }
        if abandoningInFlight {
            removed?.markAbandoned()
        } else {
            removed?.markRemoved()
        }
        return removed
    }

    /// Replaces the dispatch policy (e.g. new thresholds from a reloaded manifest).
    public func setDispatcher(_ dispatcher: Dispatcher) {
        change { $0.dispatcher = dispatcher }
    }

    /// A copy of the current members for one event loop, with the version it belongs to.
    func snapshot() -> (version: Int, snapshot: Snapshot) {
        state.withLockedValue { snapshot in
            (version.load(ordering: .acquiring), snapshot)
        }
    }

    private func change<Result>(_ body: (inout Snapshot) throws -> Result) rethrows -> Result {
        try state.withLockedValue { snapshot in
            let result = try body(&snapshot)
            version.add(1, ordering: .releasing)
            return result
        }
    }
}
