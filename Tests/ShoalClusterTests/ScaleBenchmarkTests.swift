import Foundation
import ShoalTesting
import Testing

/// `make bench-scale`, at its smallest size: it measures every figure and leaves nothing running.
@Suite("scale benchmark")
struct ScaleBenchmarkTests {
    @Test("the scale part at 3 hosts and 4 services measures every figure and leaves nothing running")
    func smallestSize() async throws {
        try await PVMEnrolmentLock.shared.withLock {
            let output = try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(with: Result {
                        try ProcessRunner.runProduct("shoal-bench-broker",
                                                     ["scale", "--hosts", "3", "--services", "4", "--cycles", "20", "--json"],
                                                     timeout: 180)
                    })
                }
            }
            #expect(output.status == 0, "\(output.stderr.suffix(4000))")
            #expect(!output.stderr.contains("left running"), "\(output.stderr.suffix(4000))")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
            let scale = try #require(report["scale"] as? [String: Any], "\(output.stdout)")
            let sizes = try #require(scale["sizes"] as? [[String: Any]])
            let size = try #require(sizes.first)
            #expect(sizes.count == 1)
            #expect(size["hosts"] as? Int == 3 && size["services"] as? Int == 4 && size["slots"] as? Int == 12)
            #expect(size["leasesHeld"] as? Int == 11)
            for figure in ["grant", "release", "heartbeat", "arbitrationMicroseconds", "listLeases", "statusPage"] {
                let summary = try #require(size[figure] as? [String: Any], "\(figure)")
                #expect((summary["p50"] as? Double ?? 0) > 0, "\(figure): \(summary)")
            }
            #expect((size["cpuMillisecondsPerCycle"] as? Double ?? 0) > 0)
            let starts = try #require(scale["poolStarts"] as? [[String: Any]])
            if LocalCluster.namespacesWork() {
                let start = try #require(starts.first)
                #expect(start["hosts"] as? Int == 3)
                #expect(start["pvmdCount"] as? Int == 4, "the master's pvmd and one per host")
                #expect((start["poolSeconds"] as? Double ?? 0) > 0)
            } else {
                #expect(starts.isEmpty)
            }
        }
    }
}
