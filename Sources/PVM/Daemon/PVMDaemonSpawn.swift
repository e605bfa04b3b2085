import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Starts the pvmd with `posix_spawn`, with every signal at its default and none blocked.
///
/// Foundation's `Process` passes on the spawning thread's signal mask, and Swift's concurrency
/// threads block nearly every signal: a pvmd started that way ignores SIGTERM and never sees
/// SIGCHLD, so it neither stops nor reports its tasks' exits.
enum PVMDaemonSpawn {
    struct Child {
        let pid: Int32
        /// Read ends of the child's stdout and stderr.
        let output: Int32
        let errors: Int32
    }

    static func spawn(_ command: [String], environment: [String: String]) throws -> Child {
        let output = try pipe()
        let errors = try pipe()
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output.write, 1)
        posix_spawn_file_actions_adddup2(&actions, errors.write, 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        var none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let variables = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let status = withCStringArray(command) { argv in
            withCStringArray(variables) { envp in
                posix_spawn(&pid, command[0], &actions, &attributes, argv, envp)
            }
        }
        close(output.write)
        close(errors.write)
        guard status == 0 else {
            close(output.read)
            close(errors.read)
            throw PVMError(.daemonFailed, operation: "start pvmd",
                           detail: "posix_spawn \(command[0]): \(String(cString: strerror(status)))")
        }
        return Child(pid: pid, output: output.read, errors: errors.read)
    }

    /// Waits for the child on a thread of its own (blocking in `waitpid`, no polling) and calls
    /// `exited` with its status: the exit code, or 128 + the signal that ended it.
    static func reap(_ pid: Int32, exited: @escaping @Sendable (Int32) -> Void) {
        let thread = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 {
                guard errno == EINTR else {
                    exited(-1)
                    return
                }
            }
            let signal = status & 0x7F
            exited(signal == 0 ? (status >> 8) & 0xFF : 128 + signal)
        }
        thread.name = "pvmd reaper \(pid)"
        thread.start()
    }

    /// A pipe whose ends are not inherited by any other child.
    private static func pipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard Glibc.pipe(&fds) == 0 else {
            throw PVMError(.daemonFailed, operation: "start pvmd", detail: "pipe: \(String(cString: strerror(errno)))")
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }
}
