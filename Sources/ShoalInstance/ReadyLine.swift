#if canImport(Glibc)
import Glibc
#endif

/// Prints a daemon's one ready line (`shoal NAME listening on HOST:PORT ...`) and flushes it at
/// once: scripts and tests wait for it on a pipe.
public func announceReady(_ line: String) {
    print(line)
    fflush(nil)  // Naming stdout is not Sendable in Swift 6; nil flushes every stream.
}
