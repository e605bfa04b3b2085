import Foundation
import Logging
import ShoalProcess

#if canImport(Glibc)
import Glibc
#endif

/// A pvmd that outlives the process that started it — the broker's local pool — so a broker
/// restart finds the virtual machine and its workers still running and attaches again.
///
/// Everything it needs is in one directory: `pvmd.pid`, `pvmd.out` (its output; the first line
/// is its socket path) and `tmp/` (its `PVM_TMP`). Stop it with ``stop(directory:logger:)``.
public struct PersistentPVMDaemon: Sendable {
    public let directory: String
    public let pid: Int32
    public let socketPath: String
    /// False when an earlier process's pvmd was found running and is reused.
    public let startedNow: Bool

    /// Where the pvmd of `directory` logs (PVM's `pvml.UID.VMID` in its `PVM_TMP`): among other
    /// things, why a host's pvmd did not start.
    public static func logPath(directory: String) -> String {
        Files(directory).temporary + "/pvml.\(getuid()).shoal"
    }

    /// The log of the pvmd listening at `socket`: PVM writes both into its `PVM_TMP`. The newest
    /// `pvml.UID*` there; nil if there is none.
    public static func logBeside(socket: String) -> String? {
        let directory = (socket as NSString).deletingLastPathComponent
        let logs = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix("pvml.\(getuid())") }
            .map { directory + "/" + $0 }
        func modified(_ path: String) -> Date {
            (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
        }
        return logs.max { modified($0) < modified($1) }
    }

    /// The pvmd of `directory`: the running one if there is one, else a new one.
    public static func ensure(directory: String, logger: Logger) async throws -> PersistentPVMDaemon {
        let files = Files(directory)
        if let running = files.running() {
            logger.info("PVM: reusing the running pvmd", metadata: ["pid": "\(running.pid)", "socket": "\(running.socket)"])
            return PersistentPVMDaemon(directory: directory, pid: running.pid, socketPath: running.socket, startedNow: false)
        }
        try FileManager.default.createDirectory(atPath: files.temporary, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try? FileManager.default.removeItem(atPath: files.output)
        let configuration = PVMDaemon.Configuration(temporaryDirectory: files.temporary, virtualMachineID: "shoal")
        let process: ChildProcess
        do {
            process = try ChildProcess.spawn(
                [configuration.executable],
                environment: PVMDaemon.environment(for: configuration, directory: files.temporary, vmid: "shoal", logger: logger),
                standardOutput: .file(files.output), standardError: .file(files.output))
        } catch {
            throw PVMError(.daemonFailed, operation: "start pvmd", detail: error.description)
        }
        try "\(process.pid)\n".write(toFile: files.pid, atomically: true, encoding: .utf8)
        // It prints its socket path once it listens; a file has no readiness signal, so look.
        let deadline = ContinuousClock.now + configuration.startTimeout
        while ContinuousClock.now < deadline {
            if let running = files.running() {
                logger.info("PVM: started a pvmd that outlives the broker", metadata: [
                    "pid": "\(running.pid)", "socket": "\(running.socket)", "PVM_TMP": "\(files.temporary)",
                ])
                return PersistentPVMDaemon(directory: directory, pid: running.pid, socketPath: running.socket, startedNow: true)
            }
            if process.exitStatus != nil { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.send(SIGKILL)
        let output = (try? String(contentsOfFile: files.output, encoding: .utf8)) ?? ""
        throw PVMError(.daemonFailed, operation: "start pvmd", detail: output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Stops the pvmd of `directory`, if one runs: SIGTERM (it stops every task and the pvmds it
    /// started), then SIGKILL after `timeout`. Returns whether one was running.
    @discardableResult
    public static func stop(directory: String, timeout: Duration = .seconds(5), logger: Logger) async -> Bool {
        let files = Files(directory)
        guard let pid = files.pidIfAlive() else { return false }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + timeout
        while isAlive(pid), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if isAlive(pid) { kill(pid, SIGKILL) }
        try? FileManager.default.removeItem(atPath: files.pid)
        logger.info("PVM: stopped the pool's pvmd", metadata: ["pid": "\(pid)"])
        return true
    }

    private struct Files {
        let pid, output, temporary: String

        init(_ directory: String) {
            pid = directory + "/pvmd.pid"
            output = directory + "/pvmd.out"
            temporary = directory + "/tmp"
        }

        func pidIfAlive() -> Int32? {
            guard let text = try? String(contentsOfFile: pid, encoding: .utf8),
                  let value = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), isAlive(value) else { return nil }
            return value
        }

        /// The pvmd's PID and socket, when it runs and listens.
        func running() -> (pid: Int32, socket: String)? {
            guard let pid = pidIfAlive(),
                  let text = try? String(contentsOfFile: output, encoding: .utf8),
                  let first = text.split(separator: "\n").first.map(String.init), first.hasPrefix("/"),
                  FileManager.default.fileExists(atPath: first) else { return nil }
            return (pid, first)
        }
    }

    /// Running (a zombie counts as gone).
    static func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }
}
