import CPVM
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// This process's enrolment in a PVM virtual machine: the one way the project calls libpvm3.
///
/// Every method runs on the process's single PVM thread (``PVMThreadExecutor``), so libpvm3,
/// which is not thread-safe, is only ever entered from there. Incoming messages and PVM
/// notifications are drained on that thread as soon as they arrive and handed to waiting
/// `receive` calls or the ``events`` stream.
///
/// libpvm3 has one enrolment per process: at most one engine is attached at a time. Attach with
/// ``attach(socketPath:logger:)`` (or ``withAttached(socketPath:logger:_:)``), and `close()` when
/// done — before stopping the pvmd: a pvmd that stops sends SIGTERM to every enrolled task.
public actor PVMEngine {
    /// This task's tid (`pvm_mytid`).
    public nonisolated let tid: PVMTaskID
    /// The task that spawned this one (`pvm_parent`), if PVM spawned it.
    public nonisolated let parent: PVMTaskID?
    /// Task exits, host deletions and additions, and a lost pvmd. One consumer at a time; it ends
    /// when the engine closes.
    public nonisolated let events: AsyncStream<PVMEvent>

    nonisolated let logger: Logger
    /// Whether a pvmd started this process.
    nonisolated let spawned: Bool
    let eventSink: AsyncStream<PVMEvent>.Continuation
    var mailbox = PVMMailbox()
    /// Why the engine is detached, or `nil` while attached.
    var detachedReason: PVMError?
    /// The pvmd socket (`pvm_getfds()[0]`), to recognise when it hangs up.
    var daemonSocket: Int32 = -1

    /// The process's PVM thread: every method of the engine runs there.
    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        PVMThreadExecutor.shared.asUnownedSerialExecutor()
    }

    private init(identity: PVMEnrolment.Identity, logger: Logger) {
        self.tid = identity.tid
        self.parent = identity.parent
        self.spawned = identity.spawned
        self.logger = logger
        (events, eventSink) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
    }

    /// Enrols this process with a pvmd and returns the attached engine.
    ///
    /// - Parameters:
    ///   - socketPath: the pvmd's Unix-domain socket (``PVMDaemon/socketPath``, or the first
    ///     line a pvmd prints). `nil` lets libpvm3 find its pvmd itself: `PVMSOCK` in a task PVM
    ///     spawned, otherwise `$PVM_TMP/pvmd.<uid>[.$PVM_VMID]`.
    ///   - logger: where the engine logs.
    ///
    /// libpvm3 reads its settings only from the environment: the engine sets `PVMSOCK` to
    /// `socketPath` (on the PVM thread, right before `pvm_mytid`), and `PVM_ALLOW_ROOT=1` when
    /// running as root (libpvm3 exits the process otherwise), logging that it did.
    public static func attach(socketPath: String? = nil, logger: Logger) async throws -> PVMEngine {
        try PVMEnrolment.claim(socketPath: socketPath)
        do {
            let identity = try await PVMThreadRunner.shared.run {
                try PVMEnrolment.enrol(socketPath: socketPath, logger: logger)
            }
            let engine = PVMEngine(identity: identity, logger: logger)
            await engine.start()
            return engine
        } catch {
            PVMEnrolment.release()
            throw error
        }
    }

    /// Attaches, runs `body` with the engine, and closes it whatever happens.
    public static func withAttached<R: Sendable>(
        socketPath: String? = nil,
        logger: Logger,
        _ body: (PVMEngine) async throws -> R
    ) async throws -> R {
        let engine = try await attach(socketPath: socketPath, logger: logger)
        do {
            let result = try await body(engine)
            await engine.close()
            return result
        } catch {
            await engine.close()
            throw error
        }
    }

    /// Whether the engine is still enrolled with its pvmd.
    public var isAttached: Bool { detachedReason == nil }

    /// Leaves the virtual machine (`pvm_exit`; never `pvm_halt`). Waiting receives fail with
    /// `notAttached`, the event stream ends. Calling it again does nothing.
    public func close() {
        guard detachedReason == nil else { return }
        // The pvmd forgets a task it did not start only when it closes that task's socket, a
        // moment after answering pvm_exit. A pvmd stopped inside that moment would still
        // SIGTERM this process: keep a copy of the socket and wait (bounded) for the pvmd's
        // end to close. (Tasks it started are forgotten when they exit; it keeps their socket.)
        let watch = !spawned && daemonSocket >= 0 ? dup(daemonSocket) : -1
        let status = pvm_exit()
        if let error = PVMError.check(status, "pvm_exit") {
            logger.debug("PVM: pvm_exit failed", metadata: ["error": "\(error)"])
        }
        if watch >= 0 {
            if !Self.waitForHangUp(watch, milliseconds: 5_000) {
                logger.warning("PVM: the pvmd did not close its end after pvm_exit")
            }
            Glibc.close(watch)
        }
        logger.debug("PVM: left the virtual machine", metadata: ["tid": "\(tid)"])
        detach(PVMError(.notAttached, operation: "close", detail: "the engine was closed"))
    }

    /// Blocks until the peer of `socket` closes (reads reach end of file), at most
    /// `milliseconds`; returns whether it did.
    private static func waitForHangUp(_ socket: Int32, milliseconds: Int32) -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(milliseconds))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return false }
            let millisecondsLeft = Int32(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000) + 1
            var fd = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&fd, 1, millisecondsLeft)
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { return false }
            // Drain whatever the pvmd still sent; 0 bytes is its close.
            let count = read(socket, &buffer, buffer.count)
            if count == 0 || (count < 0 && errno != EINTR && errno != EAGAIN) { return true }
        }
    }

    private func start() {
        var fds: UnsafeMutablePointer<Int32>?
        if pvm_getfds(&fds) > 0, let fds {
            daemonSocket = fds[0]
            // libpvm3 leaves its socket inheritable: keep it out of every child we start.
            _ = fcntl(daemonSocket, F_SETFD, fcntl(daemonSocket, F_GETFD) | FD_CLOEXEC)
        }
        PVMThreadExecutor.shared.setPump { [self] hungUp in
            assumeIsolated { $0.pump(hungUp: hungUp) }
        }
        logger.debug("PVM: attached", metadata: ["tid": "\(tid)", "parent": "\(parent.map { "\($0)" } ?? "none")"])
    }

    /// Marks the engine detached, fails every waiter with `reason`, ends the event stream and
    /// gives the process's enrolment back.
    func detach(_ reason: PVMError) {
        guard detachedReason == nil else { return }
        detachedReason = reason
        PVMThreadExecutor.shared.setPump(nil)
        mailbox.failAll(reason)
        eventSink.finish()
        PVMEnrolment.release()
    }

    /// Throws unless attached.
    func requireAttached(_ operation: @autoclosure () -> String) throws {
        if let detachedReason {
            throw PVMError(.notAttached, operation: operation(), detail: detachedReason.detail)
        }
    }
}
