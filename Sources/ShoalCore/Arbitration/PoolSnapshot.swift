/// The pool at one moment, as arbitration sees it: its hosts, the services' terms and every live
/// lease with the slot it holds. Fair share, `max_backends`, the arbitration plan and the slots
/// a plan is carried out on all come from here, so `shoal services`, the queue's events and the
/// grants never disagree.
public struct PoolSnapshot: Sendable, Hashable {
    public struct Host: Sendable, Hashable {
        public var name: String
        public var slots: Int
        /// Takes new leases (not down, quarantined or cordoned).
        public var isOpen: Bool

        public init(name: String, slots: Int, isOpen: Bool = true) {
            self.name = name
            self.slots = slots
            self.isOpen = isOpen
        }
    }

    /// A service's claim on the pool, from its manifest.
    public struct Terms: Sendable, Hashable {
        public var backends: BackendRange
        public var priority: Int
        public var weight: Int
        /// How long a preempted lease of it may take to drain.
        public var drainTimeout: Duration

        public init(backends: BackendRange, priority: Int = 0, weight: Int = 1, drainTimeout: Duration = .seconds(30)) {
            self.backends = backends
            self.priority = priority
            self.weight = weight
            self.drainTimeout = drainTimeout
        }
    }

    /// A live lease and the slot it holds, if any.
    public struct LeaseSlot: Sendable, Hashable {
        public var id: LeaseID
        public var service: String
        public var state: LeaseState
        public var host: String?
        public var slot: Int?
        /// Requests in progress at its worker (running and queued), as last reported; `nil` before
        /// the first report.
        public var inFlight: Int?

        public init(id: LeaseID, service: String, state: LeaseState, host: String? = nil, slot: Int? = nil, inFlight: Int? = nil) {
            self.id = id
            self.service = service
            self.state = state
            self.host = host
            self.slot = slot
            self.inFlight = inFlight
        }
    }

    /// Hosts in the cluster file's order.
    public var hosts: [Host]
    /// Registered services by name.
    public var services: [String: Terms]
    /// Live leases (final ones are ignored).
    public var leases: [LeaseSlot]

    public init(hosts: [Host], services: [String: Terms], leases: [LeaseSlot]) {
        self.hosts = hosts
        self.services = services
        self.leases = leases.filter { !$0.state.isFinal }
    }

    /// One service's leases, counted.
    public struct Usage: Sendable, Hashable {
        /// Slots held (granted, active, draining).
        public var held = 0
        /// Of those, being given back.
        public var draining = 0
        /// Waiting for a slot.
        public var waiting = 0
        /// Active leases, cheapest to drain first: fewest requests in flight, then the newest
        /// (peers drain a victim blindly; Shoal sees every worker's load).
        public var preemptible: [LeaseID] = []

        /// What `max_backends` counts: every lease it holds or waits for. A draining lease still
        /// holds its slot until it is released.
        public var counted: Int { held + waiting }
        /// What fair share divides: the slots it wants to keep or get.
        public var demand: Int { held - draining + waiting }

        init(counting leases: [LeaseSlot]) {
            var active: [LeaseSlot] = []
            for lease in leases {
                if lease.state.holdsSlot { held += 1 }
                if lease.state == .draining { draining += 1 }
                if lease.state == .requested { waiting += 1 }
                if lease.state == .active { active.append(lease) }
            }
            preemptible = active.sorted { ($0.inFlight ?? 0, $1.id) < ($1.inFlight ?? 0, $0.id) }.map(\.id)
        }

        public init() {}
    }

    public func usage(of service: String) -> Usage {
        Usage(counting: leases.filter { $0.service == service })
    }

    /// Every service's usage, from one pass over the leases (not one per service).
    public var usageByService: [String: Usage] {
        Dictionary(grouping: leases, by: \.service).mapValues(Usage.init(counting:))
    }

    /// Every service with terms or leases, by name. A service that holds leases but is no longer
    /// registered keeps what it holds and asks for nothing more.
    public var serviceNames: [String] {
        Set(services.keys).union(leases.map(\.service)).sorted()
    }

    /// A lease's requests in flight, as last reported.
    func inFlight(of lease: LeaseID) -> Int? {
        leases.first { $0.id == lease }?.inFlight
    }

    func terms(of service: String) -> Terms {
        terms(of: service, usage: usage(of: service))
    }

    private func terms(of service: String, usage: @autoclosure () -> Usage) -> Terms {
        services[service] ?? Terms(backends: BackendRange(min: 0, max: usage().held))
    }

    /// The slots arbitration divides: free slots on open hosts plus every slot held (a lease on
    /// a cordoned or quarantined host still holds its slot until it is given back).
    public var capacity: Int {
        let free = freeSlotsByHost
        return hosts.filter(\.isOpen).reduce(0) { $0 + (free[$1.name]?.count ?? 0) } + leases.count(where: \.state.holdsSlot)
    }

    /// The fair share of every service, with its arithmetic.
    public var allocation: FairShare.Allocation {
        FairShare.allocate(arbitrationServices.map(\.claim), capacity: capacity)
    }

    /// Slot indexes of `host` no live lease holds, lowest first.
    public func freeSlots(on host: Host) -> [Int] {
        let used = Set(leases.filter { $0.host == host.name && $0.state.holdsSlot }.compactMap(\.slot))
        return (0..<host.slots).filter { !used.contains($0) }
    }

    /// ``freeSlots(on:)`` of every host by name, from one pass over the leases (not one per host).
    public var freeSlotsByHost: [String: [Int]] {
        var used: [String: Set<Int>] = [:]
        for lease in leases where lease.state.holdsSlot {
            if let host = lease.host, let slot = lease.slot { used[host, default: []].insert(slot) }
        }
        var free: [String: [Int]] = [:]
        for host in hosts {
            let taken = used[host.name] ?? []
            free[host.name] = (0..<host.slots).filter { !taken.contains($0) }
        }
        return free
    }

    /// Whether `service` may ask for one more lease: `max_backends` counts every lease it holds
    /// or waits for. Nil when it may; else the refusal's sentence.
    public func refusal(ofAnotherFor service: String) -> String? {
        let counted = usage(of: service).counted
        let maximum = terms(of: service).backends.max
        guard !BackendRange(min: 0, max: maximum).allowsAnother(holding: counted) else { return nil }
        return "denied: \(service) already holds or waits for \(counted) of its max_backends \(maximum)"
    }

    /// Arbitration's input: each service's claim and usage, and each open host's free slots.
    var arbitrationServices: [Arbitration.Service] {
        let usages = usageByService
        return serviceNames.map { name in
            let usage = usages[name] ?? Usage()
            let terms = terms(of: name, usage: usage)
            return Arbitration.Service(
                claim: FairShare.Claim(service: name, demand: usage.demand, backends: terms.backends,
                                       priority: terms.priority, weight: terms.weight),
                held: usage.held, draining: usage.draining, waiting: usage.waiting, preemptible: usage.preemptible)
        }
    }

    /// What to grant and reclaim now (see ``Arbitration/plan(services:hosts:)``).
    public func plan() -> Arbitration.Plan {
        let free = freeSlotsByHost
        return Arbitration.plan(
            services: arbitrationServices,
            hosts: hosts.filter(\.isOpen).map { Arbitration.Host(name: $0.name, free: free[$0.name]?.count ?? 0) })
    }
}

extension BackendRange {
    /// The one rule for `max_backends`: a service that holds or waits for `count` leases
    /// (draining ones included) may ask for another. The broker's admission and the front-end's
    /// policy both ask this.
    public func allowsAnother(holding count: Int) -> Bool {
        count < max
    }
}
