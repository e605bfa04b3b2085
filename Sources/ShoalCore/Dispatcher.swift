/// Chooses the member that gets the next request, from each member's requests in progress.
///
/// Members are given in list order (the paper's `child_list`: the order back-ends were added).
/// The dispatcher is a value: the service manager keeps one per service and calls
/// ``choose(inFlight:using:)`` once per request, so it allocates nothing.
public struct Dispatcher: Sendable {
    public enum Policy: String, Sendable, CaseIterable, Codable {
        /// The paper's rule: the first Low member in list order until it reaches Medium; then
        /// round-robin among the Medium members; a High member gets nothing.
        case paper
        /// Least requests in progress of two members picked at random (power of two choices).
        case leastLoaded = "least-loaded"
    }

    public var policy: Policy
    public var thresholds: LoadThresholds
    /// Whether the local instance is a member beside the back-ends (`serve`: first in the list)
    /// or only their stand-in (`standby`, the paper's rule).
    public var local: LocalRole
    /// Where the round-robin among Medium members resumes.
    private var cursor = 0

    public init(policy: Policy = .paper, thresholds: LoadThresholds, local: LocalRole = .standby) {
        self.policy = policy
        self.thresholds = thresholds
        self.local = local
    }

    /// The index of the member for the next request, or `nil` when there are no members.
    ///
    /// When every member is High the least-loaded one still gets the request: the paper's load
    /// manager is adding a back-end at that point, and refusing would lose the request.
    public mutating func choose<Loads: RandomAccessCollection<Int>>(
        inFlight loads: Loads,
        using generator: inout some RandomNumberGenerator
    ) -> Int? where Loads.Index == Int {
        guard !loads.isEmpty else { return nil }
        switch policy {
        case .paper: return choosePaper(loads)
        case .leastLoaded: return chooseTwoRandom(loads, using: &generator)
        }
    }

    /// ``choose(inFlight:using:)`` with the system's random generator.
    public mutating func choose<Loads: RandomAccessCollection<Int>>(inFlight loads: Loads) -> Int?
    where Loads.Index == Int {
        var generator = SystemRandomNumberGenerator()
        return choose(inFlight: loads, using: &generator)
    }

    private mutating func choosePaper<Loads: RandomAccessCollection<Int>>(_ loads: Loads) -> Int?
    where Loads.Index == Int {
        if let firstLow = loads.firstIndex(where: { thresholds.level(inFlight: $0) == .low }) {
            return firstLow
        }
        // Round-robin among Medium members, starting after the last one chosen.
        let count = loads.count
        for step in 0..<count {
            let index = loads.startIndex + (cursor + step) % count
            if thresholds.level(inFlight: loads[index]) == .medium {
                cursor = (index - loads.startIndex + 1) % count
                return index
            }
        }
        return loads.indices.min { loads[$0] < loads[$1] }
    }

    private func chooseTwoRandom<Loads: RandomAccessCollection<Int>>(
        _ loads: Loads,
        using generator: inout some RandomNumberGenerator
    ) -> Int where Loads.Index == Int {
        let count = loads.count
        guard count > 1 else { return loads.startIndex }
        let first = Int.random(in: 0..<count, using: &generator)
        // A second index different from the first, uniformly.
        var second = Int.random(in: 0..<(count - 1), using: &generator)
        if second >= first { second += 1 }
        let a = loads.startIndex + first
        let b = loads.startIndex + second
        return loads[b] < loads[a] ? b : a
    }
}
