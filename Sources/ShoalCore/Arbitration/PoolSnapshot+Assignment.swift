/// From a plan to what the broker writes: which waiting lease gets which slot, which lease
/// drains for whom, each with the sentence and arithmetic recorded beside it — and which of the
/// plan's decisions could not be carried out on this snapshot, and why (Nomad's plan/apply).
extension PoolSnapshot {
    public enum Step: Sendable, Hashable {
        /// Give slot `slot` of `host` to the waiting lease.
        case grant(LeaseID, host: String, slot: Int, reason: String)
        /// Reclaim the lease by a graceful drain ending at `deadline`.
        case preempt(LeaseID, deadline: Timestamp, reason: String)
    }

    /// A decision of the plan this snapshot cannot carry out, and why.
    public struct Rejection: Sendable, Hashable {
        public var decision: Arbitration.Decision
        public var why: String
    }

    public struct Assignment: Sendable, Hashable {
        public var steps: [Step]
        public var rejected: [Rejection]
        /// The fair-share arithmetic behind every step.
        public var explanation: [String]
    }

    /// Plans and assigns: the oldest waiting lease of a service gets its grants first, each on the
    /// lowest free slot of the host the plan chose.
    public func assign(now: Timestamp) -> Assignment {
        assign(plan(), now: now)
    }

    public func assign(_ plan: Arbitration.Plan, now: Timestamp) -> Assignment {
        var waiting = Dictionary(grouping: leases.filter { $0.state == .requested }, by: \.service)
            .mapValues { $0.map(\.id).sorted() }
        var free = freeSlotsByHost
        var steps: [Step] = []
        var rejected: [Rejection] = []
        let allocation = plan.allocation
        for decision in plan.decisions {
            switch decision {
            case .grant(let service, let host):
                guard let lease = waiting[service]?.first else {
                    rejected.append(Rejection(decision: decision, why: "\(service) has no waiting lease left"))
                    continue
                }
                guard let slot = free[host]?.first else {
                    rejected.append(Rejection(decision: decision, why: "\(host) has no free slot left"))
                    continue
                }
                waiting[service]?.removeFirst()
                free[host]?.removeFirst()
                steps.append(.grant(lease, host: host, slot: slot, reason:
                    "granted slot \(slot) of \(host): \(service) is below its fair share \(allocation.share(of: service))"))
            case .preempt(let lease, let victim, let beneficiary):
                steps.append(.preempt(lease, deadline: now + terms(of: victim).drainTimeout, reason:
                    "preempted: \(victim) holds more than its fair share \(allocation.share(of: victim)); "
                        + "\(beneficiary) is below its share \(allocation.share(of: beneficiary)) and waits; "
                        + "of \(victim)'s back-ends this one is the cheapest to drain (\(inFlight(of: lease).map { "in flight: \($0)" } ?? "no load report yet"))"))
            }
        }
        return Assignment(steps: steps, rejected: rejected, explanation: allocation.explanation)
    }

    /// Why a lease left waiting waits: the sentence of its `queue` event.
    public func queuedReason(for service: String) -> String {
        "queued: no free slot for \(service) (fair share \(allocation.share(of: service)), holds \(usage(of: service).held))"
    }
}
