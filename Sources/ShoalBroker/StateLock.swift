import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One broker per state directory: an exclusive `flock` on `broker.lock`, held for the
/// process's life (the kernel drops it when the process dies, however it dies).
public struct StateLock: Sendable {
    private let descriptor: Int32

    public static func acquire(stateDirectory: String) throws -> StateLock {
        let path = stateDirectory + "/broker.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw BrokerError(.invalid, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw BrokerError(.conflict, "another broker already uses the state directory \(stateDirectory): stop it first, or pass a different --state-dir")
        }
        return StateLock(descriptor: descriptor)
    }
}
