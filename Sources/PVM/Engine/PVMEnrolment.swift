import CPVM
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The process-wide enrolment: who holds it, and the libpvm3 calls that make it.
enum PVMEnrolment {
    /// The socket path (or `"environment"`) of the attached engine, if one is attached.
    private static let holder = Mutex<String?>(nil)

    /// Takes the process's single enrolment, or throws `alreadyAttached`.
    static func claim(socketPath: String?) throws {
        let taken = holder.withLock { holder -> String? in
            if let holder { return holder }
            holder = socketPath ?? "environment"
            return nil
        }
        if let taken {
            throw PVMError(.alreadyAttached, operation: "attach", detail: "attached to \(taken)")
        }
    }

    static func release() {
        holder.withLock { $0 = nil }
    }

    /// Whether an engine of this process is attached to the pvmd at `socketPath`.
    static func isAttached(toSocket socketPath: String) -> Bool {
        holder.withLock { $0 == socketPath }
    }

    /// Enrols with the pvmd. On the PVM thread only.
    /// What enrolment tells the engine.
    struct Identity: Sendable {
        var tid: PVMTaskID
        var parent: PVMTaskID?
        /// Whether a pvmd started this process (it then forgets it when the process exits,
        /// not when it leaves).
        var spawned: Bool
    }

    static func enrol(socketPath: String?, logger: Logger) throws -> Identity {
        if geteuid() == 0, getenv("PVM_ALLOW_ROOT") == nil {
            // libpvm3 refuses root (and exits the process) without it.
            setenv("PVM_ALLOW_ROOT", "1", 1)
            logger.notice("PVM: running as root, so PVM_ALLOW_ROOT=1 is set for libpvm3")
        }
        if let socketPath {
            // Left set afterwards on purpose: glibc's setenv only swaps a pointer for a variable
            // that exists, while adding one may move the environment under other threads'
            // getenv. (Children of a pvmd get their own PVMSOCK; PVMDaemon drops this one.)
            setenv("PVMSOCK", socketPath, 1)
        }
        // Errors become Swift errors; libpvm3 must not print them itself.
        pvm_setopt(PvmAutoErr, 0)
        let tid = pvm_mytid()
        if let error = PVMError.check(tid, "pvm_mytid") {
            throw PVMError(error.code, operation: "enrol (pvm_mytid)",
                           detail: socketPath.map { "pvmd socket \($0)" } ?? "pvmd from the environment")
        }
        // Every message goes through the pvmds: one socket to watch, none to other tasks.
        pvm_setopt(PvmRoute, PvmDontRoute)
        pvm_setopt(PvmAutoErr, 0)
        let parent = pvm_parent()
        logger.info("PVM: enrolled", metadata: [
            "tid": "\(PVMTaskID(rawValue: tid))",
            "pvmd": "\(socketPath ?? "from environment")",
        ])
        // A pvmd passes PVMEPID to the tasks it starts.
        return Identity(tid: PVMTaskID(rawValue: tid), parent: parent > 0 ? PVMTaskID(rawValue: parent) : nil,
                        spawned: getenv("PVMEPID") != nil)
    }
}
