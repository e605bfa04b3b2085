import Foundation
import ShoalTesting
import Testing

/// The README's demo, short: a whole cluster from `services.d/` under a load ramp.
@Suite("demo")
struct DemoTests {
    @Test("the demo runs a cluster under load, loses no request, and leaves nothing running")
    func quickDemo() async throws {
        try await PVMEnrolmentLock.shared.withLock {
            let services = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("services.d").path
            // On its own thread: the demo takes half a minute, the test pool has few threads.
            let output = try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(with: Result {
                        try ProcessRunner.runProduct("shoal-demo", ["--quick", "--services", services], timeout: 240)
                    })
                }
            }
            #expect(output.status == 0, "\(output.stdout)\n\(output.stderr.suffix(4000))")
            let lines = output.stdout.split(separator: "\n").map(String.init)
            for service in ["a", "b"] {
                let line = try #require(lines.first { $0.hasPrefix("  \(service): ") }, "\(output.stdout)")
                let words = line.split(separator: " ")
                #expect((Int(words[1]) ?? 0) > 100, "\(line)")
                #expect(line.hasSuffix(" 0 failed"), "\(line)")
            }
            let leases = try #require(lines.first { $0.hasPrefix("  leases: ") })
            #expect((Int(leases.split(separator: " ")[1]) ?? 0) >= 2, "leases were granted: \(leases)")
            #expect(lines.contains("  nothing left running"), "\(output.stdout)")
        }
    }
}
