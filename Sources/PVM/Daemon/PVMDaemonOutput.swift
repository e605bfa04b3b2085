import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Reads a pvmd's stdout and stderr: the first stdout line is its socket path; everything else
/// goes to the log, and the last stderr lines are kept to explain a failed start.
final class PVMDaemonOutput: Sendable {
    private struct State {
        var stdoutBuffer = Data()
        var stderrBuffer = Data()
        var firstLine: String?
        var stdoutClosed = false
        var waiters: [Int: CheckedContinuation<String?, Never>] = [:]
        var lastWaiter = 0
        var errorTail: [String] = []
    }

    private let state = Mutex(State())
    private let logger: Logger

    /// Starts reading the read ends `output` and `errors`, each on a thread of its own that
    /// blocks in `read()` and closes its descriptor at end of file.
    init(output: Int32, errors: Int32, logger: Logger) {
        self.logger = logger
        Self.read(output, name: "pvmd stdout") { [self] in stdout($0) }
        Self.read(errors, name: "pvmd stderr") { [self] in stderr($0) }
    }

    /// Calls `consume` with each chunk read from `fd`, and once with empty data at its end.
    private static func read(_ fd: Int32, name: String, _ consume: @escaping @Sendable (Data) -> Void) {
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = Glibc.read(fd, &buffer, buffer.count)
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { break }
                consume(Data(buffer[0..<count]))
            }
            close(fd)
            consume(Data())
        }
        thread.name = name
        thread.start()
    }

    /// The first line the pvmd printed, or `nil` if its stdout closed without one (or the
    /// waiting task was cancelled).
    func firstLine() async -> String? {
        let id = state.withLock { state -> Int in
            state.lastWaiter += 1
            return state.lastWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> String?? in
                    if let line = state.firstLine { return .some(line) }
                    if state.stdoutClosed || Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: nil)
        }
    }

    /// The last lines of stderr.
    func errorTail() -> [String] {
        state.withLock { $0.errorTail }
    }

    private func stdout(_ data: Data) {
        var logged: [String] = []
        let (waiters, first) = state.withLock { state -> ([CheckedContinuation<String?, Never>], String?) in
            let lines = Self.split(&state.stdoutBuffer, adding: data, atEnd: data.isEmpty)
            for line in lines {
                if state.firstLine == nil { state.firstLine = line } else { logged.append(line) }
            }
            if data.isEmpty { state.stdoutClosed = true }
            guard state.firstLine != nil || state.stdoutClosed else { return ([], nil) }
            defer { state.waiters = [:] }
            return (Array(state.waiters.values), state.firstLine)
        }
        waiters.forEach { $0.resume(returning: first) }
        for line in logged { logger.debug("pvmd: \(line)") }
    }

    private func stderr(_ data: Data) {
        let lines = state.withLock { state -> [String] in
            let lines = Self.split(&state.stderrBuffer, adding: data, atEnd: data.isEmpty)
            state.errorTail = Array((state.errorTail + lines.filter { !$0.isEmpty }).suffix(8))
            return lines
        }
        for line in lines where !line.isEmpty { logger.warning("pvmd: \(line)") }
    }

    /// Appends `data` to `buffer` and takes out every complete line (and the rest at the end).
    private static func split(_ buffer: inout Data, adding data: Data, atEnd: Bool) -> [String] {
        buffer.append(data)
        var lines: [String] = []
        while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
            lines.append(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
            buffer.removeSubrange(buffer.startIndex...newline)
        }
        if atEnd, !buffer.isEmpty {
            lines.append(String(decoding: buffer, as: UTF8.self))
            buffer.removeAll()
        }
        return lines
    }
}
