import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One broker per state directory: an exclusive `flock` on `broker.lock`, held for the
/// process's life (the kernel drops it when the process dies, however it dies). The file names
/// the holder's PID, for the message a waiting broker prints.
public struct StateLock: Sendable {
    private let descriptor: Int32

    /// Takes the lock; while another broker holds it, waits for that broker to stop (a restart by
    /// a service manager may come while the old process is still shutting down).
    public static func acquire(stateDirectory: String, logger: Logger) async throws -> StateLock {
        let path = stateDirectory + "/broker.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw BrokerError(.invalid, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        var waited = false
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            if !waited {
                let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                logger.notice("another broker holds the state directory; waiting for it to stop", metadata: [
                    "lock": "\(path)", "holder_pid": "\(holder.isEmpty ? "?" : holder)",
                ])
                waited = true
            }
            do {
                try await Task.sleep(for: .milliseconds(200))
            } catch {
                close(descriptor)
                throw error
            }
        }
        if waited { logger.notice("the other broker stopped; this one takes the state directory") }
        _ = ftruncate(descriptor, 0)
        let pid = "\(getpid())\n"
        _ = pwrite(descriptor, pid, pid.utf8.count, 0)
        return StateLock(descriptor: descriptor)
    }
}
