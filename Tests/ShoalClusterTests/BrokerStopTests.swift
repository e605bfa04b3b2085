import Foundation
import Logging
import PVM
import ShoalAPI
import ShoalClient
import ShoalTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("broker stop")
struct BrokerStopTests {
    @Test("SIGTERM stops the broker within seconds, even while a front-end's 20 s long poll waits")
    func stopsPromptlyDespiteALongPoll() async throws {
        let state = NSTemporaryDirectory() + "shoal-stop-\(UUID().uuidString.prefix(8))"
        defer {
            try? FileManager.default.removeItem(atPath: state)
        }
        let broker = try ManagedProcess.startProduct("shoal", ["broker", "--slots", "1", "--port", "0", "--state-dir", state],
                                                     readyPrefix: "shoal broker listening on", timeout: 60)
        let url = try #require(ReadyLine.brokerURL(broker.firstLine))
        let client = try BrokerClient(baseURL: url, token: nil, timeout: .seconds(5))
        let poll = Task { try await client.events(after: -1, wait: .seconds(20)) }
        try await Task.sleep(for: .milliseconds(500))

        let stopping = ContinuousClock.now
        kill(broker.pid, SIGTERM)
        while broker.isRunning, ContinuousClock.now - stopping < .seconds(20) { try await Task.sleep(for: .milliseconds(50)) }
        let took = ContinuousClock.now - stopping
        #expect(!broker.isRunning)
        #expect(broker.exitStatus == 0)
        #expect(took < .seconds(3), "stopped after \(took)")
        _ = try? await poll.value  // Answered (empty) when the broker stopped waiting.
        await client.close()
        await PersistentPVMDaemon.stop(directory: state + "/pvm", logger: .init(label: "test"))
    }
}
