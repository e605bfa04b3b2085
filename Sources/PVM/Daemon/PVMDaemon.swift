import Foundation
import Logging
import ShoalProcess
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A pvmd started by this process as its own child, for one virtual machine.
///
/// It gets its own `PVM_TMP` directory and `PVM_VMID`, so it never meets another virtual
/// machine on the host, and `PVM_ALLOW_ROOT=1` when running as root (logged). It stays in the
/// foreground; `stop()` sends it SIGTERM (never `pvm_halt`), which also stops the pvmds it
/// started on other hosts and every task. Close the ``PVMEngine`` attached to it first: a
/// stopping pvmd sends SIGTERM to every enrolled task, this process included.
public final class PVMDaemon: Sendable {
    /// How to start the pvmd.
    public struct Configuration: Sendable {
        /// The pvmd binary.
        public var executable: String
        /// Words put before the pvmd command, e.g. a wrapper that runs it in a network
        /// namespace (`["/run/x/rsh", "h0"]`). Each must `exec` so the PID stays the pvmd's.
        public var launcher: [String]
        /// `PVM_TMP`; `nil` makes a fresh directory, removed again by `stop()`.
        public var temporaryDirectory: String?
        /// `PVM_VMID`; `nil` makes one unique to this process.
        public var virtualMachineID: String?
        /// The pvmd's `-n` name for its host, if not `gethostname()`.
        public var hostName: String?
        /// Extra environment for the pvmd (and, through it, for spawned tasks).
        public var environment: [String: String]
        /// How long to wait for the pvmd to say where it listens.
        public var startTimeout: Duration
        /// How long to wait after SIGTERM before SIGKILL.
        public var stopTimeout: Duration

        /// A configuration; the defaults start `/usr/bin/pvmd` in a fresh `PVM_TMP` with a fresh
        /// `PVM_VMID`.
        public init(
            executable: String = "/usr/bin/pvmd",
            launcher: [String] = [],
            temporaryDirectory: String? = nil,
            virtualMachineID: String? = nil,
            hostName: String? = nil,
            environment: [String: String] = [:],
            startTimeout: Duration = .seconds(10),
            stopTimeout: Duration = .seconds(5)
        ) {
            self.executable = executable
            self.launcher = launcher
            self.temporaryDirectory = temporaryDirectory
            self.virtualMachineID = virtualMachineID
            self.hostName = hostName
            self.environment = environment
            self.startTimeout = startTimeout
            self.stopTimeout = stopTimeout
        }
    }

    /// The pvmd's process id.
    public var pid: Int32 { process.pid }
    /// Its Unix-domain socket: pass it to ``PVMEngine/attach(socketPath:logger:)``.
    public let socketPath: String
    /// Its `PVM_TMP`.
    public let temporaryDirectory: String
    /// Its `PVM_VMID`.
    public let virtualMachineID: String
    /// The pvmd's log (and spawned tasks' output): `$PVM_TMP/pvml.<uid>.<vmid>`.
    public var logPath: String { "\(temporaryDirectory)/pvml.\(getuid()).\(virtualMachineID)" }

    private let ownsTemporaryDirectory: Bool
    private let stopTimeout: Duration
    private let logger: Logger
    private let process: ChildProcess
    /// Keeps reading (and logging) the pvmd's output for as long as the daemon lives.
    private let output: PVMDaemonOutput?

    private init(process: ChildProcess, socketPath: String, temporaryDirectory: String, ownsTemporaryDirectory: Bool,
                 virtualMachineID: String, stopTimeout: Duration, output: PVMDaemonOutput?, logger: Logger) {
        self.process = process
        self.socketPath = socketPath
        self.temporaryDirectory = temporaryDirectory
        self.ownsTemporaryDirectory = ownsTemporaryDirectory
        self.virtualMachineID = virtualMachineID
        self.stopTimeout = stopTimeout
        self.output = output
        self.logger = logger
    }

    /// Whether the pvmd process is still running.
    public var isRunning: Bool { process.exitStatus == nil }

    /// Starts a pvmd and waits until it listens.
    /// - Throws: `PVMError` `.daemonFailed` (with the pvmd's own words) or `.timedOut`.
    public static func start(_ configuration: Configuration = .init(), logger: Logger) async throws -> PVMDaemon {
        let vmid = configuration.virtualMachineID ?? "shoal-\(getpid())-\(PVMDaemonNames.next())"
        let (directory, owned) = try makeTemporaryDirectory(configuration.temporaryDirectory, vmid: vmid)
        let command = configuration.launcher + [configuration.executable]
            + (configuration.hostName.map { ["-n\($0)"] } ?? [])
        let process: ChildProcess
        do {
            process = try ChildProcess.spawn(
                command, environment: environment(for: configuration, directory: directory, vmid: vmid, logger: logger),
                standardOutput: .pipe, standardError: .pipe)
        } catch {
            if owned { try? FileManager.default.removeItem(atPath: directory) }
            throw PVMError(.daemonFailed, operation: "start pvmd", detail: error.description)
        }
        // Both are set: spawned with `.pipe`.
        let lines = PVMDaemonOutput(output: process.standardOutput!, errors: process.standardError!, logger: logger)
        logger.info("PVM: started pvmd", metadata: [
            "pid": "\(process.pid)", "PVM_TMP": "\(directory)", "PVM_VMID": "\(vmid)",
        ])
        let daemon = PVMDaemon(process: process, socketPath: "", temporaryDirectory: directory, ownsTemporaryDirectory: owned,
                               virtualMachineID: vmid, stopTimeout: configuration.stopTimeout, output: lines, logger: logger)
        // The pvmd prints its socket path as its first line once it listens.
        let first: String?
        do {
            first = try await withTimeout(configuration.startTimeout, operation: "start pvmd") {
                await lines.firstLine()
            }
        } catch {
            await daemon.terminate()
            throw error
        }
        guard let socketPath = first, socketPath.hasPrefix("/") else {
            await daemon.terminate()
            throw PVMError(.daemonFailed, operation: "start pvmd",
                           detail: ([first].compactMap { $0 } + lines.errorTail()).joined(separator: " | "))
        }
        return PVMDaemon(process: process, socketPath: socketPath, temporaryDirectory: directory,
                         ownsTemporaryDirectory: owned, virtualMachineID: vmid, stopTimeout: configuration.stopTimeout,
                         output: lines, logger: logger)
    }

    /// Stops the pvmd: SIGTERM, then SIGKILL after the stop timeout; removes its temporary
    /// directory if it made it.
    /// - Throws: `.stillAttached` (and stops nothing) while this process is enrolled with it.
    public func stop() async throws {
        if PVMEnrolment.isAttached(toSocket: socketPath) {
            throw PVMError(.stillAttached, operation: "stop pvmd \(pid)",
                           detail: "close the PVMEngine first: the pvmd would SIGTERM this process")
        }
        await terminate()
        logger.info("PVM: stopped pvmd", metadata: ["pid": "\(pid)", "status": "\(process.exitStatus.map { "\($0)" } ?? "?")"])
    }

    private func terminate() async {
        if process.exitStatus == nil {
            process.send(SIGTERM)
            if await process.waitForExit(timeout: stopTimeout) == nil {
                logger.warning("PVM: pvmd ignored SIGTERM, killing it", metadata: ["pid": "\(pid)"])
                process.send(SIGKILL)
                _ = await process.waitForExit(timeout: stopTimeout)
            }
        }
        if ownsTemporaryDirectory {
            try? FileManager.default.removeItem(atPath: temporaryDirectory)
        }
    }

    private static func makeTemporaryDirectory(_ path: String?, vmid: String) throws -> (String, Bool) {
        let directory = path ?? "\(NSTemporaryDirectory().trimmingSuffix("/"))/shoal-pvmd-\(vmid)"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw PVMError(.daemonFailed, operation: "start pvmd", detail: "PVM_TMP \(directory): \(error)")
        }
        return (directory, path == nil)
    }

    static func environment(for configuration: Configuration, directory: String, vmid: String,
                                    logger: Logger) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        // A task's own enrolment settings must not leak into a new pvmd.
        for name in ["PVMSOCK", "PVMEPID", "PVMTMASK", "PVMCTX", "PVMTRCBUF", "PVMTRCOPT"] {
            environment[name] = nil
        }
        environment["PVM_TMP"] = directory
        environment["PVM_VMID"] = vmid
        if geteuid() == 0 {
            environment["PVM_ALLOW_ROOT"] = "1"
            logger.notice("PVM: running as root, so the pvmd gets PVM_ALLOW_ROOT=1")
        }
        environment.merge(configuration.environment) { _, new in new }
        return environment
    }
}

/// Numbers the virtual machines one process starts.
enum PVMDaemonNames {
    private static let counter = Atomic<Int>(0)

    static func next() -> Int {
        counter.add(1, ordering: .relaxed).newValue
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
