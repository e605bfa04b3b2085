import ShoalProcess
import CPVM
import Logging

extension PVMEngine {
    /// The program that sets a spawned task's extra environment, so no shell is involved and
    /// this (threaded) process never calls `setenv` for a child.
    static let envProgram = "/usr/bin/env"

    /// Starts one task (`pvm_spawn`).
    ///
    /// With an environment, PVM runs `/usr/bin/env K=V ... program arguments...`: env replaces
    /// itself with the program (same PID, same tid), no shell parses anything. A missing program
    /// is then reported by env's exit (status 127) — a `.taskExited` event right away — instead of
    /// `PvmNoFile`, which PVM reports when it cannot find the program it was given.
    ///
    /// - Throws: `PvmNoFile` (no such program), `PvmNoHost` (no such host), `PvmBadParam`
    ///   (relative path, bad variable name), … with the program and host in the message.
    public func spawn(_ request: PVMSpawnRequest) throws -> PVMTaskID {
        let where_: String?
        let flag: Int32
        switch request.placement {
        case .anywhere: (where_, flag) = (nil, PvmTaskDefault)
        case .host(let host): (where_, flag) = (host, PvmTaskHost)
        case .architecture(let architecture): (where_, flag) = (architecture, PvmTaskArch)
        }
        let operation = "pvm_spawn(\(request.program)\(where_.map { " on \($0)" } ?? ""))"
        try requireAttached(operation)
        let (program, arguments) = try Self.commandLine(for: request, operation)
        try requireCStrings([program] + arguments + (where_.map { [$0] } ?? []), operation)

        var tid: Int32 = 0
        let started = withMutableCString(program) { program in
            withMutableCString(where_) { where_ in
                withCStringArray(arguments) { argv in
                    pvm_spawn(program, argv, flag, where_, 1, &tid)
                }
            }
        }
        if let error = PVMError.check(started, operation) { throw error }
        // None started: the tid slot holds the reason.
        guard started == 1 else {
            throw PVMError(tid < 0 ? .init(rawValue: tid) : .cantStart, operation: operation)
        }
        let task = PVMTaskID(rawValue: tid)
        logger.debug("PVM: spawned", metadata: ["tid": "\(task)", "program": "\(request.program)"])
        if request.notifyOnExit { try watch(tasks: [task]) }
        return task
    }

    /// Shorthand for ``spawn(_:)``.
    public func spawn(
        _ program: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        on host: String? = nil
    ) throws -> PVMTaskID {
        try spawn(PVMSpawnRequest(program: program, arguments: arguments, environment: environment,
                                  placement: host.map { .host($0) } ?? .anywhere))
    }

    /// Kills a task (`pvm_kill`: SIGTERM from its pvmd).
    public func kill(_ task: PVMTaskID) throws {
        let operation = "pvm_kill(\(task))"
        try requireAttached(operation)
        if let error = PVMError.check(pvm_kill(task.rawValue), operation) { throw error }
    }

    /// The tasks of the virtual machine, or only those on `host` (`pvm_tasks`).
    public func tasks(on host: PVMHostID? = nil) throws -> [PVMTaskInfo] {
        let operation = "pvm_tasks"
        try requireAttached(operation)
        var count: Int32 = 0
        var infos: UnsafeMutablePointer<pvmtaskinfo>?
        if let error = PVMError.check(pvm_tasks(host?.rawValue ?? 0, &count, &infos), operation) { throw error }
        guard let infos else { return [] }
        return (0..<Int(count)).map { index in
            let info = infos[index]
            return PVMTaskInfo(
                id: PVMTaskID(rawValue: info.ti_tid),
                parent: info.ti_ptid > 0 ? PVMTaskID(rawValue: info.ti_ptid) : nil,
                host: PVMHostID(rawValue: info.ti_host),
                name: info.ti_a_out.map { String(cString: $0) } ?? "",
                pid: info.ti_pid)
        }
    }

    /// The program and arguments handed to `pvm_spawn` for `request`.
    static func commandLine(for request: PVMSpawnRequest, _ operation: String) throws -> (String, [String]) {
        guard request.program.hasPrefix("/") else {
            throw PVMError(.badParam, operation: operation, detail: "the program needs an absolute path")
        }
        if request.environment.isEmpty { return (request.program, request.arguments) }
        // env takes leading NAME=VALUE words as assignments and the first other word as the
        // program, so names must be plain and the program must not contain '='.
        guard !request.program.contains("=") else {
            throw PVMError(.badParam, operation: operation, detail: "a program with '=' cannot take an environment")
        }
        let assignments = try request.environment.sorted { $0.key < $1.key }.map { name, value in
            guard isVariableName(name) else {
                throw PVMError(.badParam, operation: operation, detail: "bad variable name \(name.debugDescription)")
            }
            return "\(name)=\(value)"
        }
        return (envProgram, assignments + [request.program] + request.arguments)
    }

    private static func isVariableName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else {
            return false
        }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && $0.properties.isAlphabetic) || ("0"..."9").contains($0) }
    }
}
