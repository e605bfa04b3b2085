import CPVM

extension PVMError {
    /// A stable error code: libpvm3's own values (`PvmNoHost` is -6) and the engine's (1001…).
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The number: libpvm3's negative value or the engine's 1001…
        public let rawValue: Int32

        /// The code with this number (also one nobody knows).
        public init(rawValue: Int32) {
            self.rawValue = rawValue
        }

        /// PVM's constant name, or the engine's; `PvmError<n>` for a code nobody knows.
        public var name: String { Self.table[rawValue]?.name ?? "PvmError\(rawValue)" }
        /// A readable sentence.
        public var text: String { Self.table[rawValue]?.text ?? "Unknown PVM error \(rawValue)" }
        public var description: String { name }

        // libpvm3 (pvm3.h), by value so the names never drift from the library.
        /// `PvmBadParam`.
        public static let badParam = Code(rawValue: PvmBadParam)
        /// `PvmMismatch`.
        public static let mismatch = Code(rawValue: PvmMismatch)
        /// `PvmOverflow`.
        public static let overflow = Code(rawValue: PvmOverflow)
        /// `PvmNoData`.
        public static let noData = Code(rawValue: PvmNoData)
        /// `PvmNoHost`.
        public static let noHost = Code(rawValue: PvmNoHost)
        /// `PvmNoFile`.
        public static let noFile = Code(rawValue: PvmNoFile)
        /// `PvmDenied`.
        public static let denied = Code(rawValue: PvmDenied)
        /// `PvmNoMem`.
        public static let noMemory = Code(rawValue: PvmNoMem)
        /// `PvmBadMsg`.
        public static let badMessage = Code(rawValue: PvmBadMsg)
        /// `PvmSysErr`.
        public static let systemError = Code(rawValue: PvmSysErr)
        /// `PvmNoBuf`.
        public static let noBuffer = Code(rawValue: PvmNoBuf)
        /// `PvmNoSuchBuf`.
        public static let noSuchBuffer = Code(rawValue: PvmNoSuchBuf)
        /// `PvmNullGroup`.
        public static let nullGroup = Code(rawValue: PvmNullGroup)
        /// `PvmDupGroup`.
        public static let duplicateGroup = Code(rawValue: PvmDupGroup)
        /// `PvmNoGroup`.
        public static let noGroup = Code(rawValue: PvmNoGroup)
        /// `PvmNotInGroup`.
        public static let notInGroup = Code(rawValue: PvmNotInGroup)
        /// `PvmNoInst`.
        public static let noInstance = Code(rawValue: PvmNoInst)
        /// `PvmHostFail`.
        public static let hostFailed = Code(rawValue: PvmHostFail)
        /// `PvmNoParent`.
        public static let noParent = Code(rawValue: PvmNoParent)
        /// `PvmNotImpl`.
        public static let notImplemented = Code(rawValue: PvmNotImpl)
        /// `PvmDSysErr`.
        public static let daemonSystemError = Code(rawValue: PvmDSysErr)
        /// `PvmBadVersion`.
        public static let badVersion = Code(rawValue: PvmBadVersion)
        /// `PvmOutOfRes`.
        public static let outOfResources = Code(rawValue: PvmOutOfRes)
        /// `PvmDupHost`.
        public static let duplicateHost = Code(rawValue: PvmDupHost)
        /// `PvmCantStart`.
        public static let cantStart = Code(rawValue: PvmCantStart)
        /// `PvmAlready`.
        public static let already = Code(rawValue: PvmAlready)
        /// `PvmNoTask`.
        public static let noTask = Code(rawValue: PvmNoTask)
        /// `PvmNotFound`.
        public static let notFound = Code(rawValue: PvmNotFound)
        /// `PvmExists`.
        public static let exists = Code(rawValue: PvmExists)
        /// `PvmHostrNMstr`.
        public static let hosterNotOnMaster = Code(rawValue: PvmHostrNMstr)
        /// `PvmParentNotSet`.
        public static let parentNotSet = Code(rawValue: PvmParentNotSet)
        /// `PvmIPLoopback`.
        public static let ipLoopback = Code(rawValue: PvmIPLoopback)

        // The engine's own.
        /// A receive (or another wait) ran out of time.
        public static let timedOut = Code(rawValue: 1001)
        /// The engine is closed, was never attached, or lost its pvmd.
        public static let notAttached = Code(rawValue: 1002)
        /// libpvm3 allows one enrolment per process, and another engine holds it.
        public static let alreadyAttached = Code(rawValue: 1003)
        /// A received message is not in the engine's format.
        public static let badFormat = Code(rawValue: 1004)
        /// A pvmd could not be started, or did not say where it listens.
        public static let daemonFailed = Code(rawValue: 1005)
        /// This process is still enrolled with the pvmd it was asked to stop (a pvmd sends
        /// SIGTERM to every enrolled task when it stops, this process included).
        public static let stillAttached = Code(rawValue: 1006)

        private static let table: [Int32: (name: String, text: String)] = [
            PvmOk: ("PvmOk", "Success"),
            PvmBadParam: ("PvmBadParam", "Bad parameter"),
            PvmMismatch: ("PvmMismatch", "Parameter mismatch"),
            PvmOverflow: ("PvmOverflow", "Value too large"),
            PvmNoData: ("PvmNoData", "End of buffer"),
            PvmNoHost: ("PvmNoHost", "No such host"),
            PvmNoFile: ("PvmNoFile", "No such file"),
            PvmDenied: ("PvmDenied", "Permission denied"),
            PvmNoMem: ("PvmNoMem", "Malloc failed"),
            PvmBadMsg: ("PvmBadMsg", "Can't decode message"),
            PvmSysErr: ("PvmSysErr", "Can't contact local daemon"),
            PvmNoBuf: ("PvmNoBuf", "No current buffer"),
            PvmNoSuchBuf: ("PvmNoSuchBuf", "No such buffer"),
            PvmNullGroup: ("PvmNullGroup", "Null group name"),
            PvmDupGroup: ("PvmDupGroup", "Already in group"),
            PvmNoGroup: ("PvmNoGroup", "No such group"),
            PvmNotInGroup: ("PvmNotInGroup", "Not in group"),
            PvmNoInst: ("PvmNoInst", "No such instance"),
            PvmHostFail: ("PvmHostFail", "Host failed"),
            PvmNoParent: ("PvmNoParent", "No parent task"),
            PvmNotImpl: ("PvmNotImpl", "Not implemented"),
            PvmDSysErr: ("PvmDSysErr", "Pvmd system error"),
            PvmBadVersion: ("PvmBadVersion", "Version mismatch"),
            PvmOutOfRes: ("PvmOutOfRes", "Out of resources"),
            PvmDupHost: ("PvmDupHost", "Duplicate host"),
            PvmCantStart: ("PvmCantStart", "Can't start pvmd"),
            PvmAlready: ("PvmAlready", "Already in progress"),
            PvmNoTask: ("PvmNoTask", "No such task"),
            PvmNotFound: ("PvmNotFound", "Not found"),
            PvmExists: ("PvmExists", "Already exists"),
            PvmHostrNMstr: ("PvmHostrNMstr", "Hoster run on non-master host"),
            PvmParentNotSet: ("PvmParentNotSet", "Spawning parent set PvmNoSpawnParent"),
            PvmIPLoopback: ("PvmIPLoopback", "Master host's IP is loopback"),
            1001: ("EngineTimedOut", "Timed out"),
            1002: ("EngineNotAttached", "Not attached to a pvmd"),
            1003: ("EngineAlreadyAttached", "Another engine of this process is attached"),
            1004: ("EngineBadFormat", "Message is not in the engine's format"),
            1005: ("DaemonFailed", "The pvmd could not be started"),
            1006: ("DaemonStillAttached", "This process is still enrolled with that pvmd"),
        ]
    }
}
