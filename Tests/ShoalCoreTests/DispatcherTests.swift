import ShoalCore
import Testing

/// The paper's dispatch rules, checked against injected loads (thresholds low 2, high 6).
@Suite struct PaperDispatchTests {
    let thresholds = LoadThresholds(low: 2, high: 6)

    @Test func levelsFollowTheTwoThresholds() {
        #expect(thresholds.level(inFlight: 0) == .low)
        #expect(thresholds.level(inFlight: 1) == .low)
        #expect(thresholds.level(inFlight: 2) == .medium)
        #expect(thresholds.level(inFlight: 5) == .medium)
        #expect(thresholds.level(inFlight: 6) == .high)
        #expect(thresholds.level(inFlight: 100) == .high)
    }

    @Test func noMembersMeansNoChoice() {
        var dispatcher = Dispatcher(policy: .paper, thresholds: thresholds)
        #expect(dispatcher.choose(inFlight: [Int]()) == nil)
    }

    @Test func firstLowMemberInListOrderWins() {
        var dispatcher = Dispatcher(policy: .paper, thresholds: thresholds)
        #expect(dispatcher.choose(inFlight: [0, 0, 0]) == 0)
        #expect(dispatcher.choose(inFlight: [1, 0, 0]) == 0, "stays on the first until it reaches Medium")
        #expect(dispatcher.choose(inFlight: [2, 0, 0]) == 1, "moves on once the first is Medium")
        #expect(dispatcher.choose(inFlight: [3, 4, 1]) == 2)
        #expect(dispatcher.choose(inFlight: [6, 1, 0]) == 1, "a High member is skipped")
    }

    @Test func roundRobinAmongMediumMembersWhenNoneIsLow() {
        var dispatcher = Dispatcher(policy: .paper, thresholds: thresholds)
        let loads = [3, 4, 2]
        let chosen = (0..<6).map { _ in dispatcher.choose(inFlight: loads) }
        #expect(chosen == [0, 1, 2, 0, 1, 2])
    }

    @Test func highMembersGetNothingWhileAnotherIsMedium() {
        var dispatcher = Dispatcher(policy: .paper, thresholds: thresholds)
        let loads = [6, 3, 9, 4]
        let chosen = (0..<4).map { _ in dispatcher.choose(inFlight: loads) }
        #expect(chosen == [1, 3, 1, 3])
    }

    @Test func allHighFallsBackToTheLeastLoaded() {
        var dispatcher = Dispatcher(policy: .paper, thresholds: thresholds)
        #expect(dispatcher.choose(inFlight: [9, 7, 8]) == 1)
    }

    @Test func aLowMemberInterruptsTheRoundRobin() {
        var dispatcher = Dispatcher(policy: .paper, thresholds: thresholds)
        #expect(dispatcher.choose(inFlight: [3, 3]) == 0)
        #expect(dispatcher.choose(inFlight: [3, 1]) == 1)
        #expect(dispatcher.choose(inFlight: [3, 3]) == 1, "round-robin resumes after the last Medium pick")
    }
}

@Suite struct LeastLoadedDispatchTests {
    @Test func picksTheLessLoadedOfTwoDistinctMembers() {
        var dispatcher = Dispatcher(policy: .leastLoaded, thresholds: LoadThresholds())
        var generator = SplitMix64(seed: 42)
        // With two members the two choices are always both members: the lighter one wins.
        for _ in 0..<50 {
            #expect(dispatcher.choose(inFlight: [5, 2], using: &generator) == 1)
            #expect(dispatcher.choose(inFlight: [1, 2], using: &generator) == 0)
        }
    }

    @Test func neverPicksTheSingleMostLoadedMember() {
        var dispatcher = Dispatcher(policy: .leastLoaded, thresholds: LoadThresholds())
        var generator = SplitMix64(seed: 7)
        var counts = [0, 0, 0, 0]
        for _ in 0..<400 {
            counts[dispatcher.choose(inFlight: [3, 3, 3, 50], using: &generator)!] += 1
        }
        #expect(counts[3] == 0)
        #expect(counts[0] > 0 && counts[1] > 0 && counts[2] > 0, "spreads over the equal members: \(counts)")
    }

    @Test func oneMemberIsAlwaysChosen() {
        var dispatcher = Dispatcher(policy: .leastLoaded, thresholds: LoadThresholds())
        #expect(dispatcher.choose(inFlight: [100]) == 0)
    }
}
