/// What to start with `pvm_spawn`, and where.
public struct PVMSpawnRequest: Sendable, Hashable {
    /// Where the task may run.
    public enum Placement: Sendable, Hashable {
        /// Any host; PVM chooses (round robin).
        case anywhere
        /// The named host (`PvmTaskHost`); `"."` is the engine's own host.
        case host(String)
        /// Any host of a PVM architecture such as `LINUX64` (`PvmTaskArch`).
        case architecture(String)
    }

    /// Absolute path of the program on the target host.
    public var program: String
    /// Its arguments (without the program name), passed as they are: no shell.
    public var arguments: [String]
    /// Variables added to the task's environment (on top of what its pvmd passes on).
    public var environment: [String: String]
    /// Where it may run.
    public var placement: Placement
    /// Whether the engine asks for a `.taskExited` event for this task.
    public var notifyOnExit: Bool

    /// A request; by default anywhere, with an exit notification.
    public init(
        program: String,
        arguments: [String] = [],
        environment: [String: String] = [:],
        placement: Placement = .anywhere,
        notifyOnExit: Bool = true
    ) {
        self.program = program
        self.arguments = arguments
        self.environment = environment
        self.placement = placement
        self.notifyOnExit = notifyOnExit
    }
}
