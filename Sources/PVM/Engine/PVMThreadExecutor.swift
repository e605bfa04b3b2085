import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The one thread every libpvm3 call runs on.
///
/// libpvm3 keeps its whole state in globals and is not thread-safe, so the process gets exactly
/// one of these (`shared`), started on first use and kept for the life of the process. It is the
/// `SerialExecutor` of ``PVMEngine``: jobs of the actor run here, one after the other. Between
/// batches the thread sleeps in `poll()` on a wake-up pipe plus the descriptors the engine gives
/// it (libpvm's sockets), and after every batch, and whenever a PVM socket is readable, it calls
/// the engine's pump, which drains messages with `pvm_nrecv` until none is left (libpvm buffers
/// messages in user space, so the socket can be quiet while one is already waiting). No sleeps,
/// no polling loops.
///
/// `@unchecked Sendable`: the job queue is behind a `Mutex` and `threadID` is atomic; `pump` is
/// only ever read or written on the executor's own thread, which the compiler cannot see.
final class PVMThreadExecutor: SerialExecutor, @unchecked Sendable {
    /// The process-wide PVM thread.
    static let shared = PVMThreadExecutor()

    /// Drains pending PVM messages and returns the descriptors to wait on next (none when the
    /// engine is not attached). Its argument lists the watched descriptors that `poll()` last
    /// reported hung up or failed (the pvmd went away). Called on the executor's thread only.
    typealias Pump = @Sendable (_ hungUp: [Int32]) -> [Int32]

    private let jobs = Mutex<[UnownedJob]>([])
    private let threadID = Atomic<UInt>(0)
    private let wakeRead: Int32
    private let wakeWrite: Int32
    /// Thread-confined: set and read on the executor's thread only.
    private var pump: Pump?

    private init() {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            fatalError("PVM thread: cannot create its wake-up pipe: \(String(cString: strerror(errno)))")
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        let thread = Thread { [unowned self] in self.run() }
        thread.name = "PVM"
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let wasEmpty = jobs.withLock { queue in
            queue.append(job)
            return queue.count == 1
        }
        // One byte per empty→non-empty transition is enough: the thread takes the whole queue.
        if wasEmpty { wake() }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// True when called on the PVM thread.
    var isCurrent: Bool {
        threadID.load(ordering: .acquiring) == UInt(pthread_self())
    }

    func checkIsolated() {
        precondition(isCurrent, "not on the PVM thread")
    }

    func isIsolatingCurrentContext() -> Bool? {
        isCurrent
    }

    /// Installs (or with `nil`, removes) the pump. Must be called on the PVM thread.
    func setPump(_ newPump: Pump?) {
        checkIsolated()
        pump = newPump
    }

    private func wake() {
        var byte: UInt8 = 1
        // EAGAIN means the pipe is full, so a wake-up is pending anyway.
        _ = write(wakeWrite, &byte, 1)
    }

    private func run() {
        threadID.store(UInt(pthread_self()), ordering: .releasing)
        var hungUp: [Int32] = []
        while true {
            let batch = jobs.withLock { queue in
                let batch = queue
                queue.removeAll(keepingCapacity: true)
                return batch
            }
            for job in batch {
                job.runSynchronously(on: asUnownedSerialExecutor())
            }
            // Every wake-up is a batch or a readable PVM socket (or, rarely, nothing): drain
            // what libpvm has, however it got there, and learn which sockets to watch now.
            let watched = pump?(hungUp) ?? []
            hungUp = []
            // Jobs enqueued meanwhile (resumed continuations, …) run before we sleep.
            if !jobs.withLock({ $0.isEmpty }) { continue }
            hungUp = waitForEvents(watching: watched)
        }
    }

    /// Sleeps in `poll()` until the wake-up pipe or a watched descriptor is readable (or hung
    /// up); returns the watched descriptors that hung up or failed.
    private func waitForEvents(watching descriptors: [Int32]) -> [Int32] {
        var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        fds += descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        while poll(&fds, nfds_t(fds.count), -1) < 0 {
            guard errno == EINTR else {
                fatalError("PVM thread: poll failed: \(String(cString: strerror(errno)))")
            }
        }
        if fds[0].revents != 0 {
            var buffer = [UInt8](repeating: 0, count: 64)
            while read(wakeRead, &buffer, buffer.count) > 0 {}
        }
        let broken = Int16(POLLHUP | POLLERR | POLLNVAL)
        return fds.dropFirst().filter { $0.revents & broken != 0 }.map(\.fd)
    }
}
