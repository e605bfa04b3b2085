import Foundation
import Logging
import ShoalBroker
import ShoalTesting
import Testing

@Suite struct StateLockTests {
    @Test("a broker that finds the state directory locked waits for the holder to stop, then takes it")
    func waitsForTheHolder() async throws {
        try await withStateDirectory { directory in
            let logs = LogCapture()
            // Another process holds the lock for a second: util-linux's flock(1), as a stopping broker would.
            let holder = try ManagedProcess.start(URL(fileURLWithPath: "/usr/bin/flock"),
                                                  [directory.path + "/broker.lock", "sh", "-c", "echo held; exec sleep 1"],
                                                  readyPrefix: "held")
            let started = ContinuousClock.now
            let lock = try await StateLock.acquire(stateDirectory: directory.path, logger: logs.logger)
            #expect(ContinuousClock.now - started >= .milliseconds(700), "it waited for the holder")
            #expect(!holder.isRunning)
            #expect(logs.contains("another broker holds the state directory; waiting for it to stop"))
            let pid = try String(contentsOfFile: directory.path + "/broker.lock", encoding: .utf8)
            #expect(pid == "\(getpid())\n", "the lock file names its holder")
            _ = lock
        }
    }
}
