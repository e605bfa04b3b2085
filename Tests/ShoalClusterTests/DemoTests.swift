import Foundation
import ShoalAPI
import ShoalTesting
import Testing
import ShoalClient

/// The README's demo, short: a whole cluster from `services.d/` under loads that peak in turn.
@Suite("demo")
struct DemoTests {
    @Test("the demo's back-ends follow each service's load, change hands, lose no request, and leave nothing running")
    func quickDemo() async throws {
        try await PVMEnrolmentLock.shared.withLock {
            let services = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("services.d").path
            let output = NSTemporaryDirectory() + "shoal-demo-test-\(UUID().uuidString.prefix(8))"
            defer { try? FileManager.default.removeItem(atPath: output) }
            // On its own thread: the demo takes about a minute, the test pool has few threads.
            let run = try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(with: Result {
                        try ProcessRunner.runProduct("shoal-demo", ["--quick", "--services", services, "--output", output], timeout: 300)
                    })
                }
            }
            #expect(run.status == 0, "\(run.stdout)\n\(run.stderr.suffix(4000))")
            let lines = run.stdout.split(separator: "\n").map(String.init)
            for service in ["a", "b", "c", "master2"] {
                let served = try #require(lines.first { $0.hasPrefix("  \(service): ") }, "\(run.stdout)")
                #expect((Int(served.split(separator: " ")[1]) ?? 0) > 100, "\(served)")
                #expect(served.hasSuffix(" 0 failed"), "\(served)")
                // Rose with its own load (master2 always keeps one), and went back once it fell.
                let breathing = try #require(lines.first { $0.hasPrefix("  back-ends of \(service): ") }, "\(run.stdout)")
                let peak = Int(breathing.split(separator: " ")[5]) ?? 0
                #expect(peak >= (service == "master2" ? 2 : 1), "\(breathing)")
                #expect(breathing.contains(" back ") && !breathing.contains("NOT"), "\(breathing)")
            }
            let handOvers = try #require(lines.first { $0.hasPrefix("  hand-overs while the load ran: ") }, "\(run.stdout)")
            #expect((Int(handOvers.split(separator: " ")[5]) ?? 0) >= 4, "\(handOvers)")
            let costs = try #require(lines.first { $0.hasPrefix("  back-end-seconds per 1 000 requests: ") }, "\(run.stdout)")
            for service in ["a", "b"] {
                #expect(costs.contains(" \(service) "), "efficiency of \(service) reported: \(costs)")
            }
            // The per-second view, as the demo printed it and as the timeline keeps it.
            #expect(lines.contains { $0.hasPrefix(" 10s master2 ") && $0.contains("│ c1[") }, "\(run.stdout)")
            let csv = try String(contentsOfFile: output + "/timeline.csv", encoding: .utf8)
            #expect(csv.split(separator: "\n").count > 4 * 30, "a row per service and second")
            let png = try Data(contentsOf: URL(fileURLWithPath: output + "/timeline.png"))
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000, "a PNG timeline: \(png.count) bytes")
            #expect(lines.contains("  nothing left running"), "\(run.stdout)")
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
