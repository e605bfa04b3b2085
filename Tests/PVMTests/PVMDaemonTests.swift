import PVM
import Testing

/// Start failures of a pvmd; nothing here enrols, so it may run beside the integration suites.
struct PVMDaemonTests {
    @Test func aMissingPvmdIsDaemonFailed() async throws {
        let error = try await #require(throws: PVMError.self) {
            try await PVMDaemon.start(.init(executable: "/nonexistent/pvmd"), logger: testLogger("daemon"))
        }
        #expect(error.code == .daemonFailed)
        #expect(error.description.contains("/nonexistent/pvmd"))
    }

    @Test func aPvmdThatSaysNothingIsDaemonFailed() async throws {
        let error = try await #require(throws: PVMError.self) {
            try await PVMDaemon.start(.init(executable: "/bin/false"), logger: testLogger("daemon"))
        }
        #expect(error.code == .daemonFailed)
    }

    @Test func aSilentPvmdTimesOut() async throws {
        let error = try await #require(throws: PVMError.self) {
            // `sh -c 'exec sleep 30' sh /usr/bin/pvmd`: a process that never prints its socket.
            try await PVMDaemon.start(.init(launcher: ["/bin/sh", "-c", "exec sleep 30", "sh"],
                                            startTimeout: .milliseconds(300), stopTimeout: .seconds(2)),
                                      logger: testLogger("daemon"))
        }
        #expect(error.code == .timedOut)
    }
}
