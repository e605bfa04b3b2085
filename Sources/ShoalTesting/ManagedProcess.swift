import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A long-running executable started for a test: started, its first stdout line read (a server
/// prints where it listens there), and stopped by its PID.
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

    public let pid: Int32
    /// The first line the process wrote to stdout, without the newline.
    public let firstLine: String
    private let process: Mutex<Process>
    private let name: String

    private init(process: sending Process, pid: Int32, firstLine: String, name: String) {
        self.process = Mutex(process)
        self.pid = pid
        self.firstLine = firstLine
        self.name = name
    }

    /// Starts `executable` and waits (at most `timeout` seconds) for its first stdout line.
    /// Later output is read and dropped, so the process never blocks on a full pipe; stderr is
    /// inherited (it shows up in the test log).
    public static func start(_ executable: URL, _ arguments: [String] = [], timeout: Double = 10) throws -> ManagedProcess {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let pid = process.processIdentifier
        let what = "\(executable.lastPathComponent) \(arguments.joined(separator: " "))"

        let fd = pipe.fileHandleForReading.fileDescriptor
        var line: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var byte: UInt8 = 0
        readLoop: while true {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                kill(pid, SIGKILL)
                process.waitUntilExit()
                throw Failure.noFirstLine(what, seconds: timeout)
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(min(remaining, 1) * 1000)) > 0 else { continue }
            switch read(fd, &byte, 1) {
            case 1:
                if byte == UInt8(ascii: "\n") { break readLoop }
                line.append(byte)
            case 0:
                process.waitUntilExit()
                throw Failure.exitedEarly(what, status: process.terminationStatus)
            default:
                if errno == EINTR { continue }
                kill(pid, SIGKILL)
                process.waitUntilExit()
                throw Failure.exitedEarly(what, status: -1)
            }
        }
        // Keep draining stdout until the process closes it.
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread {
            while let data = try? handle.read(upToCount: 65536), !data.isEmpty {}
        }
        return ManagedProcess(process: process, pid: pid, firstLine: String(decoding: line, as: UTF8.self), name: what)
    }

    /// Starts a product of this package built beside the running tests (see
    /// ``ProcessRunner/builtProduct(_:)``).
    public static func startProduct(_ name: String, _ arguments: [String] = [], timeout: Double = 10) throws -> ManagedProcess {
        try start(ProcessRunner.builtProduct(name), arguments, timeout: timeout)
    }

    public var isRunning: Bool { process.withLock { $0.isRunning } }

    /// Sends `SIGTERM` to the PID and waits up to `timeout` seconds; then `SIGKILL`.
    public func stop(timeout: Double = 5) {
        process.withLock { process in
            guard process.isRunning else { return }
            kill(pid, SIGTERM)
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning, Date() < deadline { usleep(10_000) }
            if process.isRunning {
                kill(pid, SIGKILL)
                process.waitUntilExit()
            }
        }
    }

    /// Stops the process without waiting for it (for a test that wants a member to die).
    public func kill9() {
        process.withLock { process in
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
    }

    deinit {
        stop()
    }
}
