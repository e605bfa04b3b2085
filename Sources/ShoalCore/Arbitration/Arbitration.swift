/// The broker's arbitration step: from the services' holdings and waiting requests and the
/// hosts' free slots, what to grant now and what to reclaim. Pure: a snapshot in, a plan out.
///
/// - Free slots go to waiting services below their fair share, most below first (higher
///   priority first), each on the host with the most free slots (spreading a service's load).
/// - With no free slot, a waiting service below its share may reclaim one from the service
///   furthest above its share (lowest priority first): that lease drains gracefully, and the
///   slot goes to the waiting service when it is free.
public enum Arbitration {
    public struct Service: Sendable, Hashable {
        public var claim: FairShare.Claim
        /// Slots held now, draining ones included (they are not free yet).
        public var held: Int
        /// Of those, slots already being given back (scale-down or preemption).
        public var draining: Int
        /// Requests waiting for a slot.
        public var waiting: Int
        /// Leases that could be preempted, newest first (active, not draining).
        public var preemptible: [LeaseID]

        public init(claim: FairShare.Claim, held: Int, draining: Int = 0, waiting: Int, preemptible: [LeaseID] = []) {
            self.claim = claim
            self.held = held
            self.draining = draining
            self.waiting = waiting
            self.preemptible = preemptible
        }

        var name: String { claim.service }
    }

    public struct Host: Sendable, Hashable {
        public var name: String
        public var free: Int

        public init(name: String, free: Int) {
            self.name = name
            self.free = free
        }
    }

    public enum Decision: Sendable, Hashable {
        case grant(service: String, host: String)
        case preempt(lease: LeaseID, from: String, for: String)
    }

    public struct Plan: Sendable, Hashable {
        public var decisions: [Decision]
        public var allocation: FairShare.Allocation

        public init(decisions: [Decision], allocation: FairShare.Allocation) {
            self.decisions = decisions
            self.allocation = allocation
        }
    }

    public static func plan(services: [Service], hosts: [Host]) -> Plan {
        let capacity = hosts.reduce(0) { $0 + $1.free } + services.reduce(0) { $0 + $1.held }
        var claims = services.map { service -> FairShare.Claim in
            var claim = service.claim
            claim.demand = service.held - service.draining + service.waiting
            return claim
        }
        claims.sort { $0.service < $1.service }
        let allocation = FairShare.allocate(claims, capacity: capacity)

        var hosts = hosts
        var state = Dictionary(uniqueKeysWithValues: services.map { ($0.name, $0) })
        var decisions: [Decision] = []

        // Keeping slots: what a service holds and is not giving back.
        func keeping(_ name: String) -> Int { state[name].map { $0.held - $0.draining } ?? 0 }
        func deficit(_ name: String) -> Int { allocation.share(of: name) - keeping(name) }
        func mostNeedy() -> Service? {
            state.values
                .filter { $0.waiting > 0 && deficit($0.name) > 0 }
                .max { ($0.claim.priority, deficit($0.name), $1.name) < ($1.claim.priority, deficit($1.name), $0.name) }
        }

        // 1. Free slots to the neediest.
        while let needy = mostNeedy(),
              let index = hosts.indices.filter({ hosts[$0].free > 0 })
                  .max(by: { (hosts[$0].free, hosts[$1].name) < (hosts[$1].free, hosts[$0].name) }) {
            hosts[index].free -= 1
            state[needy.name]?.held += 1
            state[needy.name]?.waiting -= 1
            decisions.append(.grant(service: needy.name, host: hosts[index].name))
        }

        // 2. No free slot left: reclaim from those above their share, for those below it.
        //    Slots already draining toward someone count as on their way.
        var incoming = services.reduce(0) { $0 + $1.draining }
        while let needy = mostNeedy() {
            if incoming > 0 {
                incoming -= 1
                state[needy.name]?.waiting -= 1
                continue
            }
            let victims = state.values.filter { keeping($0.name) > allocation.share(of: $0.name) && !$0.preemptible.isEmpty }
            guard let victim = victims.min(by: {
                ($0.claim.priority, -(keeping($0.name) - allocation.share(of: $0.name)), $0.name)
                    < ($1.claim.priority, -(keeping($1.name) - allocation.share(of: $1.name)), $1.name)
            }) else { break }
            let lease = victim.preemptible[0]
            state[victim.name]?.preemptible.removeFirst()
            state[victim.name]?.draining += 1
            state[needy.name]?.waiting -= 1
            decisions.append(.preempt(lease: lease, from: victim.name, for: needy.name))
        }
        return Plan(decisions: decisions, allocation: allocation)
    }
}
