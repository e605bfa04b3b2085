import Foundation
import ShoalProcess
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `ChildProcess`: real children, no shell unless the test needs a trap. Every wait is bounded.
struct ChildProcessTests {
    private let environment = ProcessInfo.processInfo.environment

    @Test func exitStatusIsTheChildsExitCode() async throws {
        let success = try ChildProcess.spawn(["/bin/true"], environment: environment)
        let failure = try ChildProcess.spawn(["/bin/false"], environment: environment)
        let three = try ChildProcess.spawn(["/usr/bin/env", "/bin/sh", "-c", "exit 3"], environment: environment)
        #expect(try await within(.seconds(10), "true") { await success.waitForExit() } == 0)
        #expect(try await within(.seconds(10), "false") { await failure.waitForExit() } == 1)
        #expect(try await within(.seconds(10), "exit 3") { await three.waitForExit() } == 3)
        #expect(success.exitStatus == 0)
        #expect(three.exitStatus == 3)
    }

    /// Swift's concurrency threads block nearly every signal; the child must not inherit that.
    @Test func sigtermFromAConcurrencyThreadStopsAChild() async throws {
        let child = try ChildProcess.spawn(["/bin/sleep", "30"], environment: environment)
        #expect(child.exitStatus == nil)
        #expect(await child.waitForExit(timeout: .milliseconds(100)) == nil)
        let status = try await within(.seconds(10), "SIGTERM") { await child.terminate(grace: .seconds(8)) }
        #expect(status == 128 + SIGTERM)
        #expect(child.exitStatus == 128 + SIGTERM)
        // The pid is reaped: a later signal goes nowhere, a later wait returns at once.
        child.send(SIGKILL)
        #expect(await child.waitForExit(timeout: .zero) == 128 + SIGTERM)
    }

    @Test func terminateEscalatesToSigkill() async throws {
        // The shell ignores SIGTERM; `exec` makes the pid sleep's, which inherits the ignored TERM.
        let child = try ChildProcess.spawn(["/bin/sh", "-c", "trap '' TERM; exec sleep 30"], environment: environment)
        // Wait until the trap is set: the shell has exec'd sleep once /proc says so.
        try await within(.seconds(10), "exec sleep") {
            while (try? String(contentsOfFile: "/proc/\(child.pid)/comm", encoding: .utf8)) != "sleep\n" {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        let start = ContinuousClock.now
        let status = try await within(.seconds(10), "terminate") { await child.terminate(grace: .milliseconds(300)) }
        #expect(status == 128 + SIGKILL)
        #expect(ContinuousClock.now - start >= .milliseconds(300))
    }

    /// The parent-death signal follows the thread that spawned the child, not the process: a
    /// child asked for by a thread that ends at once must live on, and end when we stop it.
    @Test func aChildThatDiesWithItsParentOutlivesTheThreadThatAskedForIt() async throws {
        let spawned = Mutex<ChildProcess?>(nil)
        let done = DispatchSemaphore(value: 0)
        let environment = environment
        Thread.detachNewThread {
            spawned.withLock { $0 = try? ChildProcess.spawn(["/bin/sleep", "30"], environment: environment, diesWithParent: true) }
            done.signal()
        }
        done.wait()
        let child = try #require(spawned.withLock { $0 })
        #expect(await child.waitForExit(timeout: .milliseconds(500)) == nil, "still running after its spawning thread ended")
        #expect((try? String(contentsOfFile: "/proc/\(child.pid)/comm", encoding: .utf8)) == "sleep\n")
        let status = try await within(.seconds(10), "SIGTERM") { await child.terminate(grace: .seconds(8)) }
        #expect(status == 128 + SIGTERM)
    }

    @Test func aMissingExecutableIsAChildProcessError() throws {
        let error = try #require(throws: ChildProcessError.self) {
            try ChildProcess.spawn(["/nonexistent/program", "x"], environment: environment)
        }
        #expect(error.command == "/nonexistent/program")
        #expect(error.errorNumber == ENOENT)
        #expect(error.description.hasPrefix("cannot start /nonexistent/program: "))

        let empty = try #require(throws: ChildProcessError.self) { try ChildProcess.spawn([], environment: environment) }
        #expect(empty.errorNumber == nil)
    }

    @Test func pipedOutputIsReadable() async throws {
        let child = try ChildProcess.spawn(["/usr/bin/env", "/bin/sh", "-c", "echo out; echo err >&2"],
                                           environment: environment, standardOutput: .pipe, standardError: .pipe)
        let output = try await within(.seconds(10), "read pipes") {
            (readToEnd(child.standardOutput!), readToEnd(child.standardError!))
        }
        #expect(output.0 == "out\n")
        #expect(output.1 == "err\n")
        #expect(try await within(.seconds(10), "exit") { await child.waitForExit() } == 0)
    }

    @Test func theChildGetsOnlyItsOwnDescriptors() async throws {
        // An fd of ours without close-on-exec must not reach the child.
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { fds.forEach { close($0) } }
        let child = try ChildProcess.spawn(["/bin/ls", "/proc/self/fd"], environment: environment, standardOutput: .pipe)
        let listing = try await within(.seconds(10), "ls") { readToEnd(child.standardOutput!) }
        // 0, 1, 2 and the directory ls itself opened.
        let open = listing.split(separator: "\n").compactMap { Int32($0) }
        #expect(!open.contains(fds[0]) && !open.contains(fds[1]), "child had \(open)")
        #expect(open.count <= 4)
        _ = try await within(.seconds(10), "exit") { await child.waitForExit() }
    }
}

/// Reads `fd` to its end and closes it.
private func readToEnd(_ fd: Int32) -> String {
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count < 0, errno == EINTR { continue }
        if count <= 0 { break }
        data += buffer[0..<count]
    }
    close(fd)
    return String(decoding: data, as: UTF8.self)
}
