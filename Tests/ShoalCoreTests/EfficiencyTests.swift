import ShoalCore
import Testing

/// Back-end-seconds per 1 000 requests served, from slots held and the front-ends' counts.
@Suite struct EfficiencyTests {
    @Test func slotSecondsOverRequestsServedPerThousand() {
        var efficiency = Efficiency()
        #expect(efficiency.services["a"]?.backendSecondsPerThousandRequests == nil)
        efficiency.held(["a": 2, "b": 0], for: .seconds(10))
        efficiency.held(["a": 1], for: .milliseconds(500))
        #expect(efficiency.services["a"]?.backendSeconds == 20.5)
        #expect(efficiency.services["b"] == nil, "no slot, no cost")
        #expect(efficiency.services["a"]?.backendSecondsPerThousandRequests == nil, "nothing served yet")

        #expect(efficiency.served(600, by: "fe-1", of: "a") == 600)
        #expect(efficiency.served(1000, by: "fe-1", of: "a") == 400, "only what is new")
        #expect(efficiency.served(25, by: "fe-2", of: "a") == 25)
        #expect(efficiency.served(15, by: "fe-2", of: "a") == 15, "a restarted front-end counts from zero")
        #expect(efficiency.services["a"]?.requestsServed == 1040)
        #expect(efficiency.services["a"]?.backendSecondsPerThousandRequests == 20.5 * 1000 / 1040)
    }
}
