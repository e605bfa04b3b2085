import Foundation
import ShoalAPI
import ShoalTesting
import Testing
import ShoalClient

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
            let costs = try #require(lines.first { $0.hasPrefix("  back-end-seconds per 1 000 requests: ") }, "\(output.stdout)")
            for service in ["a", "b"] {
                #expect(costs.contains(" \(service) "), "efficiency of \(service) reported: \(costs)")
            }
            let leases = try #require(lines.first { $0.hasPrefix("  leases: ") })
            #expect((Int(leases.split(separator: " ")[1]) ?? 0) >= 2, "leases were granted: \(leases)")
            #expect(lines.contains("  nothing left running"), "\(output.stdout)")
        }
    }
}

/// The policy comparison, short: Knative's KPA driving real leases over the bursty trace's first 20 s.
@Suite("policies")
struct PoliciesStudyTests {
    @Test("shoal-demo policies --quick: KPA leases back-ends for the burst through the real cluster, and no request fails")
    func quickKPA() async throws {
        try await PVMEnrolmentLock.shared.withLock {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            let output = NSTemporaryDirectory() + "shoal-policies-\(UUID().uuidString.prefix(8)).csv"
            defer { try? FileManager.default.removeItem(atPath: output) }
            let run = try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(with: Result {
                        try ProcessRunner.runProduct("shoal-demo", [
                            "policies", "--quick", "--run", "kpa/serve", "--output", output,
                            "--trace", root.appendingPathComponent("docs/thresholds-trace-bursty.csv").path,
                        ], timeout: 180)
                    })
                }
            }
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr.suffix(4000))")
            let rows = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
            #expect(rows.first == ["trace", "scaling", "local", "requests", "failed", "mean_ms", "p99_ms", "backend_seconds", "lease_changes_per_minute"])
            let row = try #require(rows.dropFirst().first)
            #expect(row[0...2] == ["thresholds-trace-bursty", "kpa", "serve"])
            #expect((Int(row[3]) ?? 0) > 100, "requests answered: \(row)")
            #expect(row[4] == "0", "none failed: \(row)")
            #expect((Double(row[7]) ?? 0) > 0, "KPA leased a back-end for the burst: \(row)")
            #expect((Double(row[8]) ?? 0) > 0, "\(row)")
        }
    }
}

@Suite("shoal up and down")
struct UpDownTests {
    @Test("shoal up keeps a cluster running until shoal down stops all of it")
    func upThenDown() async throws {
        try await PVMEnrolmentLock.shared.withLock {
            let services = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("services.d").path
            let state = NSTemporaryDirectory() + "shoal-up-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: state) }
            let up = try ManagedProcess.startProduct(
                "shoal", ["up", "--state-dir", state, "--port", "0", "--services", services],
                readyPrefix: "cluster up:", timeout: 90)
            let url = try #require(ReadyLine.brokerURL(up.firstLine))
            // A broker that never answers is the failure; one slowed by a busy machine (the whole
            // suite starts at once) is not.
            let client = try BrokerClient(baseURL: url, token: nil, timeout: .seconds(30))
            #expect(try await client.pool().hosts.count >= 1)
            #expect(Set(try await client.services().map(\.name)) == ["a", "b", "c", "master2"])
            await client.close()

            let down = try ProcessRunner.runProduct("shoal", ["down", "--state-dir", state], timeout: 120)
            #expect(down.status == 0, "\(down.stderr)")
            #expect(!up.isRunning, "shoal up ended")
            let namespaces = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/env"), ["ip", "netns", "list"])
            #expect(!namespaces.stdout.contains("demo\(up.pid % 100_000)h"), "\(namespaces.stdout)")
            #expect(!FileManager.default.fileExists(atPath: state + "/up.pid"))
        }
    }
}
