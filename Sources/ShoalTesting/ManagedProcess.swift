import Foundation
import ShoalProcess

#if canImport(Glibc)
import Glibc
#endif

/// A long-running executable started for a test: started, its first stdout line read (a server
/// prints where it listens there), and stopped by its PID.
///
/// It is a ``ChildProcess``, so no signal is blocked in it, whichever thread started it. The
/// methods here are synchronous (they run in `deinit`); they wait by looking at the child's exit
/// status, which its reaper thread sets, so they never need a concurrency thread to make progress.
public final class ManagedProcess: Sendable {
    public enum Failure: Error, CustomStringConvertible {
        case noFirstLine(String, seconds: Double)
        case exitedEarly(String, status: Int32)

        public var description: String {
            switch self {
            case .noFirstLine(let what, let seconds): "\(what) printed no line within \(seconds) s"
            case .exitedEarly(let what, let status): "\(what) exited with status \(status) before printing a line"
            }
        }
    }

    /// The first line the process wrote to stdout, without the newline.
    public let firstLine: String
    private let child: ChildProcess

    public var pid: Int32 { child.pid }

    private init(child: ChildProcess, firstLine: String) {
        self.child = child
        self.firstLine = firstLine
    }

    /// Starts `executable` and waits (at most `timeout` seconds) for its first stdout line — or,
    /// with `readyPrefix`, its first line that starts with it (a front-end's own children print
    /// theirs first). Later output is read and dropped, so the process never blocks on a full
    /// pipe; stderr is inherited (it shows up in the test log), or appended to `standardErrorFile`
    /// (for a test that reads the process's log).
    /// - Throws: ``Failure``, or `ChildProcessError` if it cannot start at all.
    public static func start(
        _ executable: URL, _ arguments: [String] = [], readyPrefix: String? = nil, timeout: Double = 10,
        standardErrorFile: String? = nil
    ) throws -> ManagedProcess {
        let what = "\(executable.lastPathComponent) \(arguments.joined(separator: " "))"
        let child = try ChildProcess.spawn([executable.path] + arguments, environment: ProcessInfo.processInfo.environment,
                                           standardOutput: .pipe, standardError: standardErrorFile.map { .file($0) } ?? .inherit)
        let fd = child.standardOutput!  // Spawned with `.pipe`.
        var line: [UInt8]
        do {
            let deadline = Date().addingTimeInterval(timeout)
            repeat {
                line = try readLine(fd, of: child, what: what, deadline: deadline, timeout: timeout)
            } while readyPrefix.map { !String(decoding: line, as: UTF8.self).hasPrefix($0) } ?? false
        } catch {
            close(fd)
            throw error
        }
        // Keep draining stdout until the process closes it.
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(fd, &buffer, buffer.count)
                if count < 0, errno == EINTR { continue }
                if count <= 0 { break }
            }
            close(fd)
        }
        return ManagedProcess(child: child, firstLine: String(decoding: line, as: UTF8.self))
    }

    /// Reads `fd` up to the first newline; kills the child (and waits for it) on failure.
    private static func readLine(_ fd: Int32, of child: ChildProcess, what: String, deadline: Date,
                                 timeout: Double) throws -> [UInt8] {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                child.send(SIGKILL)
                waitForExit(child)
                throw Failure.noFirstLine(what, seconds: timeout)
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(min(remaining, 1) * 1000)) > 0 else { continue }
            switch read(fd, &byte, 1) {
            case 1:
                if byte == UInt8(ascii: "\n") { return line }
                line.append(byte)
            case 0:
                // Its stdout closed: it is ending (or, if it lingers, it gets no more time).
                if !waitForExit(child, until: deadline) {
                    child.send(SIGKILL)
                    waitForExit(child)
                }
                throw Failure.exitedEarly(what, status: child.exitStatus ?? -1)
            default:
                if errno == EINTR { continue }
                child.send(SIGKILL)
                waitForExit(child)
                throw Failure.exitedEarly(what, status: -1)
            }
        }
    }

    /// Starts a product of this package built beside the running tests (see
    /// ``ProcessRunner/builtProduct(_:)``).
    public static func startProduct(
        _ name: String, _ arguments: [String] = [], readyPrefix: String? = nil, timeout: Double = 10,
        standardErrorFile: String? = nil
    ) throws -> ManagedProcess {
        try start(ProcessRunner.builtProduct(name), arguments, readyPrefix: readyPrefix, timeout: timeout,
                  standardErrorFile: standardErrorFile)
    }

    public var isRunning: Bool { child.exitStatus == nil }
    /// The exit status once it ended (128 + the signal's number if a signal ended it).
    public var exitStatus: Int32? { child.exitStatus }

    /// Sends `SIGTERM` to the PID and waits up to `timeout` seconds; then `SIGKILL`.
    public func stop(timeout: Double = 5) {
        guard isRunning else { return }
        child.send(SIGTERM)
        if !Self.waitForExit(child, until: Date().addingTimeInterval(timeout)) {
            child.send(SIGKILL)
            Self.waitForExit(child)
        }
    }

    /// Kills the process with `SIGKILL` and waits until it is gone (for a test that wants a
    /// member to die).
    public func kill9() {
        child.send(SIGKILL)
        Self.waitForExit(child)
    }

    deinit {
        stop()
    }

    /// Waits (blocking, checking every 5 ms) until `child` has ended or `deadline` has passed;
    /// whether it ended.
    @discardableResult
    private static func waitForExit(_ child: ChildProcess, until deadline: Date = .distantFuture) -> Bool {
        while child.exitStatus == nil {
            guard Date() < deadline else { return false }
            usleep(5_000)
        }
        return true
    }
}
