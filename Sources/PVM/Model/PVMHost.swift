/// A host of the virtual machine, as `pvm_config` reports it.
public struct PVMHost: Hashable, Sendable {
    /// The host's pvmd tid.
    public let id: PVMHostID
    /// The name it was added by (or the master's own name).
    public let name: String
    /// PVM's architecture name, e.g. `LINUX64`.
    public let architecture: String
    /// Relative speed (`sp=` in a host file; 1000 by default).
    public let speed: Int

    /// A host description.
    public init(id: PVMHostID, name: String, architecture: String, speed: Int) {
        self.id = id
        self.name = name
        self.architecture = architecture
        self.speed = speed
    }
}

/// What happened to one host of an `addHosts` or `deleteHosts` call.
public struct PVMHostOutcome<Success: Sendable>: Sendable {
    /// The host name as given.
    public let name: String
    /// Its result: the new host's id for an add, nothing for a delete, or why it failed.
    public let result: Result<Success, PVMError>

    /// The outcome for host `name`.
    public init(name: String, result: Result<Success, PVMError>) {
        self.name = name
        self.result = result
    }

    /// The error, if this host failed.
    public var error: PVMError? {
        if case .failure(let error) = result { return error }
        return nil
    }
}

/// A task of the virtual machine, as `pvm_tasks` reports it.
public struct PVMTaskInfo: Hashable, Sendable {
    /// Its tid.
    public let id: PVMTaskID
    /// The task that spawned it, if any.
    public let parent: PVMTaskID?
    /// The host it runs on.
    public let host: PVMHostID
    /// The program name PVM knows it by (for tasks spawned through `/usr/bin/env`, that one).
    public let name: String
    /// Its process id on its host.
    public let pid: Int32

    /// A task description.
    public init(id: PVMTaskID, parent: PVMTaskID?, host: PVMHostID, name: String, pid: Int32) {
        self.id = id
        self.parent = parent
        self.host = host
        self.name = name
        self.pid = pid
    }
}
