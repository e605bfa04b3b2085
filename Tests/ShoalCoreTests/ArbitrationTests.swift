import ShoalCore
import Testing

@Suite struct FairShareTests {
    func claim(_ name: String, demand: Int, min: Int = 0, max: Int = 10, priority: Int = 0, weight: Int = 1) -> FairShare.Claim {
        FairShare.Claim(service: name, demand: demand, backends: BackendRange(min: min, max: max), priority: priority, weight: weight)
    }

    @Test func equalWeightsShareEqually() {
        let allocation = FairShare.allocate([claim("a", demand: 9), claim("b", demand: 9), claim("c", demand: 9)], capacity: 6)
        #expect(allocation.shares == ["a": 2, "b": 2, "c": 2])
    }

    @Test func aSmallDemandLeavesItsRestToOthers() {
        // Max-min: b only wants 1, so a and c split the rest.
        let allocation = FairShare.allocate([claim("a", demand: 9), claim("b", demand: 1), claim("c", demand: 9)], capacity: 7)
        #expect(allocation.shares == ["a": 3, "b": 1, "c": 3])
    }

    @Test func weightsSplitInProportion() {
        let allocation = FairShare.allocate([claim("a", demand: 9, weight: 2), claim("b", demand: 9, weight: 1)], capacity: 6)
        #expect(allocation.shares == ["a": 4, "b": 2])
    }

    @Test func aHigherPriorityTierIsServedFirst() {
        let allocation = FairShare.allocate([claim("a", demand: 9), claim("m2", demand: 2, priority: 10)], capacity: 3)
        #expect(allocation.shares == ["a": 1, "m2": 2])
    }

    @Test func minimumsComeBeforeAnyoneElsesShare() {
        let allocation = FairShare.allocate([claim("a", demand: 9, priority: 5), claim("b", demand: 2, min: 2)], capacity: 3)
        #expect(allocation.shares == ["a": 1, "b": 2])
    }

    @Test func maximumsAndDemandCap() {
        let allocation = FairShare.allocate([claim("a", demand: 9, max: 1), claim("b", demand: 0)], capacity: 5)
        #expect(allocation.shares == ["a": 1, "b": 0])
        #expect(allocation.explanation.last == "unallocated 4")
    }

    @Test func theOddSlotGoesByNameNotAlwaysToTheSameHeavyService() {
        let allocation = FairShare.allocate([claim("a", demand: 9), claim("b", demand: 9), claim("c", demand: 9)], capacity: 2)
        #expect(allocation.shares == ["a": 1, "b": 1, "c": 0])
    }

    @Test func theArithmeticIsExplained() {
        let allocation = FairShare.allocate([claim("a", demand: 3), claim("b", demand: 3, min: 1)], capacity: 3)
        #expect(allocation.explanation == ["capacity 3 slots", "b: minimum 1", "priority 0: a=2/3 (weight 1), b=1/3 (weight 1)", "unallocated 0"])
    }
}

@Suite struct ArbitrationTests {
    func service(_ name: String, held: Int, draining: Int = 0, waiting: Int, priority: Int = 0, weight: Int = 1,
                 preemptible: [String] = []) -> Arbitration.Service {
        Arbitration.Service(
            claim: FairShare.Claim(service: name, demand: 0, backends: BackendRange(min: 0, max: 3), priority: priority, weight: weight),
            held: held, draining: draining, waiting: waiting, preemptible: preemptible.map { LeaseID($0) })
    }

    @Test func fourFrontEndsOnThreeHostsGetSlotsByFairShare() {
        // A, B, C and Master2 each want 2; three hosts of one slot each: three get one, nobody two.
        let plan = Arbitration.plan(
            services: ["a", "b", "c", "master2"].map { service($0, held: 0, waiting: 2) },
            hosts: [.init(name: "c1", free: 1), .init(name: "c2", free: 1), .init(name: "c3", free: 1)])
        let granted = plan.decisions.compactMap { decision -> String? in
            if case .grant(let service, _) = decision { return service }
            return nil
        }
        #expect(granted.count == 3)
        #expect(Set(granted).count == 3, "no service got two slots while another got none: \(granted)")
        #expect(!plan.decisions.contains { if case .preempt = $0 { true } else { false } })
    }

    @Test func grantsSpreadOverTheFreestHosts() {
        let plan = Arbitration.plan(services: [service("a", held: 0, waiting: 2)],
                                    hosts: [.init(name: "c1", free: 2), .init(name: "c2", free: 2)])
        #expect(plan.decisions == [.grant(service: "a", host: "c1"), .grant(service: "a", host: "c2")])
    }

    @Test func aHigherPriorityServicePreemptsTheOneAboveItsShare() {
        // a holds all three slots; master2 (priority 10) now wants two.
        let plan = Arbitration.plan(
            services: [service("a", held: 3, waiting: 0, preemptible: ["L-3", "L-2", "L-1"]),
                       service("master2", held: 0, waiting: 2, priority: 10)],
            hosts: [.init(name: "c1", free: 0)])
        #expect(plan.allocation.shares == ["a": 1, "master2": 2])
        #expect(plan.decisions == [.preempt(lease: LeaseID("L-3"), from: "a", for: "master2"),
                                   .preempt(lease: LeaseID("L-2"), from: "a", for: "master2")])
    }

    @Test func slotsAlreadyDrainingAreNotPreemptedTwice() {
        let plan = Arbitration.plan(
            services: [service("a", held: 3, draining: 1, waiting: 0, preemptible: ["L-2", "L-1"]),
                       service("b", held: 0, waiting: 1)],
            hosts: [.init(name: "c1", free: 0)])
        #expect(plan.decisions.isEmpty, "the draining slot is already on its way to b: \(plan.decisions)")
    }

    @Test func nobodyIsPreemptedForAServiceAtItsShare() {
        let plan = Arbitration.plan(
            services: [service("a", held: 2, waiting: 0, preemptible: ["L-2", "L-1"]),
                       service("b", held: 2, waiting: 3, preemptible: ["L-4", "L-3"])],
            hosts: [.init(name: "c1", free: 0)])
        #expect(plan.decisions.isEmpty)
    }

    @Test func aWaitingRequestWithNoSlotAndNoVictimJustWaits() {
        let plan = Arbitration.plan(services: [service("a", held: 0, waiting: 1)], hosts: [])
        #expect(plan.decisions.isEmpty)
    }
}
