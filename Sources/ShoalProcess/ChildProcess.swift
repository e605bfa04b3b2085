import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn`, every signal at its default and none blocked,
/// reaped by a thread of its own.
///
/// Foundation's `Process` passes on the spawning thread's signal mask, and Swift's concurrency
/// threads block nearly every signal: a child started that way ignores SIGTERM (and a pvmd never
/// sees SIGCHLD). Every long-lived child Shoal starts — pvmd, service instances — comes from here.
/// No shell is involved: `command[0]` is the executable's path (not looked up on `PATH`), the rest
/// its arguments. The child gets `/dev/null` as stdin and no descriptor of ours above stderr.
public final class ChildProcess: Sendable {
    public enum Output: Sendable {
        /// The parent's own descriptor.
        case inherit
        /// `/dev/null`.
        case discard
        /// A pipe whose read end is in ``standardOutput`` / ``standardError``.
        case pipe
        /// Appended to this file (created with mode 0600), which outlives us: for a daemon that
        /// must keep running when we are gone.
        case file(String)
    }

    public let pid: Int32
    /// The read end of the child's stdout, when spawned with `.pipe`; the caller reads it (a child
    /// blocks once the pipe is full) and closes it.
    public let standardOutput: Int32?
    /// The read end of the child's stderr, when spawned with `.pipe`; the caller reads and closes it.
    public let standardError: Int32?

    private let exit = Mutex<ExitState>(ExitState())

    private struct ExitState {
        var status: Int32?
        var waiters: [Int: CheckedContinuation<Int32?, Never>] = [:]
        var lastWaiter = 0
    }

    /// Starts `command` with exactly `environment` (pass `ProcessInfo.processInfo.environment` to
    /// inherit ours).
    /// - Parameter diesWithParent: the kernel sends the child SIGKILL when this process ends,
    ///   even by SIGKILL (`PR_SET_PDEATHSIG`, set by util-linux's `setpriv` before it execs the
    ///   command; without `setpriv` the child is started as usual). For a service instance,
    ///   which must not outlive the worker or front-end that owns it; never for a pvmd meant to
    ///   outlive us.
    /// - Throws: ``ChildProcessError`` when it cannot start (no such file, not executable, …).
    public static func spawn(
        _ command: [String],
        environment: [String: String],
        standardOutput: Output = .inherit,
        standardError: Output = .inherit,
        diesWithParent: Bool = false
    ) throws(ChildProcessError) -> ChildProcess {
        // A command that cannot run is reported by `spawnHere` as such, not by `setpriv`'s exit.
        guard diesWithParent, let setpriv, let executable = command.first, access(executable, X_OK) == 0 else {
            return try spawnHere(command, environment: environment, standardOutput: standardOutput, standardError: standardError)
        }
        // The death signal comes when the *thread* that spawned the child ends, and concurrency
        // threads come and go: spawn from the child's reaper thread, which lives as long as it.
        let handoff = SpawnHandoff()
        let thread = Thread {
            let outcome = Result { () throws(ChildProcessError) in
                try spawnHere([setpriv, "--pdeathsig", "KILL", "--"] + command, environment: environment,
                              standardOutput: standardOutput, standardError: standardError, startsReaper: false)
            }
            handoff.outcome.withLock { $0 = outcome }
            handoff.spawned.signal()
            if case .success(let child) = outcome { child.reap() }
        }
        thread.name = "spawner and reaper"
        thread.start()
        handoff.spawned.wait()
        return try handoff.outcome.withLock { $0 }!.get()
    }

    /// util-linux's `setpriv`, which can set the parent-death signal before it execs a command.
    private static let setpriv: String? = ["/usr/bin/setpriv", "/bin/setpriv"].first { (path: String) in access(path, X_OK) == 0 }

    private final class SpawnHandoff: Sendable {
        let outcome = Mutex<Result<ChildProcess, ChildProcessError>?>(nil)
        let spawned = DispatchSemaphore(value: 0)
    }

    private static func spawnHere(
        _ command: [String],
        environment: [String: String],
        standardOutput: Output,
        standardError: Output,
        startsReaper: Bool = true
    ) throws(ChildProcessError) -> ChildProcess {
        guard let executable = command.first else { throw ChildProcessError(command: "", reason: "empty command") }
        let variables = environment.map { "\($0.key)=\($0.value)" }
        guard (command + variables).allSatisfy(isCStringSafe) else {
            throw ChildProcessError(command: executable, reason: "NUL in an argument or the environment")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        let out = try redirect(standardOutput, to: 1, actions: &actions, command: executable)
        let err: (read: Int32, write: Int32)?
        do {
            err = try redirect(standardError, to: 2, actions: &actions, command: executable)
        } catch {
            if let out { close(out.read); close(out.write) }
            throw error
        }
        GNU.closeAbove2(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        var none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        // A process group of its own: Ctrl-C in a terminal reaches only us, and we stop our
        // children in order (drain first) instead of having them die under in-flight requests.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))

        var pid: pid_t = 0
        let status = withCStringArray(command) { argv in
            withCStringArray(variables) { envp in
                posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            }
        }
        for end in [out, err].compactMap({ $0?.write }) { close(end) }
        guard status == 0 else {
            for end in [out, err].compactMap({ $0?.read }) { close(end) }
            throw ChildProcessError(command: executable, errorNumber: status)
        }
        let child = ChildProcess(pid: pid, standardOutput: out?.read, standardError: err?.read)
        if startsReaper { child.startReaper() }
        return child
    }

    private init(pid: Int32, standardOutput: Int32?, standardError: Int32?) {
        self.pid = pid
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    /// The exit code once the child has ended, or 128 + the signal that ended it (-1 if it could
    /// not be waited for); `nil` while it runs.
    public var exitStatus: Int32? { exit.withLock { $0.status } }

    /// Waits for the child to end and returns ``exitStatus``. Not cancellable: it returns only once
    /// the child has ended (use ``waitForExit(timeout:)`` or ``terminate(grace:)`` to bound it).
    public func waitForExit() async -> Int32 {
        // Without a timeout only the reaper resumes the wait, always with a status.
        await wait(timeout: nil) ?? -1
    }

    /// Waits until the child ends (its status) or the calling task is cancelled (`nil`): a
    /// daemon's task group can then end when another of its tasks does.
    public func exitOrCancellation() async -> Int32? {
        let id = newWaiterID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Cancelled before it registered, the handler found nothing to resume: give up here.
                if let answer = register(id, continuation, unless: Task.isCancelled) { continuation.resume(returning: answer) }
            }
        } onCancel: {
            giveUp(waiter: id)
        }
    }

    /// Waits at most `timeout` for the child to end: its ``exitStatus``, or `nil` if it still runs.
    /// Cancellation does not cut the wait short, so a stop sequence built on it always completes.
    public func waitForExit(timeout: Duration) async -> Int32? {
        await wait(timeout: timeout)
    }

    /// Sends `signal` unless the child has already been reaped (its pid may then be someone else's).
    public func send(_ signal: Int32) {
        exit.withLock { state in
            if state.status == nil { _ = kill(pid, signal) }
        }
    }

    /// SIGTERM, then SIGKILL if it is still running after `grace`. Returns the exit status
    /// (128 + 9 when it took SIGKILL).
    @discardableResult
    public func terminate(grace: Duration = .seconds(5)) async -> Int32 {
        send(SIGTERM)
        if let status = await waitForExit(timeout: grace) { return status }
        send(SIGKILL)
        return await waitForExit()
    }

    /// Waits until the child has ended, or `timeout` (if any) has passed (`nil`).
    private func wait(timeout: Duration?) async -> Int32? {
        let id = newWaiterID()
        var timer: Task<Void, Never>?
        defer { timer?.cancel() }
        return await withCheckedContinuation { continuation in
            if let answer = register(id, continuation) { return continuation.resume(returning: answer) }
            // Started only once the waiter is registered, so even a zero timeout finds it.
            timer = timeout.map { timeout in
                Task { [self] in
                    guard (try? await Task.sleep(for: timeout)) != nil else { return }
                    giveUp(waiter: id)
                }
            }
        }
    }

    private func newWaiterID() -> Int {
        exit.withLock { state in
            state.lastWaiter += 1
            return state.lastWaiter
        }
    }

    /// Registers `continuation` as waiter `id`; or, if the child has ended (its status) or
    /// `giveUp` holds (`nil`), returns the answer for the caller to resume it with.
    private func register(_ id: Int, _ continuation: CheckedContinuation<Int32?, Never>, unless giveUp: Bool = false) -> Int32?? {
        exit.withLock { state -> Int32?? in
            if let status = state.status { return .some(status) }
            if giveUp { return .some(nil) }
            state.waiters[id] = continuation
            return .none
        }
    }

    /// Ends waiter `id`'s wait with `nil`, if it still waits.
    private func giveUp(waiter id: Int) {
        exit.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: nil)
    }

    /// Blocks in `waitid` on a thread of its own: no polling, and the status is known the moment
    /// the child ends. It waits without reaping first, then reaps and records the status under the
    /// lock `send` takes, so a signal can never reach a recycled pid.
    private func startReaper() {
        let thread = Thread { [self] in reap() }
        thread.name = "reaper \(pid)"
        thread.start()
    }

    /// Blocks until the child has ended, then records its status and wakes its waiters.
    private func reap() {
        var info = siginfo_t()
        var ended: Int32
        repeat { ended = waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) } while ended < 0 && errno == EINTR
        let (status, waiters) = exit.withLock { state in
            // A zombie now: this waitpid returns at once.
            var raw: Int32 = 0
            var reaped: pid_t = -1
            if ended == 0 {
                repeat { reaped = waitpid(pid, &raw, 0) } while reaped < 0 && errno == EINTR
            }
            let signal = raw & 0x7F
            let status: Int32 = reaped < 0 ? -1 : (signal == 0 ? (raw >> 8) & 0xFF : 128 + signal)
            state.status = status
            defer { state.waiters = [:] }
            return (status, state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    private static func redirect(
        _ output: Output, to fd: Int32, actions: inout posix_spawn_file_actions_t, command: String
    ) throws(ChildProcessError) -> (read: Int32, write: Int32)? {
        switch output {
        case .inherit:
            return nil
        case .discard:
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
            return nil
        case .file(let path):
            posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            return nil
        case .pipe:
            // Close-on-exec from the start, so no child spawned meanwhile by another thread gets
            // an end (a stray write end means the reader never sees end of file); dup2 gives our
            // child its own copy.
            guard let fds = GNU.closeOnExecPipe() else {
                throw ChildProcessError(command: command, call: "pipe", errorNumber: errno)
            }
            posix_spawn_file_actions_adddup2(&actions, fds.write, fd)
            return fds
        }
    }
}
