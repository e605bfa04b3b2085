/// How the pool's slots should be divided among services: every service's guaranteed minimum
/// first (higher priority first), then what is left by weighted max-min fair share, priority
/// tier by priority tier. Nobody is given more than it asks for or more than its maximum.
///
/// Pure arithmetic: the broker feeds it the services' demands and the pool's size, and records
/// ``Allocation/explanation`` with every decision it takes from it.
public enum FairShare {
    public struct Claim: Sendable, Hashable {
        public var service: String
        /// Slots it holds plus slots it has asked for and is waiting for.
        public var demand: Int
        public var backends: BackendRange
        public var priority: Int
        public var weight: Int

        public init(service: String, demand: Int, backends: BackendRange, priority: Int = 0, weight: Int = 1) {
            self.service = service
            self.demand = demand
            self.backends = backends
            self.priority = priority
            self.weight = weight
        }

        /// The most it can use: what it asks for, within its maximum.
        var cap: Int { max(0, min(demand, backends.max)) }
    }

    public struct Allocation: Sendable, Hashable {
        /// Slots each service should hold.
        public var shares: [String: Int]
        /// One line per step of the arithmetic, for `shoal events` and `shoal leases explain`.
        public var explanation: [String]

        public func share(of service: String) -> Int { shares[service] ?? 0 }
    }

    public static func allocate(_ claims: [Claim], capacity: Int) -> Allocation {
        var shares = Dictionary(uniqueKeysWithValues: claims.map { ($0.service, 0) })
        var remaining = max(0, capacity)
        var explanation = ["capacity \(remaining) slots"]
        let byPriority = claims.sorted { ($0.priority, $1.service) > ($1.priority, $0.service) }

        // 1. Minimums, highest priority first.
        for claim in byPriority where remaining > 0 {
            let minimum = min(claim.backends.min, claim.cap, remaining)
            guard minimum > 0 else { continue }
            shares[claim.service] = minimum
            remaining -= minimum
            explanation.append("\(claim.service): minimum \(minimum)")
        }

        // 2. Weighted max-min within each priority tier, highest first: one slot at a time to the
        //    open service with the least slots per unit of weight (ties: by name) — taken from a
        //    heap, so a pool of hundreds of slots costs slots × log(services), not slots × services.
        let tiers = Dictionary(grouping: claims, by: \.priority).sorted { $0.key > $1.key }
        for (priority, tier) in tiers where remaining > 0 {
            var open = TierHeap(tier.filter { shares[$0.service, default: 0] < $0.cap }
                .map { TierHeap.Entry(claim: $0, share: shares[$0.service, default: 0]) })
            while remaining > 0, var next = open.popFirst() {
                next.share += 1
                remaining -= 1
                shares[next.claim.service] = next.share
                if next.share < next.claim.cap { open.insert(next) }
            }
            let line = tier.sorted { $0.service < $1.service }
                .map { "\($0.service)=\(shares[$0.service, default: 0])/\($0.cap) (weight \($0.weight))" }
                .joined(separator: ", ")
            explanation.append("priority \(priority): \(line)")
        }
        explanation.append("unallocated \(remaining)")
        return Allocation(shares: shares, explanation: explanation)
    }
}

/// The open services of a tier, the one next in line for a slot first: the least slots per unit
/// of weight, ties by name (a strict order, so the heap hands out slots exactly as a scan would).
private struct TierHeap {
    struct Entry {
        var claim: FairShare.Claim
        var share: Int

        /// share/weight compared without division: a/wa < b/wb  ⇔  a·wb < b·wa
        func precedes(_ other: Entry) -> Bool {
            let left = share * other.claim.weight, right = other.share * claim.weight
            return left != right ? left < right : claim.service < other.claim.service
        }
    }

    private var entries: [Entry] = []

    init(_ entries: [Entry]) {
        for entry in entries { insert(entry) }
    }

    mutating func insert(_ entry: Entry) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].precedes(entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popFirst() -> Entry? {
        guard !entries.isEmpty else { return nil }
        entries.swapAt(0, entries.count - 1)
        let first = entries.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var next = parent
            if left < entries.count, entries[left].precedes(entries[next]) { next = left }
            if right < entries.count, entries[right].precedes(entries[next]) { next = right }
            guard next != parent else { return first }
            entries.swapAt(parent, next)
            parent = next
        }
    }
}
