import ShoalCore
import Testing

/// Arbitration at the scale curve's sizes (docs/benchmarks-scale.md): the faster paths give the
/// same answers as the plain ones they replaced.
@Suite struct ArbitrationScaleTests {
    /// Weighted max-min by scanning every open service for every slot: what `FairShare.allocate`
    /// did before its heap, kept here as the reference.
    func scanAllocate(_ claims: [FairShare.Claim], capacity: Int) -> [String: Int] {
        var shares = Dictionary(uniqueKeysWithValues: claims.map { ($0.service, 0) })
        var remaining = max(0, capacity)
        func cap(_ claim: FairShare.Claim) -> Int { max(0, min(claim.demand, claim.backends.max)) }
        for claim in claims.sorted(by: { ($0.priority, $1.service) > ($1.priority, $0.service) }) where remaining > 0 {
            let minimum = min(claim.backends.min, cap(claim), remaining)
            guard minimum > 0 else { continue }
            shares[claim.service] = minimum
            remaining -= minimum
        }
        for (_, tier) in Dictionary(grouping: claims, by: \.priority).sorted(by: { $0.key > $1.key }) where remaining > 0 {
            while remaining > 0 {
                let open = tier.filter { shares[$0.service, default: 0] < cap($0) }
                guard let next = open.min(by: { lhs, rhs in
                    let left = shares[lhs.service, default: 0] * rhs.weight
                    let right = shares[rhs.service, default: 0] * lhs.weight
                    return left != right ? left < right : lhs.service < rhs.service
                }) else { break }
                shares[next.service, default: 0] += 1
                remaining -= 1
            }
        }
        return shares
    }

    @Test func theHeapGivesExactlyTheSharesTheScanGave() {
        var random = SplitMix64(seed: 17)
        for round in 0..<300 {
            let count = Int.random(in: 1...40, using: &random)
            let claims = (0..<count).map { index in
                let maximum = Int.random(in: 0...80, using: &random)
                return FairShare.Claim(
                    service: "s\(Int.random(in: 0...999, using: &random))-\(index)",
                    demand: Int.random(in: 0...100, using: &random),
                    backends: BackendRange(min: Int.random(in: 0...3, using: &random), max: maximum),
                    priority: Int.random(in: 0...2, using: &random), weight: Int.random(in: 1...5, using: &random))
            }
            let capacity = Int.random(in: 0...600, using: &random)
            #expect(FairShare.allocate(claims, capacity: capacity).shares == scanAllocate(claims, capacity: capacity),
                    "round \(round): \(count) claims on \(capacity) slots")
        }
    }

    @Test func aLargePoolIsSharedEvenly() {
        let claims = (1...32).map { FairShare.Claim(service: "svc\($0)", demand: 100, backends: BackendRange(min: 0, max: 100)) }
        let allocation = FairShare.allocate(claims, capacity: 512)
        #expect(Set(allocation.shares.values) == [16])
        #expect(allocation.explanation.last == "unallocated 0")
    }

    @Test func oneLookAtTheLeasesAgreesWithALookPerHostAndPerService() {
        var random = SplitMix64(seed: 4)
        let hosts = (1...16).map { PoolSnapshot.Host(name: "h\($0)", slots: 4, isOpen: $0 % 5 != 0) }
        let states: [LeaseState] = [.requested, .granted, .active, .draining, .released]
        var leases: [PoolSnapshot.LeaseSlot] = []
        for host in hosts {
            for slot in 0..<host.slots where Bool.random(using: &random) {
                let state = states.randomElement(using: &random)!
                leases.append(PoolSnapshot.LeaseSlot(
                    id: LeaseID("L-\(leases.count)"), service: "svc\(Int.random(in: 1...6, using: &random))", state: state,
                    host: state == .requested ? nil : host.name, slot: state == .requested ? nil : slot,
                    inFlight: Int.random(in: 0...3, using: &random)))
            }
        }
        let pool = PoolSnapshot(hosts: hosts, services: ["svc1": .init(backends: BackendRange(min: 1, max: 9))], leases: leases)
        let free = pool.freeSlotsByHost
        for host in hosts {
            #expect(free[host.name] == pool.freeSlots(on: host), "host \(host.name)")
        }
        let usages = pool.usageByService
        for name in pool.serviceNames {
            #expect((usages[name] ?? PoolSnapshot.Usage()) == pool.usage(of: name), "service \(name)")
        }
        #expect(usages.values.reduce(0) { $0 + $1.held } == leases.count { $0.state.holdsSlot })
    }
}
