/// The message tags `shoal-pvm-echo` understands. Any other tag is echoed back to its sender
/// with the same fields.
public enum PVMEchoProtocol {
    /// Sent by the echo task to its parent once enrolled: `[hostname, pid]`.
    public static let hello: Int32 = 9000
    /// Makes the echo task leave PVM and exit, with status `fields[0]` (an int) or 0. No answer.
    public static let stop: Int32 = 9001
    /// Answered with `[hostname, pid, argument...]`.
    public static let whoAmI: Int32 = 9002
    /// `[name]`, answered with `[value]`, or `[]` if the variable is not set.
    public static let environment: Int32 = 9003
    /// Command-line option: `--exit N` makes the task exit with status N right after `hello`.
    public static let exitOption = "--exit"
}
