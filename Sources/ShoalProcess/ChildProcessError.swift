#if canImport(Glibc)
import Glibc
#endif

/// A child process could not be started.
public struct ChildProcessError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The executable (`command[0]`).
    public var command: String
    /// What went wrong, in words.
    public var reason: String
    /// The `errno` value behind it (`ENOENT` for a missing executable), if a system call failed.
    public var errorNumber: Int32?

    public init(command: String, reason: String, errorNumber: Int32? = nil) {
        self.command = command
        self.reason = reason
        self.errorNumber = errorNumber
    }

    /// A failed system call: the reason is `strerror(errorNumber)`, after `call` if given.
    init(command: String, call: String? = nil, errorNumber: Int32) {
        let text = String(cString: strerror(errorNumber))
        self.init(command: command, reason: call.map { "\($0): \(text)" } ?? text, errorNumber: errorNumber)
    }

    public var description: String { "cannot start \(command): \(reason)" }
}
