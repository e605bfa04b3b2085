import NIOCore
import ShoalCore
import Synchronization

/// Chooses a member for each request on one event loop, from that loop's copy of the
/// ``MemberTable``. Touched only on its loop, so choosing takes no lock and, after warm-up,
/// allocates nothing (the scratch arrays keep their capacity).
final class LoopRouter {
    private let table: MemberTable
    private var version = -1
    private var local: Member?
    private var backends: [Member] = []
    /// Each loop round-robins on its own: the paper's policy needs no global cursor to spread load.
    private var dispatcher: Dispatcher
    /// `local: serve` with a local member: it is a candidate beside the back-ends.
    private var localServes = false
    private var random = SplitMix64(seed: UInt64.random(in: 1...UInt64.max))
    private var candidates: [Member] = []
    private var loads: [Int] = []

    init(table: MemberTable) {
        self.table = table
        self.dispatcher = Dispatcher(thresholds: LoadThresholds())
        refreshIfNeeded()
    }

    /// Picks up membership changes; cheap when there are none.
    @inline(__always)
    func refreshIfNeeded() {
        if table.version.load(ordering: .acquiring) != version { refresh() }
    }

    private func refresh() {
        let (version, snapshot) = table.snapshot()
        self.version = version
        self.local = snapshot.local
        self.backends = snapshot.backends
        self.dispatcher = snapshot.dispatcher
        self.localServes = snapshot.dispatcher.local == .serve && snapshot.local != nil
    }

    /// A member for the next request, already counted in its in-flight requests (the caller must
    /// call ``Member/endRequest()`` exactly once). `nil` when there is none.
    ///
    /// Healthy back-ends first (by the dispatch policy; with `local: serve` the local member is
    /// one of them, first in the list); else the local member; and when every member is out of
    /// rotation, still the local one, then the first back-end: an attempt that may fail beats
    /// refusing outright. `excluding` is a member that just failed this request.
    func choose(now: NIODeadline, excluding: Member? = nil) -> Member? {
        refreshIfNeeded()
        // A member removed after our refresh refuses in beginRequest(); refresh and choose again.
        // Bounded: each round sees a newer version.
        for _ in 0..<4 {
            guard let member = pick(now: now, excluding: excluding) else { return nil }
            if member.beginRequest() { return member }
            refresh()
        }
        return nil
    }

    /// The local member for a request its back-ends failed, counted like ``choose(now:excluding:)``;
    /// chosen whatever its health, since it is the last resort.
    func chooseLocal() -> Member? {
        refreshIfNeeded()
        guard let local, local.beginRequest() else { return nil }
        return local
    }

    private func pick(now: NIODeadline, excluding: Member?) -> Member? {
        // The common cases, without the scratch arrays: no back-end, or exactly one.
        if backends.isEmpty {
            if let local, local !== excluding { return local }
            return nil
        }
        if !localServes, backends.count == 1, let only = backends.first, only !== excluding, only.isHealthy(at: now) {
            return only
        }
        candidates.removeAll(keepingCapacity: true)
        loads.removeAll(keepingCapacity: true)
        if localServes, let local, local !== excluding, local.isHealthy(at: now) {
            candidates.append(local)
            loads.append(local.inFlight)
        }
        for member in backends where member !== excluding && member.isHealthy(at: now) {
            candidates.append(member)
            loads.append(member.inFlight)
        }
        if !candidates.isEmpty, let index = dispatcher.choose(inFlight: loads, using: &random) {
            return candidates[index]
        }
        if let local, local !== excluding { return local }
        return backends.first { $0 !== excluding }
    }
}
