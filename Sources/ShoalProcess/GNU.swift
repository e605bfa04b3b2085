#if canImport(Glibc)
import Glibc
#endif

/// glibc functions that Swift's `Glibc` module does not declare (they need `_GNU_SOURCE`),
/// looked up once by name. Debian 12's glibc (2.36) has both; without them we fall back to
/// `pipe` + `fcntl` and to leaving descriptors open.
enum GNU {
    private typealias Pipe2 = @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    private typealias AddClosefrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    // `dlsym(RTLD_DEFAULT, …)`; glibc's RTLD_DEFAULT is NULL.
    private static let pipe2 = dlsym(nil, "pipe2").map { unsafeBitCast($0, to: Pipe2.self) }
    private static let addClosefrom = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: AddClosefrom.self) }

    /// A pipe with both ends close-on-exec from the start; `nil` with `errno` set on failure.
    static func closeOnExecPipe() -> (read: Int32, write: Int32)? {
        var fds: [Int32] = [-1, -1]
        if let pipe2 {
            guard pipe2(&fds, O_CLOEXEC) == 0 else { return nil }
        } else {
            guard pipe(&fds) == 0 else { return nil }
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        return (fds[0], fds[1])
    }

    /// Makes the child close every descriptor above stderr (after the dup2s): whatever this
    /// process opened without close-on-exec — libpvm3's socket, a listener — stays ours.
    static func closeAbove2(_ actions: inout posix_spawn_file_actions_t) {
        _ = addClosefrom?(&actions, 3)
    }
}
